"""Step `metrics` for AlpacaEval 2: win rate, discrete win rate and length-controlled win rate, each
with a 95% bootstrap interval over instructions.

Win rates are alpaca_eval's own (``alpaca_eval.metrics.get_winrate``); the intervals resample the
per-instruction values its scoring rules average. ``avg_length`` is alpaca_eval's: the mean length in
characters of the model's outputs. The length-controlled win rate, its method and its expected error
are harness/evaluation/lc.py's.
"""

from __future__ import annotations

import time

import numpy as np

from harness.core import timing
from harness.core.io import write_json
from harness.core.provenance import provenance
from harness.core.records import load_alpaca_instructions, load_annotations
from harness.core.stats import bootstrap_mean_ci
from harness.evaluation.lc import expected_error, length_controlled, load_difficulty


def win_values(preference) -> tuple[np.ndarray, np.ndarray]:
    """Per instruction, what alpaca_eval's absolute and zero-one scoring rules average (NaN where the
    annotation is not a preference): ``p - 1`` and its rounding, a draw (0 or 1.5) counting 0.5."""
    p = np.asarray(preference, dtype=float)
    p = np.where(p == 0, 1.5, p)
    valid = (p >= 1) & (p <= 2)
    weighted = np.where(valid, p - 1, np.nan)
    discrete = np.where(valid, np.where(p == 1.5, 0.5, np.round(p) - 1), np.nan)
    return weighted, discrete


def oracle_scores(df, seed: int, samples: int) -> dict:
    """Mean oracle score of the model's answers (0-100) with a bootstrap interval, and per task group."""
    from harness.demo import world

    scores = df["oracle_score_2"].to_numpy(dtype=float)
    groups = [world.parse(i)[0].group for i in df["instruction"]]
    by_group = {
        g: 100 * float(np.mean([s for s, h in zip(scores, groups, strict=True) if h == g]))
        for g in dict.fromkeys(groups)
    }
    return {
        "oracle_score": 100 * float(scores.mean()),
        "oracle_score_ci": bootstrap_mean_ci(_units(scores), seed, samples, scale=100),
        "oracle_score_by_group": by_group,
        "reference_oracle_score": 100 * float(df["oracle_score_1"].astype(float).mean()),
    }


def _units(values: np.ndarray) -> list[list[float]]:
    return [[] if np.isnan(v) else [float(v)] for v in values]


def metrics(
    job: dict,
    annotations_path: str,
    output: str,
    upstream: list[str] = (),
    difficulty: str | None = None,
    answers: str | None = None,
) -> None:
    """Metrics of one model's annotations; ``difficulty``: the jointly fitted instruction difficulty
    (``lc_method: joint``); ``answers``: the model's outputs, whose mean length in characters is
    alpaca_eval's ``avg_length`` (every output, annotated or not; else the annotated ones)."""
    import pandas as pd
    from alpaca_eval.metrics import get_winrate

    started = time.time()
    df = pd.DataFrame(load_annotations(annotations_path))
    seed = job["cell"].get("seed") or 0
    m = {k: float(v) for k, v in get_winrate(df).items()}
    weighted, discrete = win_values(df["preference"])
    samples = job["bootstrap"]["samples"]
    m["win_rate_ci"] = bootstrap_mean_ci(_units(weighted), seed, samples, scale=100)
    m["discrete_win_rate_ci"] = bootstrap_mean_ci(_units(discrete), seed, samples, scale=100)
    fitted = load_difficulty(difficulty) if difficulty else None
    lc = length_controlled(df, job, seed, fitted)
    m["length_controlled_winrate"], m["length_controlled_winrate_ci"] = lc["value"], lc["ci"]
    m["lc_method"] = lc["method"]
    if "note" in lc:
        m["lc_note"] = lc["note"]
    joint = lc["method"].startswith("joint")
    m["lc_expected_error"] = expected_error(lc["method"], fitted["n_models"] if joint else None)
    if joint:  # fitted once per run and kept: which fit, and whether this model was in it
        from harness.core.io import file_sha256

        name = f"{job['cell']['policy']}/{job['model_key']}" if "model_key" in job else None
        m["lc_difficulty"] = {
            "file": difficulty,
            "sha256": file_sha256(difficulty),
            "fit_models": fitted["n_models"],
            "includes_this_model": name in fitted["models"] if name else None,
        }
    m["n_not_preference"] = int(np.isnan(weighted).sum())  # left out by alpaca_eval's win rates
    outputs = [r["output"] for r in load_alpaca_instructions(answers)] if answers else list(df["output_2"])
    m["avg_length"] = float(np.mean([len(o) for o in outputs]))
    if "oracle_score_2" in df:  # the demo world: mean quality of the answers (0-100), overall and per group
        m.update(oracle_scores(df, seed, samples))
    write_json(
        output,
        {
            "benchmark": "alpaca_eval",
            "cell": job["cell"],
            "metrics": m,
            "provenance": {
                **provenance(job, seed=job["cell"].get("seed"), started=started),
                "upstream": timing.upstream(list(upstream)),  # wall time and GPU-hours of the jobs behind it
            },
        },
    )
