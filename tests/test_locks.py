"""The stale-lock cleanup `make demo` runs first: it removes a killed run's lock, never a live run's."""

import subprocess
import sys
import time

import pytest

from harness.workflow.locks import clear_stale, live_snakemake


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_stale_lock_removed_live_lock_kept(tmp_path):
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("results/x\n")
    # a process that looks like a Snakemake run in this directory
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "snakemake"], cwd=tmp_path)
    try:
        for _ in range(50):
            if live_snakemake(tmp_path):
                break
            time.sleep(0.1)
        assert live_snakemake(tmp_path) == [alive.pid]
        assert clear_stale(tmp_path) is False and (locks / "0.input.lock").exists()
    finally:
        alive.kill()
        alive.wait()
    assert clear_stale(tmp_path) is True and not any(locks.iterdir())
    assert clear_stale(tmp_path) is False  # nothing left to clear


def test_the_runs_own_parents_are_not_another_run(tmp_path):
    """A run started by a shell or wrapper whose command line names snakemake (make, the vLLM server
    wrapper of `make real`) is one run: its onstart must still cancel a killed run's SLURM jobs."""
    import os
    import subprocess
    import sys

    from .conftest import ROOT

    code = "from pathlib import Path; from harness.workflow.locks import live_snakemake; print(live_snakemake(Path.cwd()))"
    out = subprocess.run(
        ["bash", "-c", f"{sys.executable} -c '{code}'; : snakemake --cores 1"],
        cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
