"""IPR's cost against the judge's raw cost, on the demo judge (a tiny random-init Llama).

Ranks N prompts x K completions with IPR (best and worst, both orders, one batched judge call per
round) and times it against one batched judge forward over exactly the same judge prompts. The
difference is IPR's own overhead: rounds (2K-3 smaller batches instead of one), bookkeeping, prompt
rendering. The last line is the ratio; the target is at most 1.3.

    .venv/bin/python benchmarks/ranking_overhead.py [--prompts 64] [--k 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch

    from harness.backends.hf import TransformersBackend
    from harness.core.records import load_prompts
    from harness.demo import tiny
    from harness.ranking import ipr
    from harness.ranking.judge import PAIR_LABELS, PairwiseJudge

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out = Path(tempfile.mkdtemp()) / "tiny"
    spec = {
        "kind": "causal_lm",
        "hidden_size": 32,
        "num_layers": 1,
        "num_heads": 2,
        "max_position_embeddings": 1024,
        "seed": 3,
    }
    path = tiny.build_one(out, "judge", spec, [str(ROOT / "data/demo/prompts.jsonl")])
    backend = TransformersBackend({"source": str(path), "revision": None, "dtype": "float32"})
    prompts = (load_prompts(ROOT / "data/demo/prompts.jsonl") * 4)[: args.prompts]
    answers = [[f"Answer {j}: {p.prompt.lower()} in {3 + j} words." for j in range(args.k)] for p in prompts]
    batch = 64

    def rank_ipr(record=None):
        judge = PairwiseJudge(backend, "pairwise_v1.txt", batch_size=batch, max_prompt_tokens=512)

        def judge_round(reqs):
            triples = []
            for g, req in reqs:
                a, b = answers[g][req.i], answers[g][req.j]
                triples += [(prompts[g].prompt, a, b), (prompts[g].prompt, b, a)]
            if record is not None:
                record.extend(judge.render(*t) for t in triples)
            p = judge.prob_a(triples, desc="ipr")
            return [(p[2 * n], 1 - p[2 * n + 1]) for n in range(len(reqs))]

        return ipr.run_batched([args.k] * len(prompts), judge_round)

    sent: list[str] = []
    rank_ipr(sent)  # warm-up, and the exact judge prompts IPR sends
    t_ipr, t_one = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        rank_ipr()
        t_ipr.append(time.perf_counter() - start)
        start = time.perf_counter()
        backend.option_logprobs(sent, list(PAIR_LABELS), batch, 512, desc="one batch")
        t_one.append(time.perf_counter() - start)
    ipr_s, one_s = statistics.median(t_ipr), statistics.median(t_one)
    print(f"{len(prompts)} prompts x K={args.k}: {len(sent)} judge prompts in {2 * args.k - 3} rounds")
    print(f"IPR ranking:           {ipr_s:.3f} s (median of {args.repeats})")
    print(f"one batched judge pass: {one_s:.3f} s (median of {args.repeats})")
    print(f"IPR / one batched pass: {ipr_s / one_s:.2f}")


if __name__ == "__main__":
    main()
