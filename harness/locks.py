"""Clear Snakemake's directory lock when the run that took it is gone: ``python -m harness.locks``.

Snakemake locks the working directory while it runs and removes the lock when it ends, but a killed
run (SIGKILL, a lost node, a closed laptop) leaves it, and every later run stops with "Directory
cannot be locked". The lock records no process id, so this looks for one: if no live process runs
Snakemake from this directory (Linux ``/proc``), the lock is stale and removed, and the next run
recomputes only unfinished jobs (``rerun-incomplete`` in profiles/default). Elsewhere, or when a run
is alive, it changes nothing. `make demo` calls it before it starts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def live_snakemake(workdir: Path) -> list[int]:
    """Process ids of Snakemake runs (other than this process) whose working directory is ``workdir``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        pid = int(proc.name)
        if pid == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:
            continue  # gone, or not ours to read
        if "snakemake" in cmdline and cwd.resolve() == workdir.resolve():
            found.append(pid)
    return found


def clear_stale(workdir: Path) -> bool:
    """Remove the lock files under ``workdir/.snakemake/locks`` if no run holds them; True if removed."""
    locks = workdir / ".snakemake" / "locks"
    files = [p for p in locks.glob("*") if p.is_file()] if locks.is_dir() else []
    if not files or not Path("/proc/self").exists():
        return False
    alive = live_snakemake(workdir)
    if alive:
        print(
            f"harness.locks: a Snakemake run is alive here (pid {', '.join(map(str, alive))}); lock kept",
            file=sys.stderr,
        )
        return False
    for p in files:
        p.unlink(missing_ok=True)
    print(f"harness.locks: removed the stale lock of a killed run in {workdir}", file=sys.stderr)
    return True


if __name__ == "__main__":
    clear_stale(Path.cwd())
