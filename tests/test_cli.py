"""Every sub-command answers --help; bad job input fails with one clear line."""

import subprocess
import sys

import pytest

from harness.cli import STEPS


@pytest.mark.parametrize("step", sorted(STEPS))
def test_help(step):
    out = subprocess.run([sys.executable, "-m", "harness", step, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"usage: harness {step}" in out.stdout


def test_unknown_step_lists_steps():
    out = subprocess.run([sys.executable, "-m", "harness", "sampel"], capture_output=True, text=True)
    assert out.returncode != 0
    assert "invalid choice" in out.stderr and "sample" in out.stderr


@pytest.mark.parametrize("step", sorted(STEPS))
def test_each_step_runs_a_function_with_its_own_arguments(step):
    """A declaration names a function that exists and calls it only with what the step takes."""
    import importlib

    from harness.cli import _parser

    s = STEPS[step]
    if callable(s.run):
        return
    module, _, fn = s.run.partition(":")
    assert callable(getattr(importlib.import_module(module), fn, None)), s.run
    sub = next(a for a in _parser()._actions if a.dest == "step").choices[step]
    dests = {a.dest for a in sub._actions} | ({"job"} if s.config else set())
    assert set(s.call) <= dests, set(s.call) - dests
