"""Step `arena-hard-style`: what style control does to each cell's Arena-Hard score.

One row per policy x (base | ranker x regularizer), seeds aggregated as in the main table: the score,
the score with length and markdown controlled, and their difference (CSV, Markdown), and for v2.0 the
same per category (each against its own baseline, as the tool's per-category leaderboards); the figure
draws both per cell on one axis with their intervals (90% bootstrap for one run, as the tool gives;
95% t over seeds), so that a cell whose wins come from longer or more formatted answers stands out.
"""

from __future__ import annotations

import time

from harness.core.benchmarks import get
from harness.core.io import write_text
from harness.core.timing import footer
from harness.evaluation.arena_hard import BENCHMARK
from harness.reporting.report import build_table, category_columns, fmt
from harness.reporting.tables import COMPUTE_NOTE, save, to_csv

PLAIN, CONTROLLED = get(BENCHMARK).columns  # its columns of the main table: the score, style controlled


def style_table(inputs: list[str]):
    """The cells' Arena-Hard scores with and without style control, and the change it makes (points)."""
    table = build_table(inputs)
    if PLAIN not in table:
        raise ValueError("no Arena-Hard metrics among the inputs")
    table = table.copy()
    for cat in ("", *categories(table)):
        plain, controlled = table[PLAIN + cat], table.get(CONTROLLED + cat, [None] * len(table))
        table["style_change" + cat] = [  # NaN where either score is missing
            float("nan") if p is None or p != p or c is None or c != c else c - p
            for p, c in zip(plain, controlled, strict=True)
        ]
    return table


def categories(table) -> list[str]:
    """The per-category suffixes (``/<category>``) of the table's Arena-Hard columns (v2.0), in order."""
    return [c[len(PLAIN) :] for c in category_columns(table) if c.startswith(PLAIN + "/")]


def run(
    job: dict, inputs: list[str], output_csv: str, output_md: str, output_png: str, output_pdf: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    started = time.time()
    table = style_table(inputs)
    cats = categories(table)  # v2.0: a row per category under each cell's overall one
    lines = [
        f"| policy | ranker | regularizer | seeds |{' category |' if cats else ''} Arena-Hard (%) "
        "| style controlled (%) | change (pts) |",
        "|---|---|---|---|" + ("---|" if cats else "") + "---|---|---|",
    ]
    for _, row in table.iterrows():
        for cat in ("", *cats):
            change = row["style_change" + cat]
            lines.append(
                f"| {row['policy']} | {row['ranker']} | {row['regularizer']} | {row['seeds']} "
                + (f"| {cat[1:] or 'all'} " if cats else "")
                + f"| {fmt(row, PLAIN + cat)} | {fmt(row, CONTROLLED + cat)} "
                f"| {'—' if change != change else f'{change:+.2f}'} |"
            )
    note = (
        "\nStyle control: Arena-Hard-Auto's Bradley-Terry fit with the answers' length and markdown "
        "(headers, lists, bold) as covariates against the baseline; a negative change means part of the "
        "plain score came from style. One run's interval is its 90% bootstrap interval, as the tool's.\n"
    )
    write_text(output_csv, to_csv(table))
    write_text(output_md, "\n".join(lines) + "\n" + note + COMPUTE_NOTE + footer(job, started))

    rows = list(table.iterrows())
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.45 * len(rows) + 1.2)))
    for y, (_, row) in enumerate(rows):
        for col, marker, color, dy in ((PLAIN, "o", "#4477aa", 0.12), (CONTROLLED, "s", "#cc6677", -0.12)):
            v, ci = row.get(col), row.get(f"{col}_ci")
            if v is None or v != v:
                continue
            # a style-controlled point is the full fit, its interval bootstrap percentiles: with few
            # battles the point can lie outside it, drawn then without that side
            err = [[max(0, v - ci[0])], [max(0, ci[1] - v)]] if isinstance(ci, list | tuple) else None
            ax.errorbar(v, y + dy, xerr=err, fmt=marker, color=color, capsize=2, ms=5)
    ax.errorbar([], [], fmt="o", color="#4477aa", label="score")
    ax.errorbar([], [], fmt="s", color="#cc6677", label="length and markdown controlled")
    labels = [
        f"{r['policy']}: base"
        if r["ranker"] == "base"
        else f"{r['policy']}: {r['ranker']} / {r['regularizer']}"
        for _, r in rows
    ]
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(50, color="grey", lw=0.8, ls=":")  # even with the baseline
    ax.set_xlabel("Arena-Hard win rate against the baseline (%)")
    ax.set_title("Arena-Hard with and without style control")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=2)
    save(fig, output_png, output_pdf)
