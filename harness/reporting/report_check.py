"""Open a Snakemake HTML report in headless Chromium and check that it renders and every figure loads.

    python -m harness.reporting.report_check results/report.html [--expect main.csv budget_sweep.png ...]

Two page loads, both in headless Chromium (Debian's ``chromium-headless-shell`` or ``chromium``):
1. the report itself: its app must render its navigation, with every result category, and log no
   JavaScript error;
2. every image the report embeds (its ``results`` table of data URIs), each in an ``<img>`` of a probe
   page: each must load in Chromium with a non-zero size.
``--expect`` names files that must be among the report's results. With ``--first-screen`` the
report's first screen (1400 x 900) must show the results: its description holds the main table (the
``landing`` page) and the screenshot (``--screenshot``, kept where given) is not blank. Exit status 0
when all holds.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
IMAGE_TYPES = ("image/png", "image/svg+xml", "image/jpeg", "image/gif")


def browser() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def render(path: Path, exe: str) -> tuple[str, str]:
    """The DOM after scripts ran, and the browser's console log."""
    out = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom",
         path.resolve().as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"{exe} failed on {path}: {out.stderr[-2000:]}")
    return out.stdout, out.stderr


def embedded_results(html: str) -> dict:
    """The report's ``var results = {...}``: file name -> name, mime type, data URI, caption."""
    m = re.search(r"var results = (\{.*?\});?\s*</script>", html, re.S)
    if not m:
        raise ValueError("no results table in the report (was it made with `snakemake --report`?)")
    return json.loads(m.group(1))


SCREEN = (1400, 900)


def first_screen(report: Path, exe: str, dom: str, screenshot: Path | None = None) -> list[str]:
    """The report opens on its results: the main table in the description, a first screen not blank."""
    from matplotlib.image import imread

    problems = []
    if "<h2>Main table</h2>" not in dom or "<table" not in dom:
        problems.append("the first screen shows no main table (no landing page in the report's description)")
    with tempfile.TemporaryDirectory() as tmp:
        shot = screenshot or Path(tmp) / "first.png"
        subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--hide-scrollbars",
             f"--window-size={SCREEN[0]},{SCREEN[1]}", f"--screenshot={shot}", report.resolve().as_uri()],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        if not shot.exists():
            return [*problems, "no screenshot of the first screen"]
        pixels = imread(shot)[..., :3]
    content = pixels[:, pixels.shape[1] // 5 :]  # right of the navigation bar
    inked = float((content.mean(axis=2) < 0.85).mean())
    if inked < 0.03:
        problems.append(f"the first screen is blank ({100 * inked:.1f}% of it drawn)")
    return problems


def check(report: Path, expect: list[str], screen: bool = False, screenshot: Path | None = None) -> list[str]:
    """Problems found; an empty list means the report is good."""
    exe = browser()
    if exe is None:
        raise FileNotFoundError(
            f"no headless Chromium on PATH (tried {', '.join(BROWSERS)}; Debian: chromium-headless-shell)"
        )
    html = report.read_text(encoding="utf-8")
    results = embedded_results(html)
    problems = []
    names = {Path(k).name for k in results}
    problems += [f"{e} is not in the report" for e in expect if e not in names]

    m = re.search(r"var categories = (\{.*?\});?\s*</script>", html, re.S)
    categories = sorted(json.loads(m.group(1))) if m else []
    dom, console = render(report, exe)
    app = re.search(r'<div id="app">(.*)', dom, re.S)
    if not app or "<nav" not in app.group(1):
        problems.append("the report's app did not render")
    problems += [
        f"category {c} is not in the rendered navigation" for c in categories if app and c not in app.group(1)
    ]
    problems += [f"JavaScript error: {line.strip()}" for line in console.splitlines() if "Uncaught" in line]
    if screen:
        problems += first_screen(report, exe, dom, screenshot)

    images = {k: r for k, r in results.items() if r.get("mime_type") in IMAGE_TYPES}
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        tags = "\n".join(f'<img id="img{i}" src="{r["data_uri"]}">' for i, r in enumerate(images.values()))
        probe.write_text(
            "<html><body>" + tags + "<pre id='out'></pre><script>"
            "window.addEventListener('load', () => { const out = [];"
            "document.querySelectorAll('img').forEach(i => out.push([i.id, i.complete && i.naturalWidth > 0, i.naturalWidth, i.naturalHeight]));"
            "document.getElementById('out').textContent = JSON.stringify(out); });"
            "</script></body></html>"
        )
        probe_dom, _ = render(probe, exe)
    m = re.search(r'<pre id="out">(.*?)</pre>', probe_dom, re.S)
    loaded = json.loads(m.group(1)) if m and m.group(1) else []
    by_id = {f"img{i}": k for i, k in enumerate(images)}
    if len(loaded) != len(images):
        problems.append(f"the probe page saw {len(loaded)} of {len(images)} images")
    problems += [f"figure {by_id[i]} did not load" for i, ok, _, _ in loaded if not ok]
    if not problems:
        print(f"{report}: rendered (categories {', '.join(categories)}); {len(images)} figures load: "
              + ", ".join(f"{Path(by_id[i]).name} {w}x{h}" for i, _, w, h in loaded))  # fmt: skip
    return problems


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--expect", nargs="*", default=[], help="file names that must be among the results")
    ap.add_argument("--first-screen", action="store_true", help="the first screen must show the main table")
    ap.add_argument("--screenshot", type=Path, help="keep the first screen's screenshot here (PNG)")
    args = ap.parse_args(argv)
    problems = check(args.report, args.expect, args.first_screen or bool(args.screenshot), args.screenshot)
    for p in problems:
        print(f"{args.report}: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
