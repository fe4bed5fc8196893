"""Leave-one-out error of the offline length-controlled win rates against the official leaderboard.

For every model with published ``weighted_alpaca_eval_gpt4_turbo`` annotations in
../shared/data/alpaca_eval/published/, fit instruction difficulty jointly on all the *other* models
(harness/evaluation/difficulty.py, penalty chosen on held-out models among them), compute the held-out model's
``joint`` LC win rate with it (harness/evaluation/lc.py) and its ``approximate`` LC (no difficulty),
and compare both with the leaderboard's ``length_controlled_winrate``. Prints one row per model and the
mean and max absolute error of each method.

    python benchmarks/lc_joint_loo.py [--data ../shared/data/alpaca_eval]
    python benchmarks/lc_joint_loo.py --fit-sizes 2,4,6,8,11 --draws 3   # error by number of models fitted
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUFFIX = "_weighted_alpaca_eval_gpt4_turbo_annotations.json"


def load(data: Path):
    import pandas as pd

    reference = json.loads((data / "gpt4_1106_preview_outputs.json").read_text())
    instructions = [r["instruction"] for r in reference]
    board = pd.read_csv(data / "published" / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv", index_col=0)
    models = {}
    for path in sorted((data / "published").glob(f"*{SUFFIX}")):
        models[path.name.removesuffix(SUFFIX)] = pd.DataFrame(json.loads(path.read_text()))
    return instructions, board, models


def judged_models(instructions, models) -> dict:
    """Each model's annotations as harness/evaluation/difficulty.py takes them (instruction positions, lengths)."""
    from harness.evaluation import difficulty

    position = {t: i for i, t in enumerate(instructions)}
    return {
        name: difficulty.judged(
            name,
            df["instruction"].map(position),
            df["output_1"].str.len(),
            df["output_2"].str.len(),
            df["preference"],
        )
        for name, df in models.items()
    }


def loo(instructions, models, lambdas=None) -> dict:
    """Model -> (joint LC, approximate LC, chosen penalty), each fitted without that model's annotations."""
    from alpaca_eval.metrics.glm_winrate import GLM_INFO

    from harness.evaluation import difficulty
    from harness.evaluation.lc import _fit

    judged = judged_models(instructions, models)
    out = {}
    for name, df in models.items():
        others = [j for n, j in judged.items() if n != name]
        fitted = difficulty.difficulty(others, len(instructions), lambdas or difficulty.LAMBDAS)
        by = dict(zip(instructions, fitted["instruction_difficulty"], strict=True))
        joint, _ = _fit(df, GLM_INFO["length_controlled_noreg"], "joint", difficulty=by)
        approx, _ = _fit(df, GLM_INFO["length_controlled_minimal"], "approximate")
        out[name] = (joint, approx, fitted["lambda"])
    return out


def by_fit_size(instructions, models, board, sizes, draws: int, seed: int = 0) -> dict:
    """Fit size -> absolute errors of the held-out models' joint LC against the leaderboard, each fitted
    on ``draws`` random sets of that many other models (every set when there are fewer)."""
    from itertools import combinations

    from alpaca_eval.metrics.glm_winrate import GLM_INFO

    from harness.evaluation import difficulty
    from harness.evaluation.lc import _fit

    judged = judged_models(instructions, models)
    approx = np.array([
        abs(_fit(df, GLM_INFO["length_controlled_minimal"], "approximate")[0] - float(board.loc[name, "length_controlled_winrate"]))
        for name, df in models.items()
    ])  # fmt: skip
    print(f"approximate (no difficulty): mean |error| {approx.mean():.2f}, 90th percentile "
          f"{np.quantile(approx, 0.9):.2f}, max {approx.max():.2f} points ({len(approx)} models)", flush=True)  # fmt: skip
    rng = np.random.default_rng(seed)
    out = {}
    for n in sizes:
        errors = []
        for name, df in models.items():
            others = [m for m in judged if m != name]
            sets = list(combinations(others, n)) if n >= len(others) else None
            chosen = sets or [tuple(rng.choice(others, n, replace=False)) for _ in range(draws)]
            for fit_set in chosen[:draws]:
                fitted = difficulty.difficulty(
                    [judged[m] for m in fit_set], len(instructions), difficulty.LAMBDAS
                )
                by = dict(zip(instructions, fitted["instruction_difficulty"], strict=True))
                joint, _ = _fit(df, GLM_INFO["length_controlled_noreg"], "joint", difficulty=by)
                errors.append(abs(joint - float(board.loc[name, "length_controlled_winrate"])))
        out[n] = errors
        a = np.array(errors)
        print(f"fit on {n:2d} models: mean |error| {a.mean():.2f}, 90th percentile {np.quantile(a, 0.9):.2f}, "
              f"max {a.max():.2f} points ({len(a)} held-out fits)", flush=True)  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "alpaca_eval")
    p.add_argument(
        "--fit-sizes",
        help="comma-separated numbers of models to fit on (random sets of the others, --draws each): the "
        "error of joint LC by fit size, which sets lc_joint.min_models",
    )
    p.add_argument("--draws", type=int, default=2)
    args = p.parse_args()
    if not (args.data / "published").is_dir():
        sys.exit(f"error: {args.data / 'published'} is absent (published annotations live in ../shared/data)")
    warnings.filterwarnings("ignore")
    started = time.time()
    instructions, board, models = load(args.data)
    if args.fit_sizes:
        by_fit_size(instructions, models, board, [int(n) for n in args.fit_sizes.split(",")], args.draws)
        print(f"({time.time() - started:.0f} s)")
        return
    result = loo(instructions, models)
    print(
        f"{'model':32s} {'official':>9s} {'joint':>9s} {'err':>6s} {'approx':>9s} {'err':>6s} {'lambda':>7s}"
    )
    errors = {"joint": [], "approximate": []}
    for name, (joint, approx, lam) in result.items():
        lc = float(board.loc[name, "length_controlled_winrate"])
        errors["joint"].append(joint - lc)
        errors["approximate"].append(approx - lc)
        print(
            f"{name:32s} {lc:9.2f} {joint:9.2f} {joint - lc:+6.2f} {approx:9.2f} {approx - lc:+6.2f} {lam:7g}"
        )
    print()
    for method, e in errors.items():
        a = np.abs(e)
        print(f"{method:12s} leave-one-out error vs leaderboard LC over {len(a)} models: "
              f"mean {a.mean():.2f}, max {a.max():.2f} points (mean signed {np.mean(e):+.2f})")  # fmt: skip
    print(f"({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
