"""Run Snakemake on a copy of the workflow, so tests never touch the checkout's results/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from .conftest import ROOT

PARTS = ("Snakefile", "rules", "config", "data", "harness", "profiles", "envs")


def copy_workflow(dest: Path) -> Path:
    for part in PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__", "site.yaml"))
        else:
            shutil.copy2(src, dest / part)
    return dest


def snakemake_command() -> list[str]:
    exe = shutil.which("snakemake")
    assert exe, "snakemake is not on PATH (run the tests through `make test`)"
    return [exe]


def snakemake(
    args: list[str], cwd: Path, timeout: int = 900, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Snakemake in ``cwd`` offline; a SLURM site only where ``env`` gives one (HARNESS_SLURM_*)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_SLURM_")}
    env = dict(base, HF_HUB_OFFLINE="1", PYTHONPATH=str(cwd), **(env or {}))
    return subprocess.run(
        [*snakemake_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run, as {rule: count}."""
    block = output.split("Job stats:")[-1]
    counts = {}
    for line in block.splitlines()[3:]:
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts
