"""The pinned environments resolve, as a GPU user's pip would resolve them from PyPI.

Every env file's pip list (with its conda-level pins that are PyPI packages too, such as setuptools;
report.yaml's conda-forge pins are checked as PyPI versions), every pyproject extra and the README's
GPU install (``.[gpu,dev]``) go through pip's own resolver with ``pip install --dry-run
--ignore-installed --report``: nothing is installed, only metadata is read. Linux x86_64 from PyPI
means CUDA wheels for torch and vLLM. This machine's pip configuration (local wheel folders, caps)
is left out, so the answer is PyPI's.

The sets of one stack are resolved together first: one solution holds every subset, so one pip
run per stack (about a minute) answers for all. Only where that fails is each set resolved alone,
and each failure names its file or extra and pip's own account of the conflict. Skips with a reason where no package index
answers, or on a platform other than the envs' (Linux x86_64, CPython 3.11).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import tomllib
import yaml

from .conftest import ROOT

INDEX = "https://pypi.org/simple/"
NOT_ON_PYPI = {"python", "pip"}  # conda-level pins for the interpreter and the installer themselves


def env_requirements(path) -> list[str]:
    """An env file's pins as pip requirements: its pip list and its conda-level Python packages."""
    reqs = []
    for dep in yaml.safe_load(open(path, encoding="utf-8"))["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            spec = item.split("#")[0].strip()
            name = re.split(r"[=<>!~ ]", spec, maxsplit=1)[0]
            if name not in NOT_ON_PYPI:
                reqs.append(re.sub(r"(?<![=<>!~])=(?!=)", "==", spec))  # conda's = is pip's ==
    return reqs


def requirement_sets() -> dict[str, tuple[str, list[str]]]:
    """Each set to resolve: name -> (its stack, requirements). The job stack (what the rules run: the
    envs, the GPU install) and the driver (what Snakemake submits from: [slurm]) are resolved apart:
    pyproject.toml says why one environment cannot hold both."""
    sets = {f"envs/{p.name}": ("jobs", env_requirements(p)) for p in sorted((ROOT / "envs").glob("*.yaml"))}
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for x in sorted(extras):
        sets[f"pyproject.toml [{x}]"] = ("driver" if x == "slurm" else "jobs", [f"{ROOT}[{x}]"])
    sets["README GPU install .[gpu,dev]"] = ("jobs", [f"{ROOT}[gpu,dev]"])
    sets["Makefile CPU install .[dev,slurm]"] = ("driver", [f"{ROOT}[dev,slurm]"])
    return sets


def _pip_env() -> dict:
    """PyPI alone: no pip config files or PIP_* settings of this machine, except its CA bundle."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_DEFAULT_TIMEOUT="60")
    if os.environ.get("PIP_CERT"):
        env["PIP_CERT"] = os.environ["PIP_CERT"]
    return env


def resolve(requirements: list[str]) -> tuple[dict | None, str]:
    """pip's resolution of ``requirements``: (its --report, "") or (None, why it failed)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-input",
               "--index-url", INDEX, "--report", report, *requirements]  # fmt: skip
        r = subprocess.run(cmd, capture_output=True, text=True, env=_pip_env(), timeout=1200)
        if r.returncode == 0:
            return json.load(open(report, encoding="utf-8")), ""
    return None, conflict(r.stdout + r.stderr)


def conflict(output: str) -> str:
    """pip's own account of a failed resolution, in one line: the requirements in conflict."""
    lines = output.splitlines()
    if "The conflict is caused by:" in lines:
        start = lines.index("The conflict is caused by:") + 1
        cause = []
        for line in lines[start:]:
            if not line.strip():
                break
            cause.append(line.strip())
        return "; ".join(cause)
    errors = [line for line in lines if line.startswith("ERROR:")]
    return " ".join(errors) or output.strip()[-500:]


def check(sets: dict[str, tuple[str, list[str]]]) -> tuple[dict, list[str]]:
    """Resolve each stack's union of ``sets`` (a solution of the union solves every part); where one
    fails, each of its sets alone. Returns ({stack: its report}, one line per set that does not resolve)."""
    stacks = sorted({stack for stack, _ in sets.values()})
    unions = [sorted({r for st, reqs in sets.values() if st == stack for r in reqs}) for stack in stacks]
    with ThreadPoolExecutor(3) as pool:  # the index's round trips, not this machine, are the limit
        solved = dict(zip(stacks, pool.map(resolve, unions), strict=True))
        again = {name: reqs for name, (stack, reqs) in sets.items() if solved[stack][0] is None}
        alone = dict(zip(again, pool.map(resolve, again.values()), strict=True))
    reports = {stack: rep for stack, (rep, _) in solved.items() if rep is not None}
    return reports, [f"{name}: {why}" for name, (rep, why) in alone.items() if rep is None]


@pytest.fixture(scope="module")
def index():
    if platform.system() != "Linux" or platform.machine() != "x86_64" or sys.version_info[:2] != (3, 11):
        pytest.skip("the envs are pinned for Linux x86_64 with Python 3.11; pip resolves for the running one")
    try:
        urllib.request.urlopen(f"{INDEX}pip/", timeout=15).close()
    except OSError as e:
        pytest.skip(f"no package index answers at {INDEX} ({e})")
    return INDEX


@pytest.mark.slow
def test_every_env_file_and_extra_resolves(index):
    sets = requirement_sets()
    assert {"envs/sample.yaml", "envs/train.yaml", "envs/evaluate.yaml", "envs/report.yaml"} <= set(sets)
    reports, failures = check(sets)
    assert not failures, "these do not resolve:\n" + "\n".join(failures)
    got = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in reports["jobs"]["install"]}
    # the GPU stack it resolved to: one torch (vLLM's, a CUDA build) under vLLM, TRL and DeepSpeed
    assert (got["vllm"], got["torch"], got["trl"], got["deepspeed"]) == (
        "0.33.0",
        "2.14.0",
        "1.16.0",
        "0.19.8",
    )
    assert any(name.startswith("nvidia-") for name in got), "torch from PyPI for Linux brings CUDA libraries"


def test_a_conflicting_pin_is_named(index, tmp_path):
    """An env file given a pin that its other packages exclude fails, naming the file and both sides."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"channels": ["conda-forge"], "dependencies": [
        "python=3.11", {"pip": ["vllm==0.33.0", "transformers==5.24.0"]}]}))  # fmt: skip
    _, failures = check({"bad.yaml": ("jobs", env_requirements(bad))})
    assert len(failures) == 1 and failures[0].startswith("bad.yaml: ")
    assert "The user requested transformers==5.24.0" in failures[0]
    assert "vllm 0.33.0 depends on transformers<5.21" in failures[0]


def test_env_requirements_reads_conda_and_pip_pins(tmp_path):
    env = tmp_path / "e.yaml"
    env.write_text("dependencies:\n  - python=3.11\n  - pip=25.3\n  - setuptools=80.9.0\n"
                   "  - pip:\n      - torch==2.14.0  # why\n      - numpy==2.3.5\n")  # fmt: skip
    assert env_requirements(env) == ["setuptools==80.9.0", "torch==2.14.0", "numpy==2.3.5"]
