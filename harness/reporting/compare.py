"""Step `comparisons`: paired comparisons of the main table's cells on every benchmark (harness/reporting/
paired.py has the statistics: the interval, p-value, Holm's correction and the smallest detectable
difference), as CSV, Markdown and a forest plot."""

from __future__ import annotations

import re
import time

import numpy as np

from harness.core.benchmarks import BENCHMARKS, get
from harness.core.cells import BASE, ModelKey
from harness.core.io import RecordError
from harness.core.stats import seed_order
from harness.reporting.figures import comparisons
from harness.reporting.paired import by_metric, difference, draws, holm, identical, statistics

# ---- the `comparisons` step: comparisons of the main table's cells on every benchmark ----


def _files(job: dict) -> dict:
    """{benchmark: {cell: {seed: path}}} of the per-prompt files the job names (``files``: per
    benchmark, [policy, model key, path] of each evaluated model)."""
    per: dict = {}
    for bench, entries in job["files"].items():
        for policy, model, path in entries:
            ranker, regularizer, seed = ModelKey.parse(model)
            per.setdefault(bench, {}).setdefault((policy, ranker, regularizer), {})[seed] = path
    return per


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


def table(job: dict) -> list[dict]:
    """One row per (benchmark metric, comparison); Holm's correction within each benchmark metric."""
    import warnings

    with warnings.catch_warnings():  # scikit-learn's deprecation notes, once per GLM refit
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        return _table(job)


def _table(job: dict) -> list[dict]:
    per = _files(job)
    families: list[tuple[str, str, list, dict, int]] = []  # (bench, metric, units, cells, draws)
    for bench in (b for b in BENCHMARKS if b in per):  # the registry's order
        paired_cells = get(bench).hook("paired")
        families += [(bench, *f) for f in paired_cells(per[bench], job, job.get("difficulty", {}))]
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
                "metric": metric,
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
    paths = [seeds[s] for s in seed_order(seeds)]
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
            if not np.isfinite(r["se"]):  # one unit: nothing to resample, so no interval and no test
                out.append(
                    f"| {r['policy']} | {r['label']} | {_fmt(r['diff'])} | — | — | — |"
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
        + (
            " A difference without an interval: its benchmark has one unit (one prompt or question), and "
            "how a score varies with the prompts cannot be estimated from one; evaluate more to test it."
            if any(np.isfinite(r["diff"]) and not np.isfinite(r["se"]) for r in rows)
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
    named = {path for entries in job["files"].values() for *_, path in entries}
    named |= set(job.get("difficulty", {}).values())
    if named != set(inputs):  # the job config and the rule's inputs were resolved from one config
        odd = sorted(named ^ set(inputs))[0]
        raise RecordError(
            f"{odd}: not both among --inputs and in the job config's files (a stale job config)"
        )
    rows = table(job)
    if not rows:
        raise RecordError("comparisons: no pair of the configured comparisons has both cells evaluated")
    df = pd.DataFrame(rows).rename(columns={"ci": "diff_ci"})[COLUMNS]
    df["seeds"] = [f"{a} vs {b}" for a, b in df["seeds"]]
    write_text(output_csv, to_csv(df))
    write_text(output_md, to_markdown(rows, job) + footer(job, started))
    comparisons(rows, output_png, output_pdf)
