"""Label scoring by a local transformers judge: each prompt run once with the labels after its key-value
cache (TransformersBackend.option_logprobs) against each prompt + label sequence run whole, as the backend
did before 2026-12-05, on the real SmolLM2-135M-Instruct at the real-model run's Arena-Hard shape (judge
prompts of about ``--tokens`` tokens, the five verdict labels). Prints both timings (best of
``--repeats``), their largest difference in log-prob, and on the last line the speed-up; the target is at
least 3x at 1,024 tokens (the whole-sequence way computes each prompt five times).

    .venv/bin/python benchmarks/label_scoring.py [--prompts 8] [--tokens 1024] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELS = [" [[A>>B]]", " [[A>B]]", " [[A=B]]", " [[B>A]]", " [[B>>A]]"]


def whole_sequences(backend, prompts, options, batch_size, max_prompt_tokens):
    """Every prompt + option sequence scored on its own, ``batch_size`` sequences a forward pass."""
    import numpy as np
    import torch

    tok = backend.tokenizer
    opt_ids = [tok(o, add_special_tokens=False)["input_ids"] for o in options]
    room = max_prompt_tokens - max(len(o) for o in opt_ids)
    seqs = [(tok(p, add_special_tokens=False)["input_ids"][-room:], o) for p in prompts for o in opt_ids]
    scores = np.empty(len(seqs))
    with torch.no_grad():
        for start in range(0, len(seqs), batch_size):
            chunk = seqs[start : start + batch_size]
            width = max(len(p) + len(o) for p, o in chunk)
            ids = torch.full((len(chunk), width), tok.pad_token_id)
            mask = torch.zeros_like(ids)
            for r, (p, o) in enumerate(chunk):
                ids[r, : len(p) + len(o)] = torch.tensor(p + o)
                mask[r, : len(p) + len(o)] = 1
            logp = torch.log_softmax(backend.model(input_ids=ids, attention_mask=mask).logits.float(), -1)
            for r, (p, o) in enumerate(chunk):
                pos = torch.arange(len(p) - 1, len(p) + len(o) - 1)
                scores[start + r] = float(logp[r, pos, torch.tensor(o)].sum())
    return scores.reshape(len(prompts), len(options))


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import numpy as np

    from harness.backends.hf import TransformersBackend
    from tests import real_model

    model = Path(tempfile.mkdtemp()) / "smollm2"
    real_model.convert(model)
    backend = TransformersBackend(
        {"name": "smollm2", "source": str(model), "revision": None, "dtype": "float32"}
    )
    text = "Compare the two answers below and say which is better, and why. " * (args.tokens // 12)
    prompts = [
        backend.chat_prompt([{"role": "user", "content": f"Question {i}. {text}"}])
        for i in range(args.prompts)
    ]
    limit = args.tokens + 16
    t_whole, whole = best_of(
        lambda: whole_sequences(backend, prompts, LABELS, args.batch_size, limit), args.repeats
    )
    t_shared, (shared, _) = best_of(
        lambda: backend.option_logprobs(prompts, LABELS, batch_size=args.batch_size, max_prompt_tokens=limit),
        args.repeats,
    )
    print(f"{args.prompts} prompts of ~{args.tokens} tokens x {len(LABELS)} labels, batch {args.batch_size}")
    print(f"whole sequences: {t_whole:.2f} s   shared prompt: {t_shared:.2f} s")
    print(f"largest log-prob difference: {np.abs(whole - shared).max():.2e} nats")
    print(f"speed-up {t_whole / t_shared:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
