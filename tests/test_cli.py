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
