"""Step `figures`: training curves from the per-step logs.

``likelihood_trajectories``: mean change of log pi(y_w) (solid) and log pi(y_l) (dashed) against the
reference, per training step, one colour per regularizer and one panel per (policy, ranker); seeds
are averaged and their spread shaded. PNG for reading, PDF for papers.
"""

from __future__ import annotations

from pathlib import Path

from harness.io import atomic_path, read_jsonl


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
    fig.tight_layout()
    for out, fmt in ((output_png, "png"), (output_pdf, "pdf")):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
    plt.close(fig)
