"""Step `report`: the main table, one row per policy x (base | ranker x regularizer), seeds aggregated;
and step `mt-bench-categories`: the MT-Bench per-category table and figure.

Columns: AlpacaEval LC and raw win rate, MT-Bench score, and the final mean change of the chosen
(and rejected) log-likelihood against the reference over the training pairs. Each number carries a
95% interval: over seeds (Student t) where a cell has several, else the run's own bootstrap interval
over instructions or questions (training likelihoods have none then).
"""

from __future__ import annotations

import time

from harness.core.benchmarks import BENCHMARKS, get
from harness.core.io import read_json, write_text
from harness.core.stats import seed_mean_ci
from harness.core.timing import footer
from harness.evaluation.mt_bench import BENCHMARK as MT_BENCH  # its column is its overall score
from harness.reporting.tables import COMPUTE_NOTE, bar_styles, save, to_csv

COLUMNS = {
    **{k: v for b in BENCHMARKS.values() for k, v in b.columns.items()},
    "chosen_logratio": "Δ log π(y_w)",
    "rejected_logratio": "Δ log π(y_l)",
    "chosen_logp_token": "Δ log π(y_w) per token",
    "over_budget": "over budget (%)",
}
KEYS = ["policy", "ranker", "regularizer"]


def _values(path: str) -> tuple[dict, dict]:
    """The cell of a metrics or summary file, and its numbers (with ``<name>_ci`` where it has one)."""
    data = read_json(path)
    cell = data["cell"]
    if "benchmark" not in data:  # a training summary
        if data.get("logratio_unit", "sum") == "token":  # a reference-free objective's own measure
            return cell, {"chosen_logp_token": data["final_chosen_logratio"]}
        out = {
            "chosen_logratio": data["final_chosen_logratio"],
            "rejected_logratio": data["final_rejected_logratio"],
        }
        if data.get("final_over_budget") is not None:
            out["over_budget"] = 100 * data["final_over_budget"]
        return cell, out
    return cell, get(data["benchmark"]).hook("values")(data["metrics"])


def per_seed(paths: list[str]):
    """One row per (policy, ranker, regularizer, seed) with every number the files hold."""
    import pandas as pd

    records: dict[tuple, dict] = {}
    for p in paths:
        cell, vals = _values(p)
        records.setdefault(tuple(cell[k] for k in KEYS + ["seed"]), {}).update(vals)
    return pd.DataFrame([dict(zip(KEYS + ["seed"], k, strict=True), **v) for k, v in records.items()])


def aggregate(rows: list[dict], column: str) -> dict:
    """Mean over seeds of ``column`` with its 95% interval: t over seeds, or the single run's bootstrap."""
    values = [r[column] for r in rows if r.get(column) is not None and r[column] == r[column]]
    if not values:
        return {column: None}
    if len(values) > 1 and len(set(values)) == 1:  # the same number in every seed: no spread at all
        return {column: values[0], f"{column}_std": 0.0, f"{column}_ci": [values[0], values[0]],
                f"{column}_ci_kind": f"t over {len(values)} seeds"}  # fmt: skip
    mean, half = seed_mean_ci(values)
    if half is not None:
        return {column: mean, f"{column}_std": _std(values), f"{column}_ci": [mean - half, mean + half],
                f"{column}_ci_kind": f"t over {len(values)} seeds"}  # fmt: skip
    ci = rows[0].get(f"{column}_ci") if len(rows) == 1 else None
    return {column: mean, f"{column}_ci": ci, f"{column}_ci_kind": "bootstrap" if ci else None}


def _std(values: list[float]) -> float:
    import numpy as np

    return float(np.std(values, ddof=1))


def build_table(paths: list[str]):
    """A DataFrame with one row per (policy, ranker, regularizer), seeds aggregated."""
    import pandas as pd

    df = per_seed(paths)
    out = []
    for key, group in df.groupby(KEYS, sort=False, dropna=False):
        rows = group.to_dict("records")
        row = dict(zip(KEYS, key, strict=True), seeds=group["seed"].nunique())
        for c in [*COLUMNS, *downstream_columns(df), *category_columns(df)]:
            if c in df:
                row.update(aggregate(rows, c))
        if "lc_method" in df:
            row["lc_method"] = group["lc_method"].iloc[0]
        rules = group["mt_bench_ratings"].dropna() if "mt_bench_ratings" in df else ()
        if len(rules):  # MT-Bench ratings outside 1-10 over the row's seeds (a row may have no MT-Bench)
            row["mt_bench_out_of_range"] = int(group["mt_bench_out_of_range"].fillna(0).sum())
            row["mt_bench_ratings"] = rules.iloc[0]
        out.append(row)
    return _base_first(pd.DataFrame(_against_base(out, downstream_columns(df))))


def downstream_columns(df) -> list[str]:
    """The lm-eval task columns (``ds_<task>``) in the order they appear."""
    return [
        c for c in df.columns if c.startswith("ds_") and not c.endswith(("_ci", "_ci_kind", "_std", "_abs"))
    ]


def category_columns(df) -> list[str]:
    """A benchmark's per-category columns (``<column>/<category>`` of a column of the tables, e.g. Arena-Hard
    v2.0's), in order (not their ``_ci``, ``_ci_kind`` or ``_std`` companions)."""
    return [
        c for c in df.columns
        if c.partition("/")[0] in COLUMNS and not c.endswith(("_ci", "_ci_kind", "_std"))
    ]  # fmt: skip


def _against_base(rows: list[dict], columns: list[str]) -> list[dict]:
    """Downstream columns of trained rows as the change against their policy's base (points); the
    accuracy itself stays in ``<column>_abs``. The interval is the trained row's, shifted (the base's
    own uncertainty is not in it)."""
    base = {r["policy"]: r for r in rows if r["ranker"] == "base"}
    for r in rows:
        b = base.get(r["policy"])
        if r["ranker"] == "base" or b is None:
            continue
        for c in columns:
            if r.get(c) is None or b.get(c) is None:
                continue
            r[f"{c}_abs"], r[c] = r[c], r[c] - b[c]
            ci = r.get(f"{c}_ci")
            if isinstance(ci, list | tuple):
                r[f"{c}_ci"] = [ci[0] - b[c], ci[1] - b[c]]
    return rows


def _base_first(table):
    """Rows by policy, the base policy first, then by ranker and regularizer."""
    base_first = table["ranker"].eq("base").map({True: 0, False: 1})
    return (
        table.assign(_o=base_first).sort_values(["policy", "_o", "ranker", "regularizer"]).drop(columns="_o")
    )


def fmt(row, c) -> str:
    v, ci, kind = row.get(c), row.get(f"{c}_ci"), row.get(f"{c}_ci_kind")
    if v is None or v != v:
        return "—"
    if not isinstance(ci, list | tuple):
        return f"{v:.2f}"
    if kind and kind.startswith("t over"):
        if ci[1] == ci[0]:  # every seed gave the same number: no spread to show, not certainty
            return f"{v:.2f} (= in every seed)"
        return f"{v:.2f} ± {(ci[1] - ci[0]) / 2:.2f}"
    return f"{v:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def to_markdown(df) -> str:
    ds = downstream_columns(df)
    cols = [c for c in COLUMNS if c in df] + ds
    names = {**COLUMNS, **{c: f"{c.removeprefix('ds_')} (Δ)" for c in ds}}
    lines = [
        "| policy | ranker | regularizer | seeds | " + " | ".join(names[c] for c in cols) + " |",
        "|" + "---|" * (4 + len(cols)),
    ]
    for _, row in df.iterrows():
        cells = [row["policy"], row["ranker"], row["regularizer"], str(row["seeds"])]
        lines.append("| " + " | ".join(cells + [fmt(row, c) for c in cols]) + " |")
    notes = [
        "\n`a ± h`: mean over seeds with the half-width of its 95% t-interval; `a [l, h]`: one run with its "
        "95% bootstrap interval over instructions (AlpacaEval) or questions (MT-Bench)."
    ]
    notes += [b.table_note for b in BENCHMARKS.values() if b.table_note and any(c in cols for c in b.columns)]
    if any(fmt(row, c).endswith("(= in every seed)") for _, row in df.iterrows() for c in cols):
        notes.append(
            "`(= in every seed)`: each seed's checkpoint gave exactly this number (e.g. the same answers), "
            "so the seeds show no spread; the value is not more certain for it."
        )
    wild = [r for _, r in df.iterrows() if (r.get("mt_bench_out_of_range") or 0) > 0]  # NaN > 0 is False
    for rule, said in (
        (
            "in_range",
            "left out of the means, as unparsable verdicts are (evaluation.mt_bench.ratings: in_range)",
        ),
        ("fastchat", "averaged as they are (ratings: fastchat, FastChat's arithmetic)"),
    ):
        rows = [f"{r['policy']}/{r['ranker']}/{r['regularizer']} {int(r['mt_bench_out_of_range'])}"
                for r in wild if r.get("mt_bench_ratings") == rule]  # fmt: skip
        if rows:
            notes.append(f"MT-Bench ratings outside 1-10 ({', '.join(rows)}) are {said}.")
    if "over_budget" in df:
        notes.append(
            "Over budget: the share of training pairs whose chosen log-likelihood ends more than δ below "
            "the reference (BCR's penalty acts on those; DPOP's δ is 0)."
        )
    if "chosen_logp_token" in df:
        notes.append(
            "Δ log π(y_w) per token: the change of the chosen answers' mean per-token log-likelihood over "
            "the training pairs, measured by a reference-free trainer (SimPO, ORPO) against the policy "
            "before training; Δ log π(y_w) is the summed change against the reference log-probs."
        )
    if "oracle_score" in df:
        notes.append(
            "Demo world: AlpacaEval LC and WR are the oracle's win rates against the base policy's answers "
            "on held-out prompts (the base policy against itself: 50); the oracle score is the mean quality "
            "of the answers (100 = every answer correct)."
        )
    if ds:
        notes.append(
            "Downstream (lm-eval) columns, marked (Δ): the base row gives the task's accuracy (%), every "
            "other row its change against that base in points (the alignment tax where negative); "
            "a single run's interval is ±1.96 lm-eval stderr."
        )
    if "lc_method" in df and df["lc_method"].astype(str).str.startswith("joint").any():
        notes.append(
            "AlpacaEval LC uses instruction difficulty fitted jointly over this run's judged models, "
            "once (lc_method joint; its measured error against the leaderboard LC for the fit size is in "
            "each metrics file, lc_expected_error, and the README)."
        )
    if "lc_method" in df and df["lc_method"].astype(str).str.startswith("approximate").any():
        notes.append(
            "AlpacaEval LC is the offline approximation (alpaca_eval's GLM without instruction "
            "difficulty), not the official number; see the README."
        )
    return "\n".join(lines) + "\n" + "\n".join(notes) + "\n"


def run(job: dict, inputs: list[str], output_csv: str, output_md: str) -> None:
    started = time.time()
    df = build_table(inputs)
    write_text(output_csv, to_csv(df))
    write_text(output_md, to_markdown(df) + COMPUTE_NOTE + footer(job, started))


def category_table(inputs: list[str]):
    """MT-Bench means per category (and overall) per cell, seeds aggregated as in the main table."""
    import pandas as pd

    df = per_seed(inputs)
    if "mt_bench_categories" not in df:
        raise ValueError("no MT-Bench metrics among the inputs")
    categories = sorted({c for cats in df["mt_bench_categories"] for c in cats})
    out = []
    for key, group in df.groupby(KEYS, sort=False, dropna=False):
        rows = [
            {**{c: r["mt_bench_categories"].get(c) for c in categories},
             **{f"{c}_ci": r["mt_bench_categories_ci"].get(c) for c in categories},
             "overall": r[MT_BENCH], "overall_ci": r[f"{MT_BENCH}_ci"]}
            for r in group.to_dict("records")
        ]  # fmt: skip
        row = dict(zip(KEYS, key, strict=True), seeds=group["seed"].nunique())
        for c in categories + ["overall"]:
            row.update(aggregate(rows, c))
        out.append(row)
    return _base_first(pd.DataFrame(out)), categories


def mt_bench_categories(job: dict, inputs: list[str], output_csv: str, output_md: str, output_png: str,
                        output_pdf: str) -> None:  # fmt: skip
    """The per-category table (CSV, Markdown) and a grouped bar figure with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    started = time.time()
    table, categories = category_table(inputs)
    cols = categories + ["overall"]
    lines = [
        "| policy | ranker | regularizer | seeds | " + " | ".join(cols) + " |",
        "|" + "---|" * (4 + len(cols)),
    ]
    for _, row in table.iterrows():
        cells = [row["policy"], row["ranker"], row["regularizer"], str(row["seeds"])]
        lines.append("| " + " | ".join(cells + [fmt(row, c) for c in cols]) + " |")
    write_text(output_csv, to_csv(table))
    write_text(output_md, "\n".join(lines) + "\n" + COMPUTE_NOTE + footer(job, started))

    fig, ax = plt.subplots(figsize=(min(16, max(8, 0.2 * len(cols) * len(table) + 3)), 5))
    width = 0.8 / len(table)
    styles = bar_styles(table.to_dict("records"))
    policies = set(table["policy"])
    x = np.arange(len(cols))
    for i, (_, row) in enumerate(table.iterrows()):
        means = np.array([row.get(c) if row.get(c) is not None else np.nan for c in cols], dtype=float)
        cis = [row.get(f"{c}_ci") for c in cols]
        err = np.array(
            [
                [m - ci[0], ci[1] - m] if isinstance(ci, list | tuple) else [0, 0]
                for m, ci in zip(means, cis, strict=True)
            ]
        ).T
        label = "base" if row["ranker"] == "base" else f"{row['ranker']} / {row['regularizer']}"
        ax.bar(
            x + (i - (len(table) - 1) / 2) * width,
            means,
            width,
            yerr=err,
            capsize=2,
            label=label if len(policies) == 1 else f"{row['policy']}: {label}",
            **styles[(row["ranker"], row["regularizer"])],
        )
    ax.set_xticks(x, cols, rotation=20)
    ax.set_ylim(0, 10.5)
    ax.set_ylabel("MT-Bench score (1-10), 95% interval")
    ax.set_title("MT-Bench by category")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    save(fig, output_png, output_pdf)


def downstream_figure(job: dict, inputs: list[str], output_png: str, output_pdf: str) -> None:
    """Change of each downstream task's accuracy against the base policy, per trained cell (bars with
    95% intervals), one panel per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    table = build_table(inputs)
    cols = downstream_columns(table)
    if not cols:
        raise ValueError("no downstream metrics among the inputs")
    policies = list(dict.fromkeys(table["policy"]))
    styles = bar_styles(table.to_dict("records"))
    fig, axes = plt.subplots(1, len(policies), figsize=(max(7, 1.6 * len(cols) + 4) * len(policies), 5),
                             squeeze=False)  # fmt: skip
    zeros = False
    for ax, policy in zip(axes[0], policies, strict=True):
        rows = table[(table["policy"] == policy) & (table["ranker"] != "base")]
        width = 0.8 / max(1, len(rows))
        x = np.arange(len(cols))
        for i, (_, row) in enumerate(rows.iterrows()):
            means = np.array([row.get(c) if row.get(c) is not None else np.nan for c in cols], dtype=float)
            err = np.array([[m - ci[0], ci[1] - m] if isinstance(ci := row.get(f"{c}_ci"), list | tuple) else [0, 0]
                            for m, c in zip(means, cols, strict=True)]).T  # fmt: skip
            style = styles[(row["ranker"], row["regularizer"])]
            pos = x + (i - (len(rows) - 1) / 2) * width
            ax.bar(
                pos,
                means,
                width,
                yerr=err,
                capsize=2,
                label=f"{row['ranker']} / {row['regularizer']}",
                **style,
            )
            zero = np.isfinite(means) & (np.abs(means) < 1e-9)  # a bar of height 0 would read as missing
            ax.plot(pos[zero], means[zero], "D", ms=4, color=style["color"], mec="black", mew=0.5, zorder=4)
            none = ~np.isfinite(means)  # no value at all: said, not left blank
            for p in pos[none]:
                ax.annotate("n/a", (p, 0), ha="center", va="bottom", fontsize=6, color="0.4")
            zeros = zeros or bool(zero.any())
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, [c.removeprefix("ds_") for c in cols])
        ax.set_ylabel("change against the base policy (points)")
        ax.set_title(f"{policy}: downstream accuracy after preference optimisation")
        ax.grid(axis="y", alpha=0.3)
    # one legend for the figure, below the panels: colour is the regularizer, hatching the ranker
    handles, labels = axes[0][0].get_legend_handles_labels()
    if zeros:
        handles.append(plt.Line2D([], [], marker="D", ls="", color="0.6", mec="black", mew=0.5, ms=4))
        labels.append("no change (0.00)")
    fig.legend(handles, labels, fontsize=8, ncol=min(5, len(labels)), loc="lower center")
    fig.tight_layout(rect=(0, 0.06 + 0.05 * ((len(labels) - 1) // 5), 1, 1))
    save(fig, output_png, output_pdf, tight=False)
