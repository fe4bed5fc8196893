"""Every shell command of the README runs as written, so that the README cannot drift from the code.

Commands come from the README's ``bash`` blocks and from inline code that starts with ``snakemake``,
``python -m harness`` or ``make``. Each runs in the form that is possible offline and without a GPU:
Snakemake commands as dry runs (``-n``) in a copy of the workflow, ``make`` targets with ``make -n``,
``pip install`` as a check that the extras it names exist, ``prefetch`` with ``--list``; the rest
(`plan`, `check-config`, `grep`, ...) as written. Commands with a placeholder (``<...>``, ``...``) and
the GPU-only server commands are listed as skipped, with the reason, in the failure message of the
test that counts them.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
import tomllib

from .conftest import ROOT
from .workflow import copy_workflow

pytestmark = pytest.mark.slow

SLURM_SITE = {
    "HARNESS_SLURM_ACCOUNT": "lab",
    "HARNESS_SLURM_CPU_PARTITION": "cpu",
    "HARNESS_SLURM_GPU_PARTITION": "gpu",
}


INLINE: set[str] = set()  # commands quoted in prose, not in a bash block


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    for span in re.findall(r"`([^`\n]+)`", text):
        if re.match(r"(snakemake|python -m harness|make) ", span):
            out.append(span.strip())
            INLINE.add(span.strip())
    return list(dict.fromkeys(out))


# placeholders with a value that runs here
FILLED = {"FILE": "config/demo.yaml", "<file>": "config/demo.yaml"}


def fill(cmd: str) -> str:
    for k, v in FILLED.items():
        cmd = cmd.replace(k, v)
    return cmd


def skip_reason(cmd: str) -> str | None:
    cmd = fill(cmd)
    if "<" in cmd or "..." in cmd or any(re.fullmatch(r"[A-Z]{3,}", t) for t in shlex.split(cmd)):
        return "a placeholder to fill in"
    if cmd in INLINE and cmd.split()[-1] in ("--configfile", "--config", "--profile"):
        return "a fragment of a command in prose"
    if cmd.startswith(("vllm serve", "python -m vllm")):
        return "serves a model (a GPU, the hub)"
    if cmd.startswith("export "):
        return "sets a variable"
    if cmd.startswith((".venv/bin/pytest", "pytest")):
        return "the test runner itself"
    if "--software-deployment-method conda" in cmd and not _has("conda"):
        return "needs conda"
    if "--report" in cmd:
        return "needs a finished run"
    return None


def _has(exe: str) -> bool:
    import shutil

    return shutil.which(exe) is not None


def runnable(cmd: str) -> list[str] | str:
    """The offline form of ``cmd`` as argv, or 'extras' for a pip install (checked separately)."""
    argv = shlex.split(cmd)
    inline = cmd in {fill(c) for c in INLINE}
    if argv[0] == "pip":
        return "extras"
    if argv[0] == "make":
        return ["make", "-n", *argv[1:]]
    if argv[0] == "snakemake":
        argv = [a for a in argv if a != "-n"]
        return ["snakemake", "-n", *argv[1:]]
    if argv[:3] == ["python", "-m", "harness"] and argv[3:4] == ["prefetch"]:
        return [sys.executable, *argv[1:], "--list"]
    if argv[:3] == ["python", "-m", "harness"] and len(argv) == 4 and inline:
        return [sys.executable, *argv[1:], "--help"]  # a step named in prose: it exists
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    return argv


COMMANDS = readme_commands()


def test_the_readme_has_commands():
    ran = [c for c in COMMANDS if not skip_reason(c)]
    assert len(ran) >= 20, ran
    assert any(c.startswith("snakemake --profile profiles/slurm") for c in ran)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_readme_command_runs(cmd, tmp_path):
    reason = skip_reason(cmd)
    if reason:
        pytest.skip(reason)
    argv = runnable(fill(cmd))
    if argv == "extras":
        extras = re.search(r"\.\[([\w,-]+)\]", cmd).group(1).split(",")
        declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        assert set(extras) <= set(declared), f"{cmd}: no extra {sorted(set(extras) - set(declared))}"
        return
    cwd = ROOT
    if argv[0] in ("snakemake", "cp") or argv[1:3] == ["-m", "harness"]:
        (tmp_path / "wf").mkdir()
        cwd = copy_workflow(tmp_path / "wf")  # dry runs write job configs: never into the checkout
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(cwd), **SLURM_SITE)
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, (
        f"`{cmd}` (run as {' '.join(argv)}) exited {r.returncode}:\n{r.stdout[-1500:]}{r.stderr[-1500:]}"
    )
