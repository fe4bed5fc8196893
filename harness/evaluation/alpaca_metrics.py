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

from harness.core.benchmarks import write_metrics
from harness.core.records import check_coverage, load_alpaca_instructions, load_annotations
from harness.core.stats import aligned, bootstrap_mean_ci, mean_cell, seed_order
from harness.evaluation.lc import expected_error, length_controlled, load_difficulty

BENCHMARK = "alpaca_eval"
LABELS = {"lc": "AlpacaEval LC (%)", "wr": "AlpacaEval WR (%)", "oracle_score": "Oracle score (0-100)"}


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


def metrics_step(job: dict, f: dict) -> None:
    """The `metrics` step (its files by option name, harness/cli.py)."""
    metrics(job, f["judgments"], f["output"], f["difficulty"], f["answers"], f["eval_set"])


def metrics(
    job: dict,
    annotations_path: str,
    output: str,
    difficulty: str | None = None,
    answers: str | None = None,
    eval_set: str | None = None,
) -> None:
    """Metrics of one model's annotations; ``difficulty``: the jointly fitted instruction difficulty
    (``lc_method: joint``); ``answers``: the model's outputs, whose mean length in characters is
    alpaca_eval's ``avg_length`` (every output, annotated or not; else the annotated ones); ``eval_set``:
    the instructions the annotations must cover."""
    import pandas as pd
    from alpaca_eval.metrics import get_winrate

    started = time.time()
    df = pd.DataFrame(load_annotations(annotations_path))
    if eval_set:  # every instruction of the eval set judged
        expected = [r["instruction"] for r in load_alpaca_instructions(eval_set)]
        check_coverage(df["instruction"], expected, annotations_path, eval_set, "instructions")
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
    write_metrics(output, BENCHMARK, job, m, started)


def paired_cells(files: dict, job: dict, difficulty: dict) -> list[tuple]:
    """The paired comparisons' families (harness/reporting/compare.py): per metric, its label, the units
    (instructions), each cell's per-seed statistic and the resample count: the win rate and the oracle
    score (pooled means of per-instruction values) and the LC win rate (the GLM refitted per draw)."""
    import pandas as pd

    from harness.evaluation.lc import lc_estimator

    loaded = {group: load_difficulty(path) for group, path in difficulty.items()}  # each file once
    order, metrics = None, {"lc": {}, "wr": {}, "oracle_score": {}}
    for cell, seeds in files.items():
        wr, oracle, lc = [], [], []
        lc_of = job["benchmarks"][BENCHMARK]["lc"][cell[0]]
        lc_job = {"lc_method": lc_of["method"], "lc_data": lc_of.get("lc_data")}
        for seed in seed_order(seeds):
            path = seeds[seed]
            df = pd.DataFrame(load_annotations(path))
            keys = list(df["instruction"])
            order = order or keys
            df = df.iloc[aligned(keys, order, path, "instructions")].reset_index(drop=True)
            wr.append(100 * win_values(df["preference"])[0])
            if "oracle_score_2" in df:
                oracle.append(100 * df["oracle_score_2"].to_numpy(dtype=float))
            est = lc_estimator(df.assign(index=np.arange(len(df))), lc_job, loaded.get(lc_of["group"]))
            lc.append(lambda idx, e=est: e["value"] if idx is None else e["replicate"](idx))
        metrics["wr"][cell] = mean_cell(np.array(wr))
        if oracle:
            metrics["oracle_score"][cell] = mean_cell(np.array(oracle))
        metrics["lc"][cell] = lc
    b = job["benchmarks"][BENCHMARK]
    return [  # in the order of the former table: LC, WR, oracle
        (LABELS[name], order, cells, b["lc_samples" if name == "lc" else "samples"])
        for name, cells in metrics.items()
        if cells
    ]


def table_values(m: dict) -> dict:
    """A metrics file's columns of the tables (harness/reporting/report.py), with their intervals."""
    return {
        "alpaca_eval_lc": m["length_controlled_winrate"],
        "alpaca_eval_lc_ci": m.get("length_controlled_winrate_ci"),
        "alpaca_eval_wr": m["win_rate"],
        "alpaca_eval_wr_ci": m.get("win_rate_ci"),
        "lc_method": m["lc_method"],
        **({"oracle_score": m["oracle_score"], "oracle_score_ci": m.get("oracle_score_ci")}
           if "oracle_score" in m else {}),
    }  # fmt: skip


def compare_job(cfg: dict) -> dict:
    """Its settings in the comparisons job config: resample counts and each policy's LC method."""
    from harness.evaluation.lc import lc_group, lc_resolved

    b = cfg["evaluation"][BENCHMARK]
    lc = {
        p: {"group": lc_group(cfg, p), "method": lc_resolved(cfg, p), "lc_data": b.get("lc_data")}
        for p in cfg["policies"]
    }
    return {"samples": b["bootstrap"]["samples"], "lc_samples": b["bootstrap"]["lc_samples"], "lc": lc}
