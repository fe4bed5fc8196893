"""The length-controlled (LC) win rate of AlpacaEval 2 and step `lc-difficulty`, the instruction
difficulty that ``lc_method: joint`` fits over every model judged against the same reference.

The LC win rate is alpaca_eval's GLM (its design matrix and logistic-regression code) by one of three
methods, resolved from ``lc_method`` when the DAG is built (``lc_resolved``) and named in the metrics
file and every table:

- official: ``length_controlled_v1`` with alpaca_eval's ``df_gamed.csv`` (instruction difficulty and
  the annotations of two length-gamed baselines): a local file or a pinned hub file named in config,
  else alpaca_eval's own hub download;
- joint: the same formula with the difficulty fitted jointly over the run's own judged models
  (harness/evaluation/difficulty.py), without the gamed baselines;
- approximate: the GLM without the difficulty term; not comparable with leaderboard numbers.

Rows without a preference are left out of every fit (as alpaca_eval does). Bootstrap replicates of the
length-controlled number refit the GLM with the regularisation strength chosen by cross-validation on
the full data (``C`` fixed, the difficulty fixed), which keeps a replicate cheap.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from harness.core.io import RecordError, read_json, write_json
from harness.core.provenance import provenance
from harness.core.records import load_alpaca_instructions, load_annotations
from harness.core.stats import bootstrap_ci

log = logging.getLogger(__name__)

APPROXIMATION = (
    "approximate: alpaca_eval's length-controlled GLM without the instruction-difficulty term and "
    "without regularisation towards the gamed baselines (their data was not available); not comparable "
    "with leaderboard LC numbers"
)
JOINT = (
    "joint: alpaca_eval's length_controlled_v1 formula with each instruction's difficulty fitted jointly "
    "over every model this run judged against the same reference (harness/evaluation/difficulty.py), without "
    "regularisation towards the gamed baselines; fitted once per run and kept (lc_difficulty says which "
    "fit and whether this model was in it); its measured error against the leaderboard LC for this fit "
    "size is lc_expected_error (see the README)"
)
# How far each offline LC method lands from the leaderboard's official LC, in points (mean and 90th
# percentile of the absolute error), measured on the 12 models whose weighted_alpaca_eval_gpt4_turbo
# annotations alpaca_eval publishes (../shared/data/alpaca_eval/published): joint by the number of models
# the difficulty is fitted on (`python benchmarks/lc_joint_loo.py --fit-sizes 2,4,6,8,11 --draws 3`:
# each model held out, fitted on random sets of that many others), approximate by leave-one-out
# (`python benchmarks/lc_joint_loo.py`). Measured 2026-12-04; every metrics file carries its row.
JOINT_ERROR = {2: (3.86, 11.23), 4: (1.87, 4.37), 6: (1.24, 2.88), 8: (0.94, 1.99), 11: (0.87, 1.80)}
APPROXIMATE_ERROR = (5.55, 12.84)
ERROR_SOURCE = (
    "benchmarks/lc_joint_loo.py on the 12 models with published weighted_alpaca_eval_gpt4_turbo annotations"
)


def expected_error(method: str, fit_models: int | None = None) -> dict | None:
    """The measured error of an LC method against the official LC (points), or None for official.
    Joint takes the row of the largest measured fit size not above ``fit_models`` (its error shrinks as
    models are added), and says when the fit is larger than anything measured."""
    if method.startswith("official"):
        return None
    if method.startswith("approximate"):
        mean, p90 = APPROXIMATE_ERROR
        return {"mean_abs": mean, "p90_abs": p90, "source": ERROR_SOURCE + ", leave-one-out"}
    sizes = [n for n in sorted(JOINT_ERROR) if n <= (fit_models or 0)] or [min(JOINT_ERROR)]
    mean, p90 = JOINT_ERROR[sizes[-1]]
    out = {"mean_abs": mean, "p90_abs": p90, "measured_with_models": sizes[-1], "fit_models": fit_models}
    return {**out, "source": ERROR_SOURCE + ", difficulty fitted on random sets of the others"}


GAMED_REPO = "tatsu-lab/alpaca_eval"  # where alpaca_eval's own GLM downloads df_gamed.csv
GAMED_COLUMNS = (
    "model",
    "index",
    "instruction_difficulty",
    "preference",
    "std_delta_len",
    "not_gamed_baseline",
)


def _features(df, difficulty: dict | None = None):
    """alpaca_eval's GLM features of our annotations (its ``_get_featurized_data`` without df_gamed):
    preference in [0, 1], length difference standardised over every row, and, where given, each
    instruction's difficulty (looked up by instruction text)."""
    import pandas as pd

    from harness.evaluation.difficulty import std_delta_len

    feats = pd.DataFrame(
        {
            "preference": df["preference"].astype(float).replace({0.0: 1.5}).to_numpy() - 1,
            "std_delta_len": std_delta_len(df["output_1"].str.len(), df["output_2"].str.len()),
            "not_gamed_baseline": True,
        }
    )
    if difficulty is not None:
        feats["instruction_difficulty"] = [difficulty[i] for i in df["instruction"]]
    return feats


def _official_design(df, gamed_path: Path, info: dict):
    """alpaca_eval's length_controlled_v1 design (what its ``_get_featurized_data`` builds), from the
    df_gamed.csv at ``gamed_path``: each instruction's difficulty from that file (looked up, as alpaca_eval
    does, by the annotation's ``index`` among the file's first row of each instruction), and the two
    gamed baselines' rows added with weight lambda / 2. Returns (train, test, sample weights)."""
    import pandas as pd
    from alpaca_eval.metrics.glm_winrate import make_dmatrix_for_model

    gamed = pd.read_csv(gamed_path).drop(columns=["model"])
    by_row = gamed.drop_duplicates("index")["instruction_difficulty"]
    # alpaca_eval's length feature as it computes it: divided by the pandas std, so equal differences
    # give NaN and patsy leaves those rows out (_features guards the zero for the offline methods)
    delta = (df["output_1"].str.len() - df["output_2"].str.len()).reset_index(drop=True)
    feats = _features(df).assign(std_delta_len=delta / delta.std())
    feats["instruction_difficulty"] = [by_row[i] for i in df["index"]]
    test = feats[["instruction_difficulty", "not_gamed_baseline"]].assign(std_delta_len=0.0)
    both = pd.concat([gamed, feats], axis=0)
    train, test = make_dmatrix_for_model(both, test, formula=info["formula"])
    lam = info["regularize_to_baseline_lambda"]
    weight = both["not_gamed_baseline"].astype(float) + (lam * ~both["not_gamed_baseline"]).astype(float) / 2
    return train, test, weight


def _fit(
    df,
    info: dict,
    method: str,
    C: float | None = None,
    difficulty: dict | None = None,
    gamed: Path | None = None,
):
    """alpaca_eval's GLM on annotations ``df``: (predicted LC win rate in %, the fitted C).

    ``method``: official (``gamed``: df_gamed.csv's difficulty and gamed baselines), joint (``difficulty`` from
    harness/evaluation/difficulty.py, no gamed baselines) or approximate (no difficulty). Rows without a
    preference are left out of the fit, as alpaca_eval does, and kept in the prediction.
    """
    from alpaca_eval.metrics.glm_winrate import fit_LogisticRegressionCV, make_dmatrix_for_model

    if method == "official":
        train, test, weight = _official_design(df, gamed, info)
    else:
        feats = _features(df, difficulty if method == "joint" else None)
        test = feats.drop(columns="preference").assign(std_delta_len=0.0)
        train, test = make_dmatrix_for_model(feats, test, formula=info["formula"])
        weight = None
    keep = train["preference"].notna().to_numpy()
    train, weight = train[keep], None if weight is None else weight[keep]
    if C is None:
        kwargs = {"n_splits": min(info["kwargs"]["n_splits"], int(keep.sum()))}
    else:
        kwargs = {"n_splits": 0, "C": C}
    model = fit_LogisticRegressionCV(train, "preference", is_ytrue_proba=True, sample_weight=weight, **kwargs)
    fitted_c = float(np.ravel(model.C_)[0]) if hasattr(model, "C_") else C
    return float(model.predict_proba(test)[:, 1].mean() * 100), fitted_c


def _judged_against_itself(df) -> bool:
    """Whether the annotations compare a generator with itself (alpaca_eval then gives LC 50)."""
    if "generator_1" not in df or "generator_2" not in df:
        return False
    return list(df["generator_2"].unique()) == list(df["generator_1"].unique()[:1])


def _gamed_path(job: dict) -> tuple[Path, str]:
    """The df_gamed.csv the official method reads, and where it came from: the config's ``lc_data`` (a
    path, or a hub file at a pinned revision), else the file alpaca_eval itself downloads (its dataset
    repository's df_gamed.csv at main)."""
    from huggingface_hub import hf_hub_download

    source = job.get("lc_data")
    if source and "path" in source:
        path, where = Path(source["path"]), f"local file {source['path']}"
    elif source:
        hub = source["hub"]
        path = Path(
            hf_hub_download(hub["repo_id"], hub["filename"], revision=hub["revision"], repo_type="dataset")
        )
        where = f"local file {path}"
    else:
        from alpaca_eval import constants  # the token, cache and force-download settings it uses itself

        path = Path(
            hf_hub_download(
                GAMED_REPO,
                "df_gamed.csv",
                repo_type="dataset",
                token=constants.DATASETS_TOKEN,
                force_download=constants.DATASETS_FORCE_DOWNLOAD,
                cache_dir=constants.DEFAULT_CACHE_DIR,
            )
        )
        where = "alpaca_eval's hub data"
    import pandas as pd

    missing = [c for c in GAMED_COLUMNS if c not in pd.read_csv(path, nrows=1).columns]
    if missing:
        raise RecordError(f"{path}: not alpaca_eval's df_gamed.csv: missing column(s) {', '.join(missing)}")
    return path, where


def gamed_at_hand(bench: dict) -> bool:
    """Whether alpaca_eval's df_gamed.csv is on this machine without a download: the ``lc_data`` path,
    or its hub file (alpaca_eval's own when ``lc_data`` is not set) in the local hub cache."""
    source = bench.get("lc_data") or {"hub": {"repo_id": "tatsu-lab/alpaca_eval", "filename": "df_gamed.csv",
                                              "revision": None}}  # fmt: skip
    if "path" in source:
        return Path(source["path"]).is_file()
    if "hub" not in source:
        return False
    from huggingface_hub import try_to_load_from_cache

    hub = source["hub"]
    found = try_to_load_from_cache(
        hub["repo_id"], hub["filename"], revision=hub.get("revision"), repo_type="dataset"
    )
    return isinstance(found, str)


def lc_group(cfg: dict, policy: str) -> str:
    """Which models share a reference: all (``reference``) or, judged against the base policy's own
    answers, those of one policy."""
    return policy if cfg["evaluation"]["alpaca_eval"].get("reference") == "base" else "reference"


def lc_models(cfg: dict, group: str) -> list[str]:
    """``policy/model`` of every model judged against ``group``'s reference (not the reference itself)."""
    from harness.core.cells import BASE, evaluated_models

    against_base = group != "reference"
    return [
        f"{p}/{m}"
        for p, m in evaluated_models(cfg, "alpaca_eval")
        if lc_group(cfg, p) == group and not (against_base and m == BASE)
    ]


def lc_resolved(cfg: dict, policy: str) -> str:
    """The LC method a model's metrics use: ``lc_method``, with ``auto`` made official where
    df_gamed.csv is at hand, else joint where enough models share the reference, else approximate."""
    b = cfg["evaluation"]["alpaca_eval"]
    method = b["lc_method"]
    if method in ("official", "approximate"):
        return method
    if method == "auto" and gamed_at_hand(b):
        return "official"
    n = len(lc_models(cfg, lc_group(cfg, policy)))
    if method == "joint" and n < 2:
        raise ValueError(
            f"evaluation/alpaca_eval/lc_method: joint needs at least 2 judged models; this config has {n}"
        )
    return "joint" if method == "joint" or n >= b["lc_joint"]["min_models"] else "approximate"


def metrics_job(cfg: dict, policy: str, model: str) -> dict:
    """The LC settings of a model's AlpacaEval metrics job config (harness/workflow/jobs.py)."""
    b = cfg["evaluation"]["alpaca_eval"]
    return {
        "lc_method": lc_resolved(cfg, policy),
        "lc_requested": b["lc_method"],
        "lc_data": b.get("lc_data"),
        "model_key": model,  # whether it was among the models its LC difficulty was fitted on
    }


def length_controlled(df, job: dict, seed: int, difficulty: dict | None = None) -> dict:
    """LC win rate, its bootstrap interval and the method used (see the module docstring)."""
    est = lc_estimator(df, job, difficulty)
    ci = bootstrap_ci(len(df), est["replicate"], seed, job["bootstrap"]["lc_samples"])
    return {
        "value": est["value"],
        "ci": ci,
        "method": est["method"],
        **({"note": est["note"]} if est["note"] else {}),
    }


def lc_estimator(df, job: dict, difficulty: dict | None = None) -> dict:
    """The LC win rate of annotations ``df`` by the job's method: ``value``, ``replicate(idx)`` (the
    GLM refitted on rows ``idx`` at the regularisation C chosen on all rows: what a bootstrap draw
    computes), ``method`` and ``note``."""
    from alpaca_eval.metrics.glm_winrate import GLM_INFO

    method = job["lc_method"]
    if "index" not in df:  # the instruction's position in the eval set, for its difficulty
        df = df.assign(index=np.arange(len(df)))
    if method in ("official", "auto"):
        try:
            path, where = _gamed_path(job)
            info = GLM_INFO["length_controlled_v1"]
            if _judged_against_itself(df):  # alpaca_eval's rule: a baseline's LC is 50 by construction
                value, C = 50.0, None
            else:
                value, C = _fit(df, info, "official", gamed=path)

            def official(idx):
                if C is None:
                    return 50.0
                return _fit(df.iloc[idx].reset_index(drop=True), info, "official", C, gamed=path)[0]

            return {
                "value": value,
                "replicate": official,
                "method": f"official length_controlled_v1 ({where})",
                "note": None,
            }
        except (OSError, ValueError, RecordError, KeyError) as e:  # offline, or data that does not fit
            if method == "official":
                raise RuntimeError(f"official LC win rate needs alpaca_eval's df_gamed.csv: {e}") from e
            log.warning("official LC GLM unavailable (%s: %s); falling back", type(e).__name__, e)
    if method == "joint" or (method == "auto" and difficulty is not None):
        if difficulty is None:
            raise RecordError(
                "lc_method joint needs the jointly fitted instruction difficulty (--difficulty)"
            )
        unknown = sorted(set(df["instruction"]) - set(difficulty["by_instruction"]))
        if unknown:
            raise RecordError(
                f"{difficulty['path']}: no difficulty for {len(unknown)} instruction(s) of these annotations, "
                f"e.g. {unknown[0][:60]!r} (fitted on other instructions)"
            )
        info = GLM_INFO["length_controlled_noreg"]  # v1's formula; no gamed baselines to regularise to
        by = difficulty["by_instruction"]
        value, C = _fit(df, info, "joint", difficulty=by)
        return {
            "value": value,
            "replicate": lambda idx: _fit(df.iloc[idx].reset_index(drop=True), info, "joint", C, by)[0],
            "method": f"joint (length_controlled_v1 formula, instruction difficulty fitted on "
            f"{difficulty['n_models']} models)",
            "note": JOINT,
        }
    info = GLM_INFO["length_controlled_minimal"]
    value, C = _fit(df, info, "approximate")
    return {
        "value": value,
        "replicate": lambda idx: _fit(df.iloc[idx].reset_index(drop=True), info, "approximate", C)[0],
        "method": "approximate (no instruction difficulty)",
        "note": APPROXIMATION,
    }


def load_difficulty(path: str) -> dict:
    data = read_json(path)
    try:
        by = {r["instruction"]: float(r["difficulty"]) for r in data["instructions"]}
        return {
            "by_instruction": by,
            "n_models": len(data["models"]),
            "models": list(data["models"]),
            "path": path,
        }
    except (KeyError, TypeError) as e:
        raise RecordError(f"{path}: not an lc-difficulty step's file (missing {e})") from None


def fit_difficulty(job: dict, eval_set: str, judgments: list[str], output: str) -> None:
    """Step `lc-difficulty`: each instruction's difficulty fitted jointly over ``judgments`` (one
    annotations file per model judged against the same reference), for ``lc_method: joint``."""
    from harness.evaluation import difficulty

    started = time.time()
    instructions = [r["instruction"] for r in load_alpaca_instructions(eval_set)]
    position = {t: i for i, t in enumerate(instructions)}
    models = []
    for path, name in zip(judgments, job["models"], strict=True):
        rows = load_annotations(path)
        for k, r in enumerate(rows):
            if r["instruction"] not in position:
                raise RecordError(
                    f"{path}: annotation {k}: instruction not in {eval_set}: {r['instruction'][:60]!r}"
                )
        models.append(
            difficulty.judged(
                name,
                [position[r["instruction"]] for r in rows],
                [len(r["output_1"]) for r in rows],
                [len(r["output_2"]) for r in rows],
                [np.nan if r["preference"] is None else r["preference"] for r in rows],
            )
        )
    fitted = difficulty.difficulty(models, len(instructions), job["lambdas"], job["folds"], job["seed"])
    gamma = fitted.pop("instruction_difficulty")
    write_json(
        output,
        {
            "benchmark": "alpaca_eval",
            "group": job["group"],
            **fitted,
            "instructions": [
                {"index": i, "instruction": t, "difficulty": float(g)}
                for i, (t, g) in enumerate(zip(instructions, gamma, strict=True))
            ],
            "provenance": provenance(job, started=started),
        },
    )
