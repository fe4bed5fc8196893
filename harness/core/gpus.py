"""Give each local GPU job its own devices: ``python -m harness.core.gpus N -- command ...``.

Snakemake's ``gpu`` resource counts GPUs but names none, so two jobs on one workstation would both
see every device. This wrapper takes N free device ids from the node's pool, holding one lock file
per device (``fcntl.flock``), sets ``CUDA_VISIBLE_DEVICES`` to them and replaces itself with the
command, which keeps the locks until it ends: the kernel releases them when the process exits, even
on SIGKILL, so a killed job never leaks a GPU. With ``snakemake --resources gpu=8`` the scheduler
never asks for more than the pool holds; the locks also keep apart jobs of two Snakemake runs.

Pool: ``HARNESS_GPU_POOL`` ("0,1,2,3"), else the devices ``nvidia-smi`` lists. Inside a SLURM job
(or with N = 0, or without GPUs) the command runs unchanged: SLURM already gives each job its own.
Lock files: ``HARNESS_GPU_LOCKS`` (default ``.snakemake/gpu-slots``), named by host and device.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 1.0


def pool() -> list[str]:
    """Device ids this node may hand out."""
    if os.environ.get("HARNESS_GPU_POOL") is not None:
        return [d.strip() for d in os.environ["HARNESS_GPU_POOL"].split(",") if d.strip()]
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def acquire(
    n: int, devices: list[str], lock_dir: Path, wait_s: float | None = None
) -> tuple[list[str], list[int]]:
    """Lock ``n`` of ``devices``, all or none (so two waiting jobs never deadlock on halves).

    Returns:
        the device ids and the open lock file descriptors that hold them.
    """
    if n > len(devices):
        raise ValueError(
            f"a job asks for {n} GPUs but the pool has {len(devices)} ({','.join(devices) or 'none'})"
        )
    lock_dir.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    started = time.monotonic()
    while True:
        held: list[tuple[str, int]] = []
        for dev in devices:
            fd = os.open(lock_dir / f"{host}-gpu{dev}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            held.append((dev, fd))
            if len(held) == n:
                return [d for d, _ in held], [f for _, f in held]
        for _, fd in held:
            os.close(fd)  # closing the descriptor releases its lock
        if wait_s is not None and time.monotonic() - started > wait_s:
            raise TimeoutError(f"no {n} free GPUs in {wait_s:.0f} s (pool {','.join(devices)})")
        time.sleep(POLL_S)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        sys.exit("usage: python -m harness.core.gpus N -- command [args ...]")
    n, command = int(argv[0]), argv[2:]
    devices = pool()
    if n == 0 or os.environ.get("SLURM_JOB_ID") or not devices:
        os.execvp(command[0], command)
    try:
        ids, fds = acquire(n, devices, Path(os.environ.get("HARNESS_GPU_LOCKS", ".snakemake/gpu-slots")))
    except ValueError as e:  # more GPUs than the node has: one line, no traceback
        sys.exit(f"harness.core.gpus: {e}; set the rule's GPUs lower or run with --resources gpu=<GPUs here>")
    for fd in fds:
        os.set_inheritable(fd, True)  # the command holds the locks from here on
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
    print(
        f"harness.core.gpus: CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}",
        file=sys.stderr,
        flush=True,
    )
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
