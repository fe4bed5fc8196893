"""Step `build-tiny-models` (demo): random-init Llama models and a BPE tokenizer trained on project
text, saved with ``save_pretrained`` and checked by loading them back through the Auto classes, so
every later step loads them exactly as it would load a hub model."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from harness.core.io import atomic_dir

SPECIALS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|system|>"]
# Role markers are special tokens; an assistant turn ends with EOS so that generation stops there.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def corpus_texts(paths: list[str]) -> list[str]:
    """Every string in the given JSON/JSONL files, plus the judge templates the tiny judge reads."""
    texts = []
    for p in paths:
        raw = Path(p).read_text(encoding="utf-8")
        try:
            texts.extend(_strings(json.loads(raw)))
        except json.JSONDecodeError:
            for line in raw.splitlines():
                if line.strip():
                    texts.extend(_strings(json.loads(line)))
    for t in resources.files("harness.templates").iterdir():
        if t.name.endswith(".txt"):
            texts.append(t.read_text(encoding="utf-8"))
    return texts


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer, wrapped as a transformers fast tokenizer with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        additional_special_tokens=SPECIALS[3:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(spec: dict, tokenizer):
    """A random-init LlamaForCausalLM or LlamaForSequenceClassification (one score) from ``spec``."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    h = spec["hidden_size"]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=h,
        intermediate_size=4 * h,
        num_hidden_layers=spec["num_layers"],
        num_attention_heads=spec["num_heads"],
        num_key_value_heads=spec["num_heads"],
        max_position_embeddings=spec["max_position_embeddings"],
        tie_word_embeddings="reply" not in spec,  # a scripted reply needs its own output rows
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=1,
    )
    torch.manual_seed(spec["seed"])
    if spec["kind"] == "reward_model":
        return LlamaForSequenceClassification(config)
    model = LlamaForCausalLM(config)
    if "reply" in spec:
        script_reply(model, tokenizer, spec["reply"])
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model


def script_reply(model, tokenizer, reply: dict, margin: float = 20.0) -> None:
    """Make a random-init causal LM answer chat prompts with a scripted reply, greedily, then stop.

    A judge for tests against a real server, whose verdicts parse, so the parsing path runs on real
    replies. ``reply``: ``first`` (tokens that open the reply, e.g. ["A", "B"]), ``rest`` (the text
    after them, e.g. " [[5]]"), ``runners_up`` (tokens ranked just below the first ones, e.g. alpaca_eval's
    "M" and "m", whose top log-probs its weighted annotators read).

    The MLP outputs are zeroed and attention's are scaled by ``attention_gain`` (0: a pure bigram
    table, the same reply to every prompt), so the last hidden state is the current token's embedding
    plus what attention adds; each scripted step (``<|assistant|>`` -> a first token -> each token of
    ``rest`` -> EOS) gets ``margin`` added to its logit along that embedding. Several first tokens tie
    but for the random initialisation and attention's share, which depends on the prompt (with a
    gain of 3-10 on the demo's pairwise prompts it still picked the same one every time). Every token
    of ``rest`` must be distinct.
    """
    import torch

    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    first = [ids(t)[0] for t in reply["first"]]
    rest = ids(reply.get("rest", ""))
    if len(set(rest)) != len(rest) or set(rest) & set(first):
        raise ValueError(f"scripted reply {reply}: a token repeats ({tokenizer.convert_ids_to_tokens(rest)})")
    start = tokenizer.convert_tokens_to_ids("<|assistant|>")
    chain = [*rest, tokenizer.eos_token_id]
    steps = [(start, t, margin) for t in first]
    steps += [(start, ids(t)[0], margin - 1 - j) for j, t in enumerate(reply.get("runners_up", []))]
    steps += [(f, chain[0], margin) for f in first]
    steps += [(cur, nxt, margin) for cur, nxt in zip(chain, chain[1:], strict=False)]
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.down_proj.weight.zero_()
            layer.self_attn.o_proj.weight.mul_(reply.get("attention_gain", 0.0))
        emb, head = model.model.embed_tokens.weight, model.lm_head.weight
        for cur, nxt, logit in steps:
            h = model.model.norm(emb[cur])  # the state after ``cur``, attention's share aside
            head[nxt] += logit * h / h.dot(h)


def run(job: dict, output: str) -> None:
    """Build every model in ``job['models']`` into ``output/<name>``; the directory appears whole or not at all."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    with atomic_dir(output) as tmp:
        texts = corpus_texts(job["tokenizer"]["corpus"])
        if job["tokenizer"].get("world"):
            from harness.demo import world

            texts += world.corpus()
        tokenizer = train_tokenizer(texts, job["tokenizer"]["vocab_size"])
        for name, spec in sorted(job["models"].items()):
            model = build_model(spec, tokenizer)
            model.save_pretrained(tmp / name)
            tokenizer.save_pretrained(tmp / name)
            auto = (
                AutoModelForSequenceClassification if spec["kind"] == "reward_model" else AutoModelForCausalLM
            )
            auto.from_pretrained(tmp / name)
            assert AutoTokenizer.from_pretrained(tmp / name).chat_template == CHAT_TEMPLATE
            n = sum(p.numel() for p in model.parameters())
            print(f"built {name}: {spec['kind']}, {n / 1e6:.2f}M parameters, vocab {len(tokenizer)}")


def build_one(output: str | Path, name: str, spec: dict, corpus: list[str], vocab_size: int = 640) -> Path:
    """Build a single tiny model (full ``spec``, as in config ``build``) into ``output/name``; return its path."""
    run({"tokenizer": {"vocab_size": vocab_size, "corpus": corpus}, "models": {name: spec}}, str(output))
    return Path(output) / name


SCRIPTED_JUDGE_REPLY = {"first": ["A"], "rest": " [[5]]", "runners_up": ["M", "m"]}


def build_scripted_judge(output: str | Path, corpus: list[str]) -> Path:
    """The judge served by vLLM in the real-server tests and benchmarks: head size 64 (hidden 128, 2
    heads) for vLLM's CPU attention, 2,048 positions, and :data:`SCRIPTED_JUDGE_REPLY` as its reply.
    ``corpus`` should hold the demo files, which give the tokenizer "[[" and "]]" as tokens of their
    own, so that the reply repeats no token."""
    spec = {"kind": "causal_lm", "hidden_size": 128, "num_layers": 1, "num_heads": 2,
            "max_position_embeddings": 2048, "seed": 7, "reply": SCRIPTED_JUDGE_REPLY}  # fmt: skip
    return build_one(output, "judge", spec, corpus)
