"""Steps `training-curves` and `budget-sweep`: training figures (PNG for reading, PDF for papers).

``likelihood_trajectories``: mean change of log pi(y_w) (solid) and log pi(y_l) (dashed) against the
reference, per training step, one colour per regularizer and one panel per (policy, ranker); seeds
are averaged and their spread shaded.

``budget_sweep``: the final change of log pi(y_w) and log pi(y_l) over the training pairs against the
budget delta, one panel per (policy, ranker); dpop sits at delta = 0 and plain DPO at infinity. The
grey floor marks -delta, the lowest mean the budget allows. Also written as a CSV table.

``comparisons``: the `comparisons` step's forest plot of paired differences.
"""

from __future__ import annotations

import math
import textwrap

from harness.core.io import read_json, read_jsonl, write_text
from harness.reporting.paired import by_metric, identical
from harness.reporting.tables import save, to_csv

MARKERS = "osD^vP*X"


def likelihood_trajectories(logs: list[str], output_png: str, output_pdf: str) -> None:
    """Chosen and rejected log-likelihood change per step, one panel per (policy, ranker), wrapped two
    to a row; regularizers told apart by colour and marker, chosen (solid) from rejected (dashed) by
    line style; one legend for the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    rows = [rec for path in logs for _, rec in read_jsonl(path)]
    if not rows:
        raise ValueError("no training-log rows to plot")
    every_step = pd.DataFrame(rows)
    df = _full_batches(every_step)
    panels = sorted(df.groupby(["policy", "ranker"]).groups)
    regs = sorted(df["regularizer"].unique())
    colours = {r: plt.get_cmap("tab10")(n % 10) for n, r in enumerate(regs)}
    markers = {r: MARKERS[n % len(MARKERS)] for n, r in enumerate(regs)}
    cols = min(2, len(panels))
    nrows = -(-len(panels) // cols)
    spare = nrows * cols > len(panels)
    fig, axes = plt.subplots(nrows, cols, figsize=(6.2 * cols, 4.2 * nrows + (0 if spare else 0.8)),
                             squeeze=False, sharey=True)  # fmt: skip
    for ax, (policy, ranker) in zip(axes.flat, panels, strict=False):
        sub = df[(df["policy"] == policy) & (df["ranker"] == ranker)]
        for n, (reg, g) in enumerate(sub.groupby("regularizer")):
            for col, style in (("logratio/chosen", "-"), ("logratio/rejected", "--")):
                stats = g.groupby("step")[col].agg(["mean", "min", "max"])
                every = max(1, len(stats) // 8)
                ax.plot(stats.index, stats["mean"], style, color=colours[reg], marker=markers[reg], ms=4,
                        markevery=(n % every, every), lw=1.6, zorder=3 + n)  # fmt: skip
                if g["seed"].nunique() > 1:
                    ax.fill_between(stats.index, stats["min"], stats["max"], color=colours[reg], alpha=0.12)
        ax.axhline(0.0, color="grey", lw=0.8)
        for step in _epoch_ends(
            every_step[(every_step["policy"] == policy) & (every_step["ranker"] == ranker)]
        ):
            ax.axvline(step, color="0.6", lw=0.8, ls=":", zorder=1)
        ax.set_title(f"{policy} / {ranker}", fontsize=11)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("log π(y) − log π_ref(y)  (nats)")
    free = list(axes.flat)[len(panels) :]
    for ax in free:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=colours[r], marker=markers[r], label=r) for r in regs]
    handles += [
        plt.Line2D([], [], color="0.3", ls="-", label="chosen y_w"),
        plt.Line2D([], [], color="0.3", ls="--", label="rejected y_l"),
    ]
    if any(
        _epoch_ends(every_step[(every_step["policy"] == p) & (every_step["ranker"] == r)]) for p, r in panels
    ):
        handles.append(plt.Line2D([], [], color="0.6", ls=":", label="end of an epoch"))
    if len(regs) and "seed" in df and df["seed"].nunique() > 1:
        handles.append(plt.Rectangle((0, 0), 1, 1, color="0.3", alpha=0.15, label="range over seeds"))
    fig.suptitle("Chosen and rejected log-likelihood change during training (full-batch means, seed mean)")
    if free:
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        box = free[0].get_position()
        fig.legend(handles=handles, loc="center", bbox_to_anchor=(box.x0 + box.width / 2, box.y0 + box.height / 2),
                   fontsize=10, frameon=False)  # fmt: skip
    else:
        fig.tight_layout(rect=(0, 0.08, 1, 0.95))
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=9, frameon=False)
    save(fig, output_png, output_pdf, tight=False)


def _full_batches(df):
    """The training-log rows of full optimizer batches. An epoch's last step may average far fewer
    pairs (228 pairs in batches of 16: a last batch of 4), and its mean jumps for it; such a step is
    told by its token count (``num_tokens`` is cumulative): under half the median step's tokens."""
    if "num_tokens" not in df:
        return df
    keys = ["policy", "ranker", "regularizer", "seed"]
    df = df.sort_values([*keys, "step"]).reset_index(drop=True)
    tokens = df.groupby(keys)["num_tokens"].diff()
    median = tokens.groupby([df[k] for k in keys]).transform("median")
    return df[tokens.isna() | (tokens >= 0.5 * median)]


def _epoch_ends(df) -> list[int]:
    """Steps that end an epoch (``epoch`` reaches a whole number), the last step of training left out."""
    if "epoch" not in df or df.empty:
        return []
    per_step = df.groupby("step")["epoch"].max().sort_index()
    whole = per_step[(per_step - per_step.round()).abs() < 1e-6]
    return [int(s) for s in whole.index if s != per_step.index.max()]


def budget_of(regularizer: dict) -> float:
    """The allowed fall of log pi(y_w) (harness.training.objectives.budget): delta for bcr, 0 for dpop,
    infinity for plain DPO."""
    from harness.training import objectives

    b = objectives.budget(regularizer)
    if b is None:
        raise ValueError(f"regularizer '{regularizer['name']}' of kind {regularizer['kind']} has no budget")
    return b


def budget_table(inputs: list[str]):
    """The main-table aggregation (harness.reporting.report) of the sweep's cells, with each cell's budget."""
    from harness.reporting.report import build_table

    deltas = {}
    for path in inputs:
        data = read_json(path)
        if "regularizer" in data:  # a training summary
            deltas[data["cell"]["regularizer"]] = budget_of(data["regularizer"])
    table = build_table(inputs)
    table.insert(3, "delta", table["regularizer"].map(deltas))
    return table.sort_values(["policy", "ranker", "delta"]).reset_index(drop=True)


def _budget_positions(deltas: list[float]) -> tuple[list[float], float | None]:
    """x positions of the budgets: finite ones at their value, infinity a fixed gap past the largest
    (where the axis is drawn broken); and infinity's position, or None."""
    finite = [d for d in deltas if math.isfinite(d)]
    top = max(finite, default=0.0) or 1.0
    inf_x = top * 1.35
    return [d if math.isfinite(d) else inf_x for d in deltas], (inf_x if len(finite) < len(deltas) else None)


def _line_with_break(ax, x, y, err, style, label, inf_x) -> None:
    """Points with error bars; the line joins the finite budgets and is dotted across the break to ∞."""
    line = ax.errorbar(x, y, yerr=err, fmt=style[0], capsize=3, label=label)
    colour = line[0].get_color()
    fin = [(a, b) for a, b in zip(x, y, strict=True) if inf_x is None or a != inf_x]
    ax.plot([a for a, _ in fin], [b for _, b in fin], style[1:], color=colour)
    if inf_x is not None and fin:
        end = next(b for a, b in zip(x, y, strict=True) if a == inf_x)
        ax.plot([fin[-1][0], inf_x], [fin[-1][1], end], ":", color=colour)


def _axis_break(ax, inf_x: float) -> None:
    """Two slanted strokes on the x axis between the largest finite budget and ∞."""
    at = inf_x / 1.35 * 1.17
    kw = {"transform": ax.get_xaxis_transform(), "color": "black", "lw": 1.2, "clip_on": False, "zorder": 6}
    for dx in (-0.012, 0.012):
        ax.plot([at + dx * inf_x - 0.01 * inf_x, at + dx * inf_x + 0.01 * inf_x], [-0.02, 0.02], **kw)


def budget_sweep(inputs: list[str], output_png: str, output_pdf: str, output_csv: str) -> None:
    """Figure and CSV of the sweep from training summaries (and evaluation metrics, where evaluated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.core.benchmarks import BENCHMARKS
    from harness.reporting.report import COLUMNS

    table = budget_table(inputs)
    panels = sorted(table.groupby(["policy", "ranker"]).groups)
    evals = [c for b in BENCHMARKS.values() for c in b.sweep_columns if c in table and table[c].notna().any()]
    fig, axes = plt.subplots(
        1 + len(evals),
        len(panels),
        figsize=(5.5 * len(panels), 4 + 3 * len(evals)),
        squeeze=False,
        sharex="col",
    )
    for col_no, (policy, ranker) in enumerate(panels):
        sub = table[(table["policy"] == policy) & (table["ranker"] == ranker)]
        x, inf_x = _budget_positions(list(sub["delta"]))
        ax = axes[0][col_no]
        for col, style, name in (("chosen", "o-", "log π(y_w)"), ("rejected", "s--", "log π(y_l)")):
            mean = sub[f"{col}_logratio"]
            std = sub[f"{col}_logratio_std"].fillna(0) if f"{col}_logratio_std" in sub else 0 * mean
            _line_with_break(ax, x, list(mean), list(std), style, name, inf_x)
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
            _line_with_break(ax, x, list(sub[metric]), list(std), "o-", None, inf_x)
            ax.set_ylabel(COLUMNS[metric])
        ax = axes[-1][col_no]
        labels = [
            ("∞" if d == math.inf else f"{d:g}") + (f"\n({r})" if d in (0, math.inf) else "")
            for d, r in zip(sub["delta"], sub["regularizer"], strict=True)
        ]
        ax.set_xticks(x, labels)
        ax.set_xlabel("budget δ (nats; ∞ after the break: no budget)")
        for row in axes:
            row[col_no].grid(alpha=0.3)
            if inf_x is not None:
                _axis_break(row[col_no], inf_x)
    # wrapped to the figure's width: one panel is narrow (the title was cut at both edges)
    fig.suptitle(
        textwrap.fill(
            "Final log-likelihood change over the training pairs against the budget δ", 9 * len(panels) + 40
        )
    )
    save(fig, output_png, output_pdf)
    write_text(output_csv, to_csv(table))


def comparisons(rows: list[dict], output_png: str, output_pdf: str) -> None:
    """Forest plot: one panel per benchmark metric, each comparison's difference and 95% interval, the
    zero line marked; filled where Holm's p < 0.05."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = by_metric(rows)
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
            if identical(r):  # not a zero-width interval, which would read as certainty
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
    if any(identical(r) for r in rows):
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
