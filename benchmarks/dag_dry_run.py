"""How long Snakemake takes to plan every job of the paper config (target: under 10 s).

Runs `snakemake -n` for the paper config and for the demo config side by side, three times each,
and prints the median wall times; the last line is the paper plan's time as a ratio of the 10 s
budget (at most 1.0 passes).

    .venv/bin/python benchmarks/dag_dry_run.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 10.0


def plan_seconds(args: list[str]) -> float:
    exe = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    start = time.perf_counter()
    subprocess.run([exe, "-n", "--quiet", "rules", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    runs = {"paper": [], "demo": []}
    for _ in range(3):
        runs["paper"].append(plan_seconds([]))
        runs["demo"].append(plan_seconds(["--configfile", "config/demo.yaml"]))
    paper, demo = (statistics.median(runs[k]) for k in ("paper", "demo"))
    print(f"demo dry run:  {demo:.2f} s (median of 3)")
    print(f"paper dry run: {paper:.2f} s (median of 3), {paper / demo:.1f}x the demo")
    print(f"paper dry run / {BUDGET_S:.0f} s budget: {paper / BUDGET_S:.2f}")


if __name__ == "__main__":
    main()
