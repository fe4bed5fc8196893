"""Warm start (harness/workflow/warm.py) against plain `python -m harness` processes, side by side in one run:
the same demo jobs (answer generation, a training, a downstream evaluation, a metrics step), each run
cold and warm in turn, their wall times and the ratio, and whether the two wrote the same outputs.

Run in a finished demo workspace (`make demo` first); the jobs' commands come from Snakemake's dry
run of their outputs (so they are the workflow's own), and write into a temporary folder, not the
workspace:

    python benchmarks/warm_start.py [--workspace .] [--repeats 3]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.workflow import warm  # noqa: E402

CELL = "tiny-policy/rm/nll/seed0"
TARGETS = {
    "generate": f"results/demo/eval/{CELL}/alpaca_eval/answers.json",
    "train": f"results/demo/training/{CELL}/summary.json",
    "downstream": f"results/demo/eval/{CELL}/downstream/metrics.json",
    "metrics": f"results/demo/eval/{CELL}/mt_bench/metrics.json",
}
OUTPUT_FLAGS = ("--output", "--meta", "--log", "--summary", "--metrics", "--samples")
# fields that differ between any two runs, cold or warm: times, and lm-eval's temporary task folder
VOLATILE = (
    "provenance",
    "tokens_per_second",
    "train_runtime",
    "seconds",
    "wall_time_s",
    "date",
    "config_source",
)


def commands(workspace: Path) -> dict[str, str]:
    """Each target's shell command, as a forced dry run of the demo prints it."""
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", "--configfile", "config/demo.yaml",
         "--forcerun", *TARGETS.values(), "--", *TARGETS.values()],
        cwd=workspace, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )  # fmt: skip
    if r.returncode != 0:
        sys.exit(f"error: the dry run in {workspace} failed (a finished demo workspace?): {r.stderr[-500:]}")
    found = re.findall(r"^rule (\w+):.*?^Shell command: (.*?)$", r.stdout, re.M | re.S)
    by_rule = {rule: cmd for rule, cmd in found}
    missing = [s for s in TARGETS if s not in by_rule]
    if missing:
        sys.exit(f"error: the dry run planned no {', '.join(missing)} job for {CELL}")
    return {s: by_rule[s] for s in TARGETS}


def redirect(cmd: str, out: Path) -> str:
    """The command with every output (and its log) in ``out``."""
    words = shlex.split(cmd.split(" > ")[0].split("set -euo pipefail; ")[-1])
    for i, w in enumerate(words[:-1]):
        if w in OUTPUT_FLAGS:
            words[i + 1] = str(out / w.strip("-"))
    assign = [w for w in words[: words.index("python")]]  # OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
    rest = shlex.join(words[len(assign) :])
    return " ".join([*assign, rest]) + f" > {shlex.quote(str(out / 'job.log'))} 2>&1"


def run(cmd: str, env: dict) -> float:
    started = time.perf_counter()
    r = subprocess.run(["bash", "-c", cmd], env=env)
    took = time.perf_counter() - started
    if r.returncode != 0:
        sys.exit(f"error: exit {r.returncode}: {cmd}")
    return took


def first_difference(a: Path, b: Path) -> str | None:
    """The first output that differs between two runs (byte for byte, or for JSON and JSON lines
    without the fields that measure time), or None."""

    def records(path: Path):
        text = path.read_text()
        try:
            data = json.loads(text)
            rows = data if isinstance(data, list) else [data]
        except ValueError:
            rows = [json.loads(x) for x in text.splitlines() if x.strip()]
        return [strip(r) for r in rows]

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in VOLATILE}
        return [strip(v) for v in x] if isinstance(x, list) else x

    for path in sorted(p for p in a.rglob("*") if p.is_file() and p.name != "job.log"):
        other = b / path.relative_to(a)
        if not other.exists():
            return str(path.relative_to(a))
        if filecmp.cmp(path, other, shallow=False):
            continue
        try:
            if records(path) == records(other):
                continue
        except (ValueError, UnicodeDecodeError):
            pass
        return str(path.relative_to(a))
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", default=".", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ws = args.workspace.resolve()
    cmds = commands(ws)
    os.chdir(ws)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ws))
    path = warm.start(ws / "logs/warm_start_benchmark.log")
    while not os.path.exists(path):
        time.sleep(0.1)
    warm_env = dict(env, **{warm.ENV: os.environ[warm.ENV], warm.PREFIX_ENV: os.environ[warm.PREFIX_ENV]})
    env.pop(warm.ENV, None)
    env.pop(warm.PREFIX_ENV, None)
    print(f"{'job':<12}{'cold s':>9}{'warm s':>9}{'ratio':>8}  same outputs")
    total = {"cold": 0.0, "warm": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for step, cmd in cmds.items():
            times = {"cold": [], "warm": []}
            for k in range(args.repeats):
                for mode, e in (("cold", env), ("warm", warm_env)):
                    out = Path(tmp) / step / "out"  # one path for both: outputs that embed it compare equal
                    out.mkdir(parents=True)
                    times[mode].append(run(redirect(cmd, out), e))
                    (Path(tmp) / step / mode).mkdir(exist_ok=True)
                    out.rename(Path(tmp) / step / mode / str(k))
            cold, hot = statistics.median(times["cold"]), statistics.median(times["warm"])
            total["cold"] += cold
            total["warm"] += hot
            differs = first_difference(Path(tmp) / step / "cold" / "0", Path(tmp) / step / "warm" / "0")
            same = "yes" if differs is None else f"NO: {differs}"
            print(f"{step:<12}{cold:>9.2f}{hot:>9.2f}{cold / hot:>7.1f}x  {same}")
    warm.stop()
    print(f"{'all four':<12}{total['cold']:>9.2f}{total['warm']:>9.2f}{total['cold'] / total['warm']:>7.1f}x")
    print(f"(medians of {args.repeats} runs each, cold and warm alternating, on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
