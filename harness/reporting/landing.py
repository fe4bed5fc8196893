"""Step `landing`: the first screen of the HTML report: the results a reader came for, rendered.

Snakemake's report opens on the workflow description; the Snakefile makes this page that description
(``.. raw:: html`` of results/report/landing.html) once it exists. It holds the main table, the
paired comparisons and the ranker study as HTML tables (from their Markdown files), then each figure
with its caption (the same captions the report gives the files), every image inline as a data URI
so that the report stays one self-contained file.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from harness.core.benchmarks import BENCHMARKS
from harness.core.io import write_text

# The first two rules adjust Snakemake's report page around this description: its container centres
# its content (a long description would open scrolled to its middle, its left edge under the menu)
# and caps its width.
STYLE = """<style>
div.h-screen.overflow-auto.items-center { align-items: flex-start !important; justify-content: flex-start !important; }
div.prose.max-w-lg { max-width: 62rem !important; }
.hl table { border-collapse: collapse; font-size: 11px; margin: 4px 0 10px; }
.hl th, .hl td { border-bottom: 1px solid #ddd; padding: 2px 5px; text-align: right; white-space: nowrap; }
.hl th:nth-child(-n+3), .hl td:nth-child(-n+3) { text-align: left; }
.hl .scroll { overflow-x: auto; max-width: 100%; }
.hl img { max-width: 100%; border: 1px solid #eee; }
.hl p.note { font-size: 11px; color: #555; margin: 2px 0 8px; }
.hl code::before, .hl code::after { content: none !important; }  /* the report's prose style quotes code in backticks */
.hl h2 { font-size: 16px; margin: 14px 0 4px; } .hl h3 { font-size: 13px; margin: 10px 0 2px; }
</style>"""


def md_tables(text: str) -> str:
    """Markdown with pipe tables as HTML: tables, ``###`` headings and paragraphs; comments dropped."""
    out, rows = [], []

    def flush():
        if rows:
            head, body = rows[0], rows[2:]
            out.append('<div class="scroll"><table><tr>' + "".join(f"<th>{c}</th>" for c in head) + "</tr>")
            out.extend("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
            out.append("</table></div>")
            rows.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            rows.append([html.escape(c.strip()) for c in line.strip().strip("|").split("|")])
            continue
        flush()
        if line.startswith("<!--") or not line.strip():
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 4)
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        else:
            note = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(line))
            out.append(f'<p class="note">{note}</p>')
    flush()
    return "\n".join(out)


def caption_html(path: str) -> str:
    from docutils.core import publish_parts

    return publish_parts(Path(path).read_text(), writer_name="html")["body"]


TITLES = {
    "main": "Main table",
    "comparisons": "Paired comparisons",
    "ranker_study": "Ranker study",
    "baselines": "Baselines",
    "likelihood_trajectories": "Likelihood during training",
    "budget_sweep": "Budget sweep",
    **{b.figure[0]: b.figure[1] for b in BENCHMARKS.values() if b.figure},
}
CAPTIONS = {"main": "main_table"}  # caption files of rules/captions/ named otherwise than their output


def _caption(stem: str, captions: str) -> Path:
    return Path(captions) / f"{CAPTIONS.get(stem, stem)}.rst"


def run(tables: list[str], figures: list[str], captions: str, output: str) -> None:
    """``tables``: Markdown tables; ``figures``: PNGs; each titled by its name, captioned from
    ``captions`` (rules/captions/<name>.rst, as the report captions the file itself)."""
    parts = ['<div class="hl">', STYLE]
    for path in tables:
        stem = Path(path).stem
        parts += [f"<h2>{TITLES.get(stem, stem)}</h2>", md_tables(Path(path).read_text())]
    for path in figures:
        stem = Path(path).stem
        data = base64.b64encode(Path(path).read_bytes()).decode()
        title = TITLES.get(stem, stem)
        parts += [f"<h2>{title}</h2>", f'<img alt="{title}" src="data:image/png;base64,{data}">']
        if _caption(stem, captions).exists():
            parts.append(f'<div class="note">{caption_html(str(_caption(stem, captions)))}</div>')
    parts.append("</div>")
    write_text(output, "\n".join(parts) + "\n")
