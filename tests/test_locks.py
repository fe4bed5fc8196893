"""The stale-lock cleanup `make demo` runs first: it removes a killed run's lock, never a live run's."""

import subprocess
import sys
import time

import pytest

from harness.locks import clear_stale, live_snakemake


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
