"""Step `metrics` for AlpacaEval 2: win rate, discrete win rate and length-controlled win rate, each
with a 95% bootstrap interval over instructions.

Win rates are alpaca_eval's own (``alpaca_eval.metrics.get_winrate``); the intervals resample the
per-instruction values its scoring rules average. The length-controlled win rate is alpaca_eval's
``length_controlled_v1`` GLM whenever its data (``df_gamed.csv``: instruction difficulty and the
annotations of two length-gamed baselines) is at hand: a local file or a hub revision named in
config, else alpaca_eval's own hub download. Without it (offline), ``lc_method: auto`` falls back to
the approximation below and labels the number so in the metrics file and every table.

The approximation fits the same GLM with alpaca_eval's design matrix and logistic regression but
without the instruction-difficulty term and without regularisation towards the gamed baselines. It
removes the length effect the same way, but each instruction's difficulty is absorbed into noise, so
it is not comparable with leaderboard LC numbers (see the README).

Bootstrap replicates of the length-controlled number refit the GLM with the regularisation strength
chosen by cross-validation on the full data (``C`` fixed), which keeps a replicate cheap.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from harness import cost
from harness.io import RecordError, read_json, write_json
from harness.provenance import provenance
from harness.stats import bootstrap_ci, bootstrap_mean_ci

log = logging.getLogger(__name__)

APPROXIMATION = (
    "approximate: alpaca_eval's length-controlled GLM without the instruction-difficulty term and "
    "without regularisation towards the gamed baselines (their data was not available); not comparable "
    "with leaderboard LC numbers"
)
GAMED_COLUMNS = (
    "model",
    "index",
    "instruction_difficulty",
    "preference",
    "std_delta_len",
    "not_gamed_baseline",
)


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
    from harness import world

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


@contextmanager
def _gamed_data(path: Path | None):
    """Serve ``path`` where alpaca_eval's GLM downloads df_gamed.csv (alpaca-eval is pinned exactly)."""
    if path is None:
        yield
        return
    from unittest import mock

    import alpaca_eval.metrics.glm_winrate as glm

    with mock.patch.object(glm, "hf_hub_download", lambda *a, **k: str(path)):
        yield


def _fit(df, info: dict, official: bool, C: float | None = None):
    """alpaca_eval's GLM on annotations ``df``: (predicted LC win rate in %, the fitted C)."""
    import pandas as pd
    from alpaca_eval.metrics.glm_winrate import (
        _get_featurized_data,
        fit_LogisticRegressionCV,
        make_dmatrix_for_model,
    )

    if official:
        train, test, weight = _get_featurized_data(df, info["formula"], info["regularize_to_baseline_lambda"])
        keep = train["preference"].notna()
        train, weight = train[keep], None if weight is None else weight[keep]
    else:
        delta = df["output_1"].str.len().to_numpy() - df["output_2"].str.len().to_numpy()
        std = delta.std(ddof=1) if len(delta) > 1 else 0.0
        feats = pd.DataFrame(
            {
                "preference": df["preference"].astype(float).replace({0.0: 1.5}).to_numpy() - 1,
                "std_delta_len": delta / std if std > 0 else delta * 0.0,
                "not_gamed_baseline": True,
            }
        )
        test = feats[["not_gamed_baseline"]].assign(std_delta_len=0.0)
        train, test = make_dmatrix_for_model(feats, test, formula=info["formula"])
        weight = None
    if C is None:
        kwargs = {"n_splits": min(info["kwargs"]["n_splits"], len(df))}
    else:
        kwargs = {"n_splits": 0, "C": C}
    model = fit_LogisticRegressionCV(train, "preference", is_ytrue_proba=True, sample_weight=weight, **kwargs)
    fitted_c = float(np.ravel(model.C_)[0]) if hasattr(model, "C_") else C
    return float(model.predict_proba(test)[:, 1].mean() * 100), fitted_c


def _gamed_path(job: dict) -> Path | None:
    """A local df_gamed.csv from the config's ``lc_data`` (a path, or a hub file at a pinned revision)."""
    source = job.get("lc_data")
    if not source:
        return None
    if "path" in source:
        path = Path(source["path"])
    else:
        from huggingface_hub import hf_hub_download

        hub = source["hub"]
        path = Path(
            hf_hub_download(hub["repo_id"], hub["filename"], revision=hub["revision"], repo_type="dataset")
        )
    import pandas as pd

    missing = [c for c in GAMED_COLUMNS if c not in pd.read_csv(path, nrows=1).columns]
    if missing:
        raise RecordError(f"{path}: not alpaca_eval's df_gamed.csv: missing column(s) {', '.join(missing)}")
    return path


def length_controlled(df, job: dict, seed: int) -> dict:
    """LC win rate, its bootstrap interval and the method used (see the module docstring)."""
    from alpaca_eval.metrics.glm_winrate import GLM_INFO, get_length_controlled_winrate

    method, samples = job["lc_method"], job["bootstrap"]["lc_samples"]
    if "index" not in df:  # the instruction's position in the eval set, for its difficulty
        df = df.assign(index=np.arange(len(df)))
    out = None
    if method in ("official", "auto"):
        try:
            path = _gamed_path(job)
            with _gamed_data(path):
                lc = get_length_controlled_winrate(
                    df.copy(), save_weights_dir=None, is_warn_extreme_changes=False
                )
                info = GLM_INFO["length_controlled_v1"]
                _, C = _fit(df, info, official=True)

                def replicate(idx):
                    return _fit(df.iloc[idx].reset_index(drop=True), info, True, C)[0]

                ci = bootstrap_ci(len(df), replicate, seed, samples)
            where = f"local file {path}" if path else "alpaca_eval's hub data"
            out = {
                "value": float(lc["length_controlled_winrate"]),
                "ci": ci,
                "method": f"official length_controlled_v1 ({where})",
            }
        except (OSError, ValueError, RecordError, KeyError) as e:  # offline, or data that does not fit
            if method == "official":
                raise RuntimeError(f"official LC win rate needs alpaca_eval's df_gamed.csv: {e}") from e
            log.warning("official LC GLM unavailable (%s: %s); using the approximation", type(e).__name__, e)
    if out is None:
        info = GLM_INFO["length_controlled_minimal"]
        value, C = _fit(df, info, official=False)
        ci = bootstrap_ci(
            len(df), lambda idx: _fit(df.iloc[idx].reset_index(drop=True), info, False, C)[0], seed, samples
        )
        out = {
            "value": value,
            "ci": ci,
            "method": "approximate (no instruction difficulty)",
            "note": APPROXIMATION,
        }
    return out


def metrics(job: dict, annotations_path: str, output: str, upstream: list[str] = ()) -> None:
    import pandas as pd
    from alpaca_eval.metrics import get_winrate

    started = time.time()
    df = pd.DataFrame(read_json(annotations_path))
    if df.empty or "preference" not in df:
        raise RecordError(f"{annotations_path}: no annotations with a 'preference'")
    seed = job["cell"].get("seed") or 0
    m = {k: float(v) for k, v in get_winrate(df).items()}
    weighted, discrete = win_values(df["preference"])
    samples = job["bootstrap"]["samples"]
    m["win_rate_ci"] = bootstrap_mean_ci(_units(weighted), seed, samples, scale=100)
    m["discrete_win_rate_ci"] = bootstrap_mean_ci(_units(discrete), seed, samples, scale=100)
    lc = length_controlled(df, job, seed)
    m["length_controlled_winrate"], m["length_controlled_winrate_ci"] = lc["value"], lc["ci"]
    m["lc_method"] = lc["method"]
    if "note" in lc:
        m["lc_note"] = lc["note"]
    m["n_not_preference"] = int(np.isnan(weighted).sum())  # left out by alpaca_eval's win rates
    m["avg_length"] = float(df["output_2"].str.len().mean())
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
                "upstream": cost.upstream(list(upstream)),  # wall time and GPU-hours of the jobs behind it
            },
        },
    )
