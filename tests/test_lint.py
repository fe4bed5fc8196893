"""Format and lint: ruff, snakefmt and snakemake --lint are part of the suite."""

import shutil
import subprocess

import pytest

from .conftest import ROOT


def _run(*cmd):
    exe = shutil.which(cmd[0])
    if exe is None:
        pytest.fail(f"{cmd[0]} is not installed (it comes with the dev extra: pip install -e '.[dev]')")
    return subprocess.run([exe, *cmd[1:]], cwd=ROOT, capture_output=True, text=True)


def test_ruff():
    r = _run("ruff", "check", "harness", "tests", "benchmarks")
    assert r.returncode == 0, r.stdout


def test_ruff_format():
    r = _run("ruff", "format", "--check", "harness", "tests", "benchmarks")
    assert r.returncode == 0, r.stdout


def test_snakefmt():
    r = _run("snakefmt", "--check", "Snakefile", "rules")
    assert r.returncode == 0, r.stdout + r.stderr


def test_snakemake_lint():
    r = _run("snakemake", "--lint", "--configfile", "config/demo.yaml")
    assert r.returncode == 0 and "good condition" in r.stdout + r.stderr, r.stdout + r.stderr
