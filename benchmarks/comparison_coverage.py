"""Coverage of paired-comparison intervals on simulated cells, side by side in one run: ours
(harness/reporting/paired.py: Welch seed term + prompt resampling, t with Satterthwaite df) against the plain
hierarchical ("pigeonhole") percentile bootstrap that resamples each cell's seeds and the shared prompts.

Cells as in tests/test_compare.py (3 seeds, 96 prompts; seed effect, shared prompt effect, cell x
prompt effect, seed x prompt noise), at several mixes of the variance parts. Prints per mix the
share of 95% intervals that cover the true difference and the share of p < 0.05 under no difference.

    python benchmarks/comparison_coverage.py [--reps 300] [--draws 400]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.core import stats  # noqa: E402
from harness.reporting import paired  # noqa: E402

SEEDS, PROMPTS = 3, 96
MIXES = {  # seed sd, prompt sd, cell x prompt sd, noise sd
    "seed effects large": (2.0, 2.0, 0.5, 3.0),
    "seed effects moderate": (1.0, 2.0, 1.0, 3.0),
    "prompt effects large": (0.3, 2.0, 1.5, 2.0),
    "no seed effect": (0.0, 2.0, 1.0, 3.0),
    "noise only": (0.0, 1.0, 0.0, 5.0),
}


def cells(rng, delta, seed_sd, prompt_sd, cell_sd, noise_sd):
    shared = rng.normal(0, prompt_sd, PROMPTS)
    return [
        mu + rng.normal(0, seed_sd, (SEEDS, 1)) + shared + rng.normal(0, cell_sd, PROMPTS)
        + rng.normal(0, noise_sd, (SEEDS, PROMPTS))
        for mu in (delta, 0.0)
    ]  # fmt: skip


def pigeonhole(a, b, draws, rng):
    """Percentile interval of the plain two-level bootstrap: seeds of each cell, then shared prompts."""
    sa, sb = rng.integers(0, SEEDS, (draws, SEEDS)), rng.integers(0, SEEDS, (draws, SEEDS))
    p = rng.integers(0, PROMPTS, (draws, PROMPTS))
    d = np.array([a[sa[k]][:, p[k]].mean() - b[sb[k]][:, p[k]].mean() for k in range(draws)])
    lo, hi = np.percentile(d, [2.5, 97.5])
    return lo, hi, 2 * min((d <= 0).mean(), (d >= 0).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--draws", type=int, default=400)
    args = ap.parse_args()
    rng = np.random.default_rng(11)
    truth = 1.0
    print(f"{args.reps} simulated comparisons per mix, {SEEDS} seeds, {PROMPTS} prompts, {args.draws} draws")
    print(f"{'mix':24s} {'ours: coverage':>15s} {'size':>6s} {'bootstrap: coverage':>20s} {'size':>6s}")
    started = time.time()
    for name, mix in MIXES.items():
        ours = [0, 0]
        boot = [0, 0]
        for r in range(args.reps):
            a, b = cells(rng, truth, *mix)
            res = paired.paired(stats.mean_cell(a), stats.mean_cell(b), PROMPTS, args.draws, seed=r)
            ours[0] += res["ci"][0] <= truth <= res["ci"][1]
            lo, hi, _ = pigeonhole(a, b, args.draws, rng)
            boot[0] += lo <= truth <= hi
            a, b = cells(rng, 0.0, *mix)
            ours[1] += (
                paired.paired(stats.mean_cell(a), stats.mean_cell(b), PROMPTS, args.draws, seed=r)["p"] < 0.05
            )
            boot[1] += pigeonhole(a, b, args.draws, rng)[2] < 0.05
        n = args.reps
        print(f"{name:24s} {ours[0] / n:15.3f} {ours[1] / n:6.3f} {boot[0] / n:20.3f} {boot[1] / n:6.3f}")
    print(f"({time.time() - started:.0f} s; nominal: coverage 0.95, size 0.05)")


if __name__ == "__main__":
    main()
