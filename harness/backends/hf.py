"""transformers backend: batched ``generate`` and option scoring on CPU or one GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from harness.core.hub import hub_asset
from harness.core.records import Completion
from harness.core.seeding import subseed


def load_pretrained(auto_cls, model: dict, role: str | None = None, **kwargs):
    """``auto_cls.from_pretrained`` for a model reference, refusing remote code that is not trusted.

    A model whose config maps ``auto_cls`` to its own code (ArmoRM's reward head, say) would otherwise
    load silently as the library's stock class with a randomly initialised head. With ``role`` (what
    the model is for, e.g. "reward model"), weights the checkpoint lacks or holds in another shape,
    which transformers would initialise at random with only a log line, fail naming the model.
    """
    check_local(model)
    with hub_asset(_asset(model)):
        if role is None:
            return _load_pretrained(auto_cls, model, **kwargs)
        loaded, info = _load_pretrained(auto_cls, model, output_loading_info=True, **kwargs)
    check_loaded(model, role, info, getattr(loaded.config, "architectures", None) or [])
    return loaded


def check_loaded(model: dict, role: str, info: dict, architectures: list[str] = ()) -> None:
    """Fail where loading left weights newly initialised (missing from the checkpoint, or mismatched),
    or where a causal LM's checkpoint is a scorer's (its tied embeddings would pass for a head)."""
    from harness.core.errors import ModelError

    if role == "causal LM" and architectures and all("ForSequenceClassification" in a for a in architectures):
        raise ModelError(
            f"{role} {model['source']}: the checkpoint is a sequence-classification scorer "
            f"({', '.join(architectures)}), not a language model; point the config at a causal LM"
        )

    missing = sorted(info.get("missing_keys") or []) + sorted(
        str(k[0]) if isinstance(k, tuple) else str(k) for k in info.get("mismatched_keys") or []
    )
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise ModelError(
            f"{role} {model['source']}: {len(missing)} weight(s) missing from the checkpoint or of another "
            f"shape, which would be initialised at random ({shown}); point the config at a model trained "
            "for this role"
        )


def looks_local(source: str) -> bool:
    """A path, not a hub id (``org/name``): absolute, relative with ./ or ../, or of three parts or more."""
    return source.startswith(("/", "./", "../", "~")) or source.count("/") >= 2


def check_local(model: dict) -> None:
    if looks_local(model["source"]) and not Path(model["source"]).expanduser().is_dir():
        from harness.core.errors import ModelError

        raise ModelError(
            f"{model['source']}: no such model directory (model '{model.get('name', model['source'])}')"
        )


def _asset(model: dict) -> str:
    return f"model {model['source']}@{model.get('revision') or 'main'}"


def _load_pretrained(auto_cls, model: dict, **kwargs):
    trusted = model.get("trust_remote_code", False)
    if not trusted:
        try:
            config = AutoConfig.from_pretrained(model["source"], revision=model.get("revision"))
            needs_code = auto_cls.__name__ in (getattr(config, "auto_map", None) or {})
        except ValueError as e:
            needs_code = "trust_remote_code" in str(e)
            if not needs_code:
                raise
        if needs_code:
            raise ValueError(
                f"{model['source']} needs to run its own code to load as {auto_cls.__name__}; review that code "
                f"at revision {model.get('revision')} and add the id to `trusted_remote_code` in the config"
            )
    return auto_cls.from_pretrained(
        model["source"], revision=model.get("revision"), trust_remote_code=trusted, **kwargs
    )


def load_tokenizer(model: dict):
    check_local(model)
    with hub_asset(_asset(model)):
        tok = AutoTokenizer.from_pretrained(
            model["source"],
            revision=model.get("revision"),
            trust_remote_code=model.get("trust_remote_code", False),
        )
    if tok.pad_token is None:  # Llama 3 and Mistral ship none; generation only needs some id to pad with
        tok.pad_token = tok.eos_token
    return tok


def torch_dtype(name: str | None):
    if name in (None, "auto"):
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return getattr(torch, name)


class TransformersBackend:
    def __init__(self, model: dict, device: str | None = None):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = load_tokenizer(model)
        self.model = (
            load_pretrained(
                AutoModelForCausalLM, model, role="causal LM", dtype=torch_dtype(model.get("dtype"))
            )
            .to(self.device)
            .eval()
        )
        self.prompts_truncated = 0  # prompts cut from the left to fit the context with max_new_tokens

    def _encode(self, batch: list[str], max_new_tokens: int):
        """The batch, left-padded; a prompt longer than the model's context leaves room for is cut
        from its left end (the end, where the answer begins, stays) and counted in ``prompts_truncated``."""
        tok = self.tokenizer
        ids = tok(batch, add_special_tokens=False)["input_ids"]
        context = getattr(self.model.config, "max_position_embeddings", None)
        if context is not None:
            room = context - max_new_tokens
            if room < 1:
                raise ValueError(
                    f"max_new_tokens={max_new_tokens} leaves no room for a prompt in this model's context of {context} tokens"
                )
            self.prompts_truncated += sum(len(x) > room for x in ids)
            ids = [x[-room:] for x in ids]
        return tok.pad({"input_ids": ids}, return_tensors="pt", padding=True)

    def count_tokens(self, prompts: list[str]) -> list[int]:
        """Tokens of each prompt as this backend sends it (the judges fit their answers with it)."""
        if not prompts:  # the tokenizer fails on an empty batch
            return []
        return [len(ids) for ids in self.tokenizer(prompts, add_special_tokens=False)["input_ids"]]

    def chat_prompt(self, messages: list[dict]) -> str:
        """The model's own chat template, ending where the assistant's turn begins."""
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    @torch.no_grad()
    def generate(
        self,
        prompts: list[str],
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        batch_size: int = 8,
        seed: int = 0,
        desc: str = "generate",
        bar=None,
    ) -> list[list[Completion]]:
        """``n`` completions per prompt. Each batch is seeded from (seed, its first prompt), so results
        do not depend on which other jobs ran before."""
        tok = self.tokenizer
        tok.padding_side = "left"
        out: list[list[Completion]] = []
        own_bar = bar is None  # callers that run several calls pass one bar for all of them
        bar = tqdm(total=len(prompts), desc=desc, unit="prompt") if own_bar else bar
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            torch.manual_seed(subseed("generate", batch[0], seed))
            enc = self._encode(batch, max_new_tokens).to(self.device)
            sampling = temperature > 0
            gen = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=sampling,
                num_return_sequences=n,
                temperature=temperature if sampling else None,
                top_p=top_p if sampling else None,
                top_k=None,
                pad_token_id=tok.pad_token_id,
            )
            new = gen[:, enc["input_ids"].shape[1] :]
            for row in range(len(batch)):
                out.append([self._completion(new[row * n + i]) for i in range(n)])
            bar.update(len(batch))
        if own_bar:
            bar.close()
        return out

    def _completion(self, ids: torch.Tensor) -> Completion:
        extra = getattr(self.model.generation_config, "eos_token_id", None)
        eos = {self.tokenizer.eos_token_id, *(extra if isinstance(extra, list) else [extra])} - {None}
        ids = ids.tolist()
        stop = next((i for i, t in enumerate(ids) if t in eos), None)
        kept = ids if stop is None else ids[:stop]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        return Completion(
            text=text.strip(), n_tokens=len(kept), finish_reason="length" if stop is None else "stop"
        )

    @torch.no_grad()
    def option_logprobs(
        self,
        prompts: list[str],
        options: list[str],
        batch_size: int = 8,
        max_prompt_tokens: int = 4096,
        desc: str = "judge",
    ) -> tuple[np.ndarray, int]:
        """Log-probability of each option as the continuation of each prompt.

        A batch of prompts runs once; its key-value cache is repeated for the options, which run after it
        (each at its prompt's own positions, the prompt's padding masked): each prompt token is computed
        once, not once per option.

        Returns:
            logps: float array [len(prompts), len(options)], the summed token log-probs of each option.
            n_truncated: prompts cut from the left to ``max_prompt_tokens`` (the tail holds the question).
        """
        tok = self.tokenizer
        opt_ids = [tok(o, add_special_tokens=False)["input_ids"] for o in options]
        width = max(len(o) for o in opt_ids)
        room = max_prompt_tokens - width
        seqs, n_truncated = [], 0
        for p in prompts:
            ids = tok(p, add_special_tokens=False)["input_ids"]
            if len(ids) > room:
                ids, n_truncated = ids[-room:], n_truncated + 1
            seqs.append(ids)
        k = len(options)
        opts = torch.full((k, width), tok.pad_token_id, dtype=torch.long)
        for j, o in enumerate(opt_ids):  # padding after an option is never attended to by its own tokens
            opts[j, : len(o)] = torch.tensor(o)
        scores = np.empty((len(prompts), k), dtype=np.float64)
        step = max(1, batch_size // k)  # prompts a batch: batch_size option rows, as before
        for start in tqdm(range(0, len(seqs), step), desc=desc, unit="batch"):
            chunk = seqs[start : start + step]
            longest = max(len(p) for p in chunk)
            input_ids = torch.full((len(chunk), longest), tok.pad_token_id, dtype=torch.long)
            attn = torch.zeros_like(input_ids)
            for r, p in enumerate(chunk):
                input_ids[r, : len(p)] = torch.tensor(p)
                attn[r, : len(p)] = 1
            out = self.model(
                input_ids=input_ids.to(self.device), attention_mask=attn.to(self.device), use_cache=True
            )
            lengths = torch.tensor([len(p) for p in chunk])
            first = torch.log_softmax(out.logits[torch.arange(len(chunk)), lengths - 1].float(), dim=-1)
            cache = out.past_key_values
            cache.batch_repeat_interleave(k)  # row r * k + j: prompt r, then option j
            rows = len(chunk) * k
            mask = torch.cat(
                [attn.repeat_interleave(k, dim=0), torch.ones(rows, width, dtype=attn.dtype)], dim=1
            )
            positions = lengths.repeat_interleave(k)[:, None] + torch.arange(width)[None, :]
            logits = self.model(
                input_ids=opts.repeat(len(chunk), 1).to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                past_key_values=cache,
            ).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            first = first.cpu()
            for r in range(len(chunk)):
                for j, o in enumerate(opt_ids):
                    rest = logp[r * k + j, torch.arange(len(o) - 1), torch.tensor(o[1:], dtype=torch.long)]
                    scores[start + r, j] = float(first[r, o[0]]) + float(rest.sum())
        return scores, n_truncated
