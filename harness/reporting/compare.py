"""Step `compare`: paired comparisons of the main table's cells on every benchmark (harness/reporting/
paired.py has the statistics: the interval, p-value, Holm's correction and the smallest detectable
difference), as CSV, Markdown and a forest plot."""

from __future__ import annotations

import re
import time

import numpy as np

from harness.core.io import RecordError
from harness.reporting.figures import comparisons
from harness.reporting.paired import by_metric, difference, draws, holm, identical, mean_cell, statistics

# ---- the `compare` step: comparisons of the main table's cells on every benchmark ----

_EVAL = re.compile(
    r"(?:^|/)results/[^/]+/eval/(?P<policy>[^/]+)/(?P<model>.+?)/(?P<bench>alpaca_eval|mt_bench|downstream)/(?P<file>[^/]+)$"
)
_DIFFICULTY = re.compile(r"(?:^|/)results/[^/]+/eval/difficulty/alpaca_eval/(?P<group>[^/]+)\.json$")
BASE = "base"


def _cell_of(policy: str, model: str) -> tuple[tuple[str, str, str], int | None]:
    """(policy, ranker, regularizer) and seed of a model key (``base`` or ``ranker/regularizer/seedN``)."""
    if model == BASE:
        return (policy, BASE, "—"), None
    ranker, regularizer, seed = model.rsplit("/", 2)
    return (policy, ranker, regularizer), int(seed.removeprefix("seed"))


def _files(inputs: list[str]) -> tuple[dict, dict]:
    """{benchmark: {cell: {seed: path}}} of the per-prompt files, and {group: difficulty path}."""
    per: dict = {}
    difficulty = {}
    for path in inputs:
        m = _EVAL.search(path)
        d = _DIFFICULTY.search(path)
        if d:
            difficulty[d.group("group")] = path
        elif m and m.group("file").startswith(("judgments", "samples")):
            cell, seed = _cell_of(m.group("policy"), m.group("model"))
            per.setdefault(m.group("bench"), {}).setdefault(cell, {})[seed] = path
        else:
            raise RecordError(f"{path}: not a judgments, samples or difficulty file of the evaluation")
    return per, difficulty


def _aligned(keys: list, order: list, path: str, what: str) -> np.ndarray:
    """Positions of ``order``'s units in a file's ``keys``; the two sets must be equal."""
    pos = {k: i for i, k in enumerate(keys)}
    missing = [k for k in order if k not in pos]
    if missing or len(pos) != len(order):
        extra = [k for k in keys if k not in set(order)]
        raise RecordError(
            f"{path}: its {what} differ from the other cells' ({len(missing)} missing, e.g. "
            f"{(missing or extra)[0]!r}): paired cells must be evaluated on the same {what}"
        )
    return np.array([pos[k] for k in order])


def alpaca_cells(files: dict, job: dict, difficulty: dict) -> tuple[list, dict]:
    """Units (instructions) and, per metric, each cell's per-seed statistic: the win rate and the oracle
    score (pooled means of per-instruction values) and the LC win rate (the GLM refitted per draw)."""
    import pandas as pd

    from harness.core.records import load_annotations
    from harness.evaluation.alpaca_metrics import win_values
    from harness.evaluation.lc import lc_estimator, load_difficulty

    loaded = {group: load_difficulty(path) for group, path in difficulty.items()}  # each file once
    order, metrics = None, {"lc": {}, "wr": {}, "oracle_score": {}}
    for cell, seeds in files.items():
        wr, oracle, lc = [], [], []
        lc_of = job["lc"][cell[0]]
        lc_job = {"lc_method": lc_of["method"], "lc_data": lc_of.get("lc_data")}
        for seed in sorted(seeds, key=lambda s: -1 if s is None else s):
            path = seeds[seed]
            df = pd.DataFrame(load_annotations(path))
            keys = list(df["instruction"])
            order = order or keys
            df = df.iloc[_aligned(keys, order, path, "instructions")].reset_index(drop=True)
            wr.append(100 * win_values(df["preference"])[0])
            if "oracle_score_2" in df:
                oracle.append(100 * df["oracle_score_2"].to_numpy(dtype=float))
            est = lc_estimator(df.assign(index=np.arange(len(df))), lc_job, loaded.get(lc_of["group"]))
            lc.append(lambda idx, e=est: e["value"] if idx is None else e["replicate"](idx))
        metrics["wr"][cell] = mean_cell(np.array(wr))
        if oracle:
            metrics["oracle_score"][cell] = mean_cell(np.array(oracle))
        metrics["lc"][cell] = lc
    return order, {k: v for k, v in metrics.items() if v}


def mt_bench_cells(files: dict) -> tuple[list, dict]:
    """Units (questions, both turns) and each cell's per-question score sums and counts (a turn rated -1
    counts nothing, as in FastChat's show_result)."""
    from harness.core.records import load_mt_judgments

    order, out = None, {}
    for cell, seeds in files.items():
        sums, counts = [], []
        for seed in sorted(seeds, key=lambda s: -1 if s is None else s):
            path = seeds[seed]
            by: dict = {}
            for rec in load_mt_judgments(path):
                s, c = by.get(rec["question_id"], (0.0, 0.0))
                ok = rec["score"] != -1
                by[rec["question_id"]] = (s + (rec["score"] if ok else 0.0), c + ok)
            keys = sorted(by)
            order = order or keys
            pos = _aligned(keys, order, path, "questions")
            sums.append([by[keys[i]][0] for i in pos])
            counts.append([by[keys[i]][1] for i in pos])
        out[cell] = (np.array(sums, dtype=float), np.array(counts, dtype=float))
    return order, {"score": out}


def downstream_cells(files: dict, tasks: list[dict]) -> dict:
    """Per task, its units (documents) and each cell's per-document metric (lm-eval's per-sample logs)."""
    from harness.core.io import read_jsonl

    out = {}
    for t in tasks:
        metric, _, filt = t["metric"].partition(",")
        order, cells_ = None, {}
        for cell, seeds in files.items():
            rows = []
            for seed in sorted(seeds, key=lambda s: -1 if s is None else s):
                path = seeds[seed]
                values = {
                    rec["doc_id"]: 100 * float(rec["value"])
                    for _, rec in read_jsonl(path)
                    if rec["task"] == t["name"]
                    and rec["metric"] == metric
                    and rec["filter"] == (filt or "none")
                }
                if not values:
                    raise RecordError(f"{path}: no per-sample '{t['metric']}' of task {t['name']}")
                keys = sorted(values)
                order = order or keys
                rows.append([values[keys[i]] for i in _aligned(keys, order, path, "documents")])
            cells_[cell] = mean_cell(np.array(rows))
        out[t["name"]] = (order, cells_)
    return out


def pairs(job: dict, present: set) -> list[tuple[str, tuple, tuple, str]]:
    """(comparison name, cell A, cell B, row label) of every comparison the config asks for, among
    the cells ``present``: for ``vary: regularizer``, each regularizer against the reference one under
    the same policy and ranker; ``vary: ranker``, each ranker against the reference ranker under the
    same regularizer; ``vary: model``, every cell against the base policy. Each pair of cells once: a
    pair an earlier comparison already holds the other way round (NLL against DPO, then DPO against
    NLL) is left out. Labels are one notation, ``A − B``, each cell as ranker/regularizer (or base)."""

    def name(cell):
        return BASE if cell[1] == BASE else f"{cell[1]}/{cell[2]}"

    out, seen = [], set()
    for spec in job["comparisons"]:
        vary, ref = spec["vary"], spec["reference"]
        for cell in map(tuple, job["cells"]):
            policy, ranker, reg = cell
            if vary == "model":
                other = (policy, BASE, "—")
            elif vary == "regularizer":
                other = (policy, ranker, ref)
            else:  # ranker
                other = (policy, ref, reg)
            pair = frozenset((cell, other))
            if other != cell and cell in present and other in present and pair not in seen:
                seen.add(pair)
                out.append(
                    (spec.get("name") or f"{vary} vs {ref}", cell, other, f"{name(cell)} − {name(other)}")
                )
    return out


METRICS = {
    ("alpaca_eval", "lc"): "AlpacaEval LC (%)",
    ("alpaca_eval", "wr"): "AlpacaEval WR (%)",
    ("alpaca_eval", "oracle_score"): "Oracle score (0-100)",
    ("mt_bench", "score"): "MT-Bench (1-10)",
}


def table(job: dict, inputs: list[str]) -> list[dict]:
    """One row per (benchmark metric, comparison); Holm's correction within each benchmark metric."""
    import warnings

    with warnings.catch_warnings():  # scikit-learn's deprecation notes, once per GLM refit
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        return _table(job, inputs)


def _table(job: dict, inputs: list[str]) -> list[dict]:
    per, difficulty = _files(inputs)
    families: list[tuple[str, str, list, dict, int]] = []  # (bench, metric, units, cells, draws)
    if "alpaca_eval" in per:
        order, metrics = alpaca_cells(per["alpaca_eval"], job, difficulty)
        b = job["benchmarks"]["alpaca_eval"]
        for name, cells_ in metrics.items():
            families.append(
                ("alpaca_eval", name, order, cells_, b["lc_samples" if name == "lc" else "samples"])
            )
    if "mt_bench" in per:
        order, metrics = mt_bench_cells(per["mt_bench"])
        families.append(
            ("mt_bench", "score", order, metrics["score"], job["benchmarks"]["mt_bench"]["samples"])
        )
    if "downstream" in per:
        for task, (order, cells_) in downstream_cells(
            per["downstream"], job["benchmarks"]["downstream"]["tasks"]
        ).items():
            families.append(("downstream", task, order, cells_, job["benchmarks"]["downstream"]["samples"]))
    rows = []
    for bench, metric, order, cells_, samples in families:
        idx = draws(len(order), samples, job["seed"])
        stats_ = {}
        family = []
        for name, a, b_, label in pairs(job, set(cells_)):
            for c in (a, b_):
                if c not in stats_:
                    stats_[c] = statistics(cells_[c], idx)
            r = difference(stats_[a], stats_[b_], len(order), job.get("more_seeds"))
            family.append({
                "benchmark": bench,
                "metric": METRICS.get((bench, metric), f"{metric} (%)"),
                "comparison": name,
                "policy": a[0],
                "label": label,
                "a": "/".join(a[1:]),
                "b": "/".join(b_[1:]) if b_[1] != BASE else BASE,
                "files_a": _pattern(per[bench][a]),
                "files_b": _pattern(per[bench][b_]),
                "units": len(order),
                "draws": samples,
                **r,
            })  # fmt: skip
        finite = [r for r in family if np.isfinite(r["p"])]  # a comparison without a value is no test
        for row, adj in zip(finite, holm([r["p"] for r in finite]), strict=True):
            row["p_holm"] = adj
        for row in family:
            row.setdefault("p_holm", float("nan"))
        rows += family
    return rows


def _pattern(seeds: dict) -> str:
    """The per-prompt files of one cell, with its seeds as ``seed{0,1,2}``."""
    paths = [seeds[s] for s in sorted(seeds, key=lambda s: -1 if s is None else s)]
    if len(paths) == 1:
        return paths[0]
    marks = ",".join(str(s) for s in sorted(seeds))
    return re.sub(r"/seed\d+/", f"/seed{{{marks}}}/", paths[0], count=1)


COLUMNS = ["benchmark", "metric", "comparison", "policy", "label", "a", "b", "seeds", "diff", "diff_ci", "p",
           "p_holm", "df", "mde", "mde_more_seeds", "seed_var", "prompt_var", "units", "draws", "files_a",
           "files_b"]  # fmt: skip


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:+.{digits}f}"


def to_markdown(rows: list[dict], job: dict) -> str:
    """One section per benchmark metric: each comparison's difference, interval, Holm p and MDE."""
    more = job.get("more_seeds")
    out = []
    for (bench, metric), group in by_metric(rows).items():
        out += [f"### {metric} ({bench}, {group[0]['units']} units)", ""]
        head = "| policy | comparison | Δ | 95% interval | p (Holm) | MDE 80% |"
        out += [head + (f" MDE, {more} seeds |" if more else ""), "|" + "---|" * (6 + bool(more))]
        for r in group:
            if not np.isfinite(r["diff"]):  # a cell with no value (e.g. every MT-Bench grade unparsable)
                out.append(f"| {r['policy']} | {r['label']} | — | — | — | — |" + (" — |" if more else ""))
                continue
            if identical(r):  # every paired unit scored the same: no interval to draw, not certainty
                out.append(
                    f"| {r['policy']} | {r['label']} | 0 (identical scores) | — | — | — |"
                    + (" — |" if more else "")
                )
                continue
            star = " *" if r["p_holm"] < 0.05 else ""
            line = (
                f"| {r['policy']} | {r['label']} | {_fmt(r['diff'])}{star} | "
                f"[{_fmt(r['ci'][0])}, {_fmt(r['ci'][1])}] | {r['p_holm']:.3g} | {r['mde']:.2f} |"
            )
            out.append(line + (f" {r['mde_more_seeds']:.2f} |" if more else ""))
        out.append("")
    out.append(
        "Δ: cell A minus cell B, each the mean over its seeds; 95% interval and two-sided p from the seed "
        "variance (Welch, over seeds) plus the prompt variance (the same prompts resampled for both "
        "cells), t with Welch-Satterthwaite degrees of freedom (harness/reporting/paired.py); p Holm-adjusted "
        "within each benchmark metric, * where below 0.05 (intervals are per comparison, unadjusted). "
        "MDE: the smallest true difference found at alpha 0.05 with 80% power by this design"
        + (f", and with {more} seeds a cell" if more else "")
        + ". Per-prompt files of each comparison: comparisons.csv beside this table (files_a, files_b)."
        + (
            " —: no difference to compute, a cell has no value (every MT-Bench grade unparsable, say; "
            "the metrics files count them)."
            if any(not np.isfinite(r["diff"]) for r in rows)
            else ""
        )
    )
    return "\n".join(out) + "\n"


def run(
    job: dict, inputs: list[str], output_csv: str, output_md: str, output_png: str, output_pdf: str
) -> None:
    import pandas as pd

    from harness.core.io import write_text
    from harness.core.timing import footer
    from harness.reporting.tables import to_csv

    started = time.time()
    rows = table(job, inputs)
    if not rows:
        raise RecordError("comparisons: no pair of the configured comparisons has both cells evaluated")
    df = pd.DataFrame(rows).rename(columns={"ci": "diff_ci"})[COLUMNS]
    df["seeds"] = [f"{a} vs {b}" for a, b in df["seeds"]]
    write_text(output_csv, to_csv(df))
    write_text(output_md, to_markdown(rows, job) + footer(job, started))
    comparisons(rows, output_png, output_pdf)
