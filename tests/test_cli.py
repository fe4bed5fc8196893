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


# rules that run another step than their own name: the other tables run `report` (the main table's
# rule); the ranker study's ranking runs `rank` with the study's settings (docs/extending.md)
RUNS_ANOTHER = {"evaluated_table": "report", "baselines_table": "report", "rank_study": "rank"}


def test_one_spelling_per_step_across_cli_job_kind_and_rule():
    """Every rule with a job config is named as its job kind, and runs the step of that name (hyphens for
    underscores), but for the few that run a shared step; every kind has a resolver."""
    import re

    from harness.workflow.jobs import RESOLVERS

    from .conftest import ROOT

    seen = {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        text = smk.read_text()
        for name, body in re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", text, re.S | re.M):
            kind = re.search(r'job_config\(\s*"(\w+)"', body)
            step = re.search(r"(?:python|{params.run}) -m harness ([\w-]+)", body)
            if kind:
                seen[name] = kind.group(1)
                assert kind.group(1) == name, (
                    f"{smk.name}: rule {name} writes job configs of kind {kind.group(1)}"
                )
                assert kind.group(1) in RESOLVERS
                want = RUNS_ANOTHER.get(name, name.replace("_", "-"))
                assert step and step.group(1) == want and want in STEPS, (name, step and step.group(1))
    assert len(seen) >= 25 and set(RUNS_ANOTHER) <= set(seen)
