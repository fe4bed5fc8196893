"""Steps `figures` and `budget-sweep`: training figures (PNG for reading, PDF for papers).

``likelihood_trajectories``: mean change of log pi(y_w) (solid) and log pi(y_l) (dashed) against the
reference, per training step, one colour per regularizer and one panel per (policy, ranker); seeds
are averaged and their spread shaded.

``budget_sweep``: the final change of log pi(y_w) and log pi(y_l) over the training pairs against the
budget delta, one panel per (policy, ranker); dpop sits at delta = 0 and plain DPO at infinity. The
grey floor marks -delta, the lowest mean the budget allows. Also written as a CSV table.
"""

from __future__ import annotations

import math
import textwrap

from harness.io import read_json, read_jsonl, write_text
from harness.tables import save, to_csv


def likelihood_trajectories(logs: list[str], output_png: str, output_pdf: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    rows = [rec for path in logs for _, rec in read_jsonl(path)]
    if not rows:
        raise ValueError("no training-log rows to plot")
    df = pd.DataFrame(rows)
    panels = sorted(df.groupby(["policy", "ranker"]).groups)
    regs = sorted(df["regularizer"].unique())
    colours = {r: plt.get_cmap("tab10")(n % 10) for n, r in enumerate(regs)}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False, sharey=True)
    for ax, (policy, ranker) in zip(axes[0], panels, strict=True):
        sub = df[(df["policy"] == policy) & (df["ranker"] == ranker)]
        for reg, g in sub.groupby("regularizer"):
            for col, style in (("logratio/chosen", "-"), ("logratio/rejected", "--")):
                stats = g.groupby("step")[col].agg(["mean", "min", "max"])
                ax.plot(
                    stats.index,
                    stats["mean"],
                    style,
                    color=colours[reg],
                    label=f"{reg} {'chosen' if 'chosen' in col else 'rejected'}",
                )
                if g["seed"].nunique() > 1:
                    ax.fill_between(stats.index, stats["min"], stats["max"], color=colours[reg], alpha=0.15)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_title(f"{policy} / {ranker}")
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("log π(y) − log π_ref(y)  (nats, batch mean)")
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle("Chosen (solid) and rejected (dashed) log-likelihood change during training")
    save(fig, output_png, output_pdf)


def budget_of(regularizer: dict) -> float:
    """The allowed fall of log pi(y_w) (harness.objectives.budget): delta for bcr, 0 for dpop,
    infinity for plain DPO."""
    from harness import objectives

    b = objectives.budget(regularizer)
    if b is None:
        raise ValueError(f"regularizer '{regularizer['name']}' of kind {regularizer['kind']} has no budget")
    return b


def budget_table(inputs: list[str]):
    """The main-table aggregation (harness.report) of the sweep's cells, with each cell's budget."""
    from harness.report import build_table

    deltas = {}
    for path in inputs:
        data = read_json(path)
        if "regularizer" in data:  # a training summary
            deltas[data["cell"]["regularizer"]] = budget_of(data["regularizer"])
    table = build_table(inputs)
    table.insert(3, "delta", table["regularizer"].map(deltas))
    return table.sort_values(["policy", "ranker", "delta"]).reset_index(drop=True)


def budget_sweep(inputs: list[str], output_png: str, output_pdf: str, output_csv: str) -> None:
    """Figure and CSV of the sweep from training summaries (and evaluation metrics, where evaluated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.report import COLUMNS

    table = budget_table(inputs)
    panels = sorted(table.groupby(["policy", "ranker"]).groups)
    evals = [
        c for c in ("alpaca_eval_lc", "oracle_score", "mt_bench") if c in table and table[c].notna().any()
    ]
    fig, axes = plt.subplots(
        1 + len(evals),
        len(panels),
        figsize=(5.5 * len(panels), 4 + 3 * len(evals)),
        squeeze=False,
        sharex="col",
    )
    for col_no, (policy, ranker) in enumerate(panels):
        sub = table[(table["policy"] == policy) & (table["ranker"] == ranker)]
        x = list(range(len(sub)))  # budgets as evenly spaced categories: 0, 0.25, ..., infinity
        ax = axes[0][col_no]
        for col, style, name in (("chosen", "o-", "log π(y_w)"), ("rejected", "s--", "log π(y_l)")):
            mean = sub[f"{col}_logratio"]
            std = sub[f"{col}_logratio_std"].fillna(0) if f"{col}_logratio_std" in sub else 0 * mean
            ax.errorbar(x, mean, yerr=std, fmt=style, capsize=3, label=name)
        floors = [-d if math.isfinite(d) else math.nan for d in sub["delta"]]
        # drawn over the points (and wider than them), so that a point sitting on its floor leaves it visible
        ax.plot(x, floors, "_", color="black", ms=26, mew=2.5, zorder=5, label="−δ (budget floor)")
        ax.axhline(0.0, color="grey", lw=0.6, ls=":")
        ax.set_title(f"{policy} / {ranker}")
        ax.set_ylabel("final change against the reference (nats)")
        ax.legend(fontsize=8, loc="best")
        for row_no, metric in enumerate(evals, start=1):
            ax = axes[row_no][col_no]
            std = sub[f"{metric}_std"].fillna(0) if f"{metric}_std" in sub else 0 * sub[metric]
            ax.errorbar(x, sub[metric], yerr=std, fmt="o-", capsize=3)
            ax.set_ylabel(COLUMNS[metric])
        ax = axes[-1][col_no]
        labels = [
            f"{d:g}\n({r})" if d in (0, math.inf) else f"{d:g}"
            for d, r in zip(sub["delta"], sub["regularizer"], strict=True)
        ]
        ax.set_xticks(x, labels)
        ax.set_xlabel("budget δ (nats)")
        for row in axes:
            row[col_no].grid(alpha=0.3)
    # wrapped to the figure's width: one panel is narrow (the title was cut at both edges)
    fig.suptitle(
        textwrap.fill(
            "Final log-likelihood change over the training pairs against the budget δ", 9 * len(panels) + 40
        )
    )
    save(fig, output_png, output_pdf)
    write_text(output_csv, to_csv(table))
