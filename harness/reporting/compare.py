"""Paired comparisons between cells: the difference of two cells on one benchmark, with an interval that
counts both sources of noise, a p-value, Holm's correction and the smallest detectable difference.

Two cells are evaluated on the same prompts, so a prompt that is hard for one is hard for the other:
their difference varies much less than either cell, and comparing two per-cell intervals for overlap
is the wrong test. A cell's number is the mean over its seeds of a per-seed statistic T on the prompts
(a win rate, an LC win rate refitted by alpaca_eval's GLM, an oracle score, an MT-Bench score, a task
accuracy). The difference D = mean_s T_A,s - mean_s T_B,s varies

- with the seeds: given the prompts, the Welch term var_s(T_A) / S_A + var_s(T_B) / S_B estimates its
  variance for any statistic, without resampling (a bootstrap of 3 seeds has only 10 distinct draws
  and shrinks their spread by 2/3: in benchmarks/comparison_coverage.py it covers 81-99% instead of
  95%, depending on how large the seed effect is);
- with the prompts: the same prompts are resampled for both cells (a percentile bootstrap with
  replacement, the statistic recomputed on every draw, the LC GLM refitted), and the variance of the
  seed-averaged difference over the draws is taken, less the seed x prompt noise that the Welch term
  has already counted (per cell, the draws' variance of each seed's deviation from the seed mean,
  divided by S - 1).

The interval is D +- t_df x SE with SE^2 the sum of the two parts and df Welch-Satterthwaite's over
the seed terms (S - 1 each) and the prompt term (n - 1); the p-value is the two-sided t test of D = 0.
tests/test_compare.py simulates cells with seed effects, prompt effects, cell x prompt effects and
noise at the demo's sizes (3 seeds, 96 prompts) and checks that the 95% interval covers the true
difference 92-98% of the time and that p-values under no difference reject about 5%.

The minimum detectable difference at 80% power is (t_0.975 + t_0.8) x SE: the smallest true difference
this design finds at alpha 0.05 four times in five. With more seeds the seed part shrinks as 1/S; the
table gives it for ``more_seeds`` seeds too, so a user planning the paper run sees what 3 seeds resolve.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

import numpy as np

from harness.core.io import RecordError

LEVEL = 0.95
POWER = 0.8

# a cell's per-seed statistic: either per-prompt sums and counts, two (seeds x prompts) arrays whose
# statistic is the pooled mean sum / count over the prompts drawn (a prompt without a value counts 0:
# an AlpacaEval row without a verdict, an MT-Bench turn without a rating), or one callable per seed
# mapping prompt indices (None: all) to its statistic (the LC win rate's GLM refit)
Cell = tuple[np.ndarray, np.ndarray] | Sequence[Callable[[np.ndarray | None], float]]


def mean_cell(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A pooled-mean cell from (seeds x prompts) values, NaN where a prompt has none."""
    v = np.asarray(values, dtype=float)
    return np.nan_to_num(v, nan=0.0), (~np.isnan(v)).astype(float)


def _per_seed(cell: Cell, idx: np.ndarray | None) -> np.ndarray:
    """The per-seed statistic on prompts ``idx`` (all when None): shape (seeds,) or, for a 2-D ``idx``
    of draws, (draws, seeds)."""
    if isinstance(cell, tuple):
        sums, counts = cell
        if idx is None:
            return sums.sum(axis=1) / counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sums[:, idx].sum(axis=-1) / counts[:, idx].sum(axis=-1)).T  # (draws, seeds)
    if idx is None:
        return np.array([f(None) for f in cell], dtype=float)
    return np.array([[f(i) for f in cell] for i in idx], dtype=float)


def draws(n: int, samples: int, seed: int) -> np.ndarray:
    """The prompt resamples (``samples`` x ``n`` indices) every cell of one benchmark is evaluated on."""
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def statistics(cell: Cell, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A cell's per-seed statistic on all prompts (seeds,) and on each resample of ``idx`` (draws, seeds)."""
    return _per_seed(cell, None), _per_seed(cell, idx)


def paired(a: Cell, b: Cell, n: int, samples: int, seed: int, more_seeds: int | None = None) -> dict:
    """Cell ``a`` minus cell ``b`` on the same ``n`` prompts (see the module docstring)."""
    idx = draws(n, samples, seed)
    return difference(statistics(a, idx), statistics(b, idx), n, more_seeds)


def difference(a, b, n: int, more_seeds: int | None = None) -> dict:
    """Cell ``a`` minus cell ``b`` from their ``statistics`` on the same resamples of ``n`` prompts.

    Returns: diff, se, ci [low, high], p, df, mde (80% power, alpha 0.05), the variance parts
    (seed_var, prompt_var) and, with ``more_seeds``, mde_more_seeds: the same design with that many
    seeds a cell.
    """
    from scipy import stats

    (ta, da), (tb, db) = a, b
    diff = float(ta.mean() - tb.mean())
    seed_terms = [(float(t.var(ddof=1)) / len(t), len(t)) for t in (ta, tb) if len(t) > 1]
    raw = float(np.nanvar(da.mean(axis=1) - db.mean(axis=1), ddof=1))
    noise = sum(
        float(np.nanmean(np.nanvar(d - d.mean(axis=1, keepdims=True), axis=0, ddof=1))) / (d.shape[1] - 1)
        for d in (da, db)
        if d.shape[1] > 1
    )
    prompt = max(raw - noise, 0.0)
    # the prompt part is known up to the n prompts and the Monte Carlo error of the draws
    prompt_df = 1 / (1 / (n - 1) + 1 / (len(da) - 1))

    def df_of(terms):
        denom = sum(v * v / (k - 1) for v, k in terms) + prompt * prompt / prompt_df
        total = sum(v for v, _ in terms) + prompt
        return total * total / denom if denom > 0 else prompt_df

    seed_part = sum(v for v, _ in seed_terms)
    var = seed_part + prompt
    out = {"diff": diff, "seed_var": seed_part, "prompt_var": prompt, "seeds": [len(ta), len(tb)]}
    if var <= 0:  # identical cells (a model against itself): no spread at all
        return {**out, "se": 0.0, "df": None, "ci": [diff, diff], "p": 1.0 if diff == 0 else 0.0,
                "mde": 0.0, "mde_more_seeds": 0.0 if more_seeds else None}  # fmt: skip
    df, se = df_of(seed_terms), float(np.sqrt(var))
    q = float(stats.t.ppf((1 + LEVEL) / 2, df))
    out.update(
        se=se,
        df=df,
        ci=[diff - q * se, diff + q * se],
        p=float(2 * stats.t.sf(abs(diff) / se, df)),
        mde=float((q + stats.t.ppf(POWER, df)) * se),
        mde_more_seeds=None,
    )
    if more_seeds:
        scaled = [(v * k / more_seeds, more_seeds) for v, k in seed_terms]
        df2 = df_of(scaled)
        q2 = float(stats.t.ppf((1 + LEVEL) / 2, df2))
        out["mde_more_seeds"] = float(
            (q2 + stats.t.ppf(POWER, df2)) * np.sqrt(sum(v for v, _ in scaled) + prompt)
        )
    return out


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error at any level), in the given order."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


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
    from harness.evaluation.alpaca_metrics import lc_estimator, load_difficulty, win_values

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


def _identical(r: dict) -> bool:
    """A comparison whose two cells scored every paired unit (prompt, question, lm-eval doc) the same in
    every seed: its difference and interval are exactly zero (for lm-eval, identical answers)."""
    return bool(np.isfinite(r["diff"])) and r["diff"] == 0 and list(r["ci"]) == [0, 0]


def to_markdown(rows: list[dict], job: dict) -> str:
    """One section per benchmark metric: each comparison's difference, interval, Holm p and MDE."""
    more = job.get("more_seeds")
    out = []
    for (bench, metric), group in _groups(rows).items():
        out += [f"### {metric} ({bench}, {group[0]['units']} units)", ""]
        head = "| policy | comparison | Δ | 95% interval | p (Holm) | MDE 80% |"
        out += [head + (f" MDE, {more} seeds |" if more else ""), "|" + "---|" * (6 + bool(more))]
        for r in group:
            if not np.isfinite(r["diff"]):  # a cell with no value (e.g. every MT-Bench grade unparsable)
                out.append(f"| {r['policy']} | {r['label']} | — | — | — | — |" + (" — |" if more else ""))
                continue
            if _identical(r):  # every paired unit scored the same: no interval to draw, not certainty
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
        "cells), t with Welch-Satterthwaite degrees of freedom (harness/reporting/compare.py); p Holm-adjusted "
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


def _groups(rows: list[dict]) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["benchmark"], r["metric"]), []).append(r)
    return groups


def figure(rows: list[dict], output_png: str, output_pdf: str) -> None:
    """Forest plot: one panel per benchmark metric, each comparison's difference and 95% interval, the
    zero line marked; filled where Holm's p < 0.05."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.reporting.tables import save

    groups = _groups(rows)
    cols = min(3, len(groups)) or 1
    nrows = -(-len(groups) // cols) or 1
    several = len({r["policy"] for r in rows}) > 1

    def label(r):
        return f"{r['policy']} · {r['label']}" if several else r["label"]

    labels = list(dict.fromkeys(label(r) for r in rows))
    height = max(2.5, 0.24 * len(labels) + 1.2)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(3.6 * cols + 2.6, height * nrows), squeeze=False, sharey=True
    )
    comparisons = list(dict.fromkeys(r["comparison"] for r in rows))
    colours = {c: plt.cm.tab10(i) for i, c in enumerate(comparisons)}
    for ax, ((_bench, metric), group) in zip(axes.flat, groups.items(), strict=False):
        for r in (r for r in group if np.isfinite(r["diff"])):
            y = labels.index(label(r))
            c = colours[r["comparison"]]
            if _identical(r):  # not a zero-width interval, which would read as certainty
                ax.plot([0], [y], "x", color="0.45", ms=5)
                ax.annotate("identical", (0, y), xytext=(4, 0), textcoords="offset points", fontsize=6,
                            color="0.45", va="center")  # fmt: skip
                continue
            ax.plot(r["ci"], [y, y], color=c, lw=1.6)
            ax.plot([r["diff"]], [y], "o", color=c, mfc=c if r["p_holm"] < 0.05 else "white", ms=5)
        ax.axvline(0, color="0.3", lw=0.8, ls="--")
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("difference (A − B)", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    spare = list(axes.flat)[len(groups) :]
    for ax in spare:
        ax.set_visible(False)
    axes[0][0].set_yticks(range(len(labels)), labels)
    axes[0][0].invert_yaxis()
    handles = [plt.Line2D([], [], color=colours[c], marker="o", label=c) for c in comparisons]
    handles.append(plt.Line2D([], [], color="0.3", marker="o", mfc="white", ls="", label="Holm p ≥ 0.05"))
    if any(_identical(r) for r in rows):
        handles.append(plt.Line2D([], [], color="0.45", marker="x", ls="", label="identical scores"))
    fig.suptitle("Paired differences between cells (95% intervals; filled: Holm p < 0.05)", fontsize=11)
    if spare:  # the one legend in the first free panel's place
        fig.tight_layout(rect=(0, 0, 1, 0.96))
        box = spare[0].get_position()
        fig.legend(handles=handles, loc="center", bbox_to_anchor=(box.x0 + box.width / 2, box.y0 + box.height / 2),
                   fontsize=9, frameon=False, title="comparison")  # fmt: skip
    else:
        fig.tight_layout(rect=(0, 0.06, 1, 0.96))
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    save(fig, output_png, output_pdf, tight=False)


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
    figure(rows, output_png, output_pdf)
