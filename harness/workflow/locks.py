"""Clear Snakemake's directory lock when the run that took it is gone: ``python -m harness.workflow.locks``.

Snakemake locks the working directory while it runs and removes the lock when it ends, but a killed
run (SIGKILL, a lost node, a closed laptop) leaves it, and every later run stops with "Directory
cannot be locked". The lock records no process id, so this looks for one: if no live process runs
Snakemake from this directory (Linux ``/proc``), the lock is stale and removed, and the next run
recomputes only unfinished jobs (``rerun-incomplete`` in profiles/default). Elsewhere, or when a run
is alive, it changes nothing. `make demo` calls it before it starts.

A killed run on SLURM also leaves its jobs queued or running; a rerun would submit the same jobs again
and two copies would write one cell. ``cancel_leftovers`` cancels this user's SLURM jobs that run in
this directory; the workflow calls it before its first sbatch (a Snakemake run holds the directory
lock, so any such job belongs to a run that is gone), and so does this command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ACTIVE = "PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED,REQUEUED,RESIZING"


def _in_slurm_job(proc: Path, cmdline: str) -> bool:
    """A process of a SLURM job (the job-side Snakemake of one rule, or its children), not a run."""
    if "slurm-jobstep" in cmdline:
        return True
    try:
        return b"\0SLURM_JOB_ID=" in b"\0" + (proc / "environ").read_bytes()
    except OSError:
        return False


def _ancestors() -> set[int]:
    """This process and the ones that started it (a make or a server wrapper that names snakemake)."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def live_snakemake(workdir: Path) -> list[int]:
    """Process ids of Snakemake runs (other than this process and its parents) whose working
    directory is ``workdir``."""
    found, mine = [], _ancestors()
    for proc in Path("/proc").glob("[0-9]*"):
        pid = int(proc.name)
        if pid in mine:
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:
            continue  # gone, or not ours to read
        if "snakemake" in cmdline and cwd.resolve() == workdir.resolve() and not _in_slurm_job(proc, cmdline):
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
            f"harness.workflow.locks: a Snakemake run is alive here (pid {', '.join(map(str, alive))}); lock kept",
            file=sys.stderr,
        )
        return False
    for p in files:
        p.unlink(missing_ok=True)
    print(f"harness.workflow.locks: removed the stale lock of a killed run in {workdir}", file=sys.stderr)
    return True


def leftover_jobs(workdir: Path) -> list[str]:
    """Ids of this user's unfinished SLURM jobs whose working directory is ``workdir`` ([] without SLURM)."""
    if not shutil.which("squeue"):
        return []
    try:
        out = subprocess.run(
            ["squeue", "--me", "-h", "-t", ACTIVE, "-o", "%i|%Z"],
            capture_output=True,
            text=True,
            timeout=20,  # a controller out of reach must not hold up a local run for long
        )
    except subprocess.TimeoutExpired:
        return []
    if out.returncode != 0:
        return []
    here = workdir.resolve()
    ids = []
    for line in out.stdout.splitlines():
        job, _, cwd = line.partition("|")
        if cwd and Path(cwd).resolve() == here:
            ids.append(job.strip())
    return ids


def cancel_leftovers(workdir: Path, wait_s: float = 120) -> list[str]:
    """Cancel the SLURM jobs a killed run left in ``workdir`` and wait until they have ended."""
    ids = leftover_jobs(workdir)
    if not ids:
        return []
    print(
        f"harness.workflow.locks: cancelling {len(ids)} SLURM job(s) left by a killed run here: {' '.join(ids)}",
        file=sys.stderr,
    )
    subprocess.run(["scancel", *ids], check=False)
    deadline = time.monotonic() + wait_s
    while leftover_jobs(workdir) and time.monotonic() < deadline:
        time.sleep(2)
    left = leftover_jobs(workdir)
    if left:
        raise SystemExit(
            f"harness.workflow.locks: SLURM job(s) {' '.join(left)} still running after scancel; not starting"
        )
    return ids


if __name__ == "__main__":
    if clear_stale(Path.cwd()) or not live_snakemake(Path.cwd()):
        cancel_leftovers(Path.cwd())
