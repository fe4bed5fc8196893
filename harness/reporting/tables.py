"""Helpers every table and figure step shares (report, comparisons, cost, training-curves, ...): a leaf module, so
that those steps import it and not each other.

``to_csv``: a table with each interval as two columns; ``save``: a figure as PNG and PDF, written
atomically; ``bar_styles``: one colour and hatch per cell. The provenance line a table ends with is
harness/core/timing.py's ``footer``.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.io import atomic_path

COMPUTE_NOTE = "\nThe compute behind these numbers (jobs, GPU- and CPU-hours as measured) is in cost.md beside this table.\n"


def to_csv(df) -> str:
    """The table with each interval as two columns, ``<name>_ci_low`` and ``<name>_ci_high``."""
    out = df.copy()
    for c in [c for c in df.columns if c.endswith("_ci")]:
        out[f"{c}_low"] = [v[0] if isinstance(v, list | tuple) else None for v in df[c]]
        out[f"{c}_high"] = [v[1] if isinstance(v, list | tuple) else None for v in df[c]]
        out = out.drop(columns=c)
    return out.to_csv(index=False, float_format="%.4f")


def save(fig, output_png: str, output_pdf: str, tight: bool = True) -> None:
    """``tight``: lay the figure out first (False where the caller has placed things itself)."""
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    for out, fmt in ((output_png, "png"), (output_pdf, "pdf")):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
    plt.close(fig)


HATCHES = ("", "//", "..", "xx", "\\\\", "++", "--", "oo")


def bar_styles(rows) -> dict[tuple[str, str], dict]:
    """A bar style per (ranker, regularizer): the colour says the regularizer, the hatch the ranker, so
    that bars read apart in grey print too; the same rows give the same styles in every bar figure.
    The base policy is grey and plain."""
    import matplotlib

    cells = sorted({(r["ranker"], r["regularizer"]) for r in rows if r["ranker"] != "base"})
    regs = sorted({g for _, g in cells})
    rankers = sorted({k for k, _ in cells})
    colours = matplotlib.colormaps["tab10"].colors
    out = {("base", "—"): {"color": "0.6", "hatch": "", "edgecolor": "black", "linewidth": 0.5}}
    for ranker, reg in cells:
        out[(ranker, reg)] = {
            "color": colours[regs.index(reg) % len(colours)],
            "hatch": HATCHES[rankers.index(ranker) % len(HATCHES)],
            "edgecolor": "black",
            "linewidth": 0.5,
        }
    return out
