"""The batch arithmetic of training: the effective batch (pairs per optimizer update) is a config
value, ``training.effective_batch_size``; gradient accumulation is derived from it for the processes a
job actually gets. Imports nothing heavy: the workflow checks it while planning the DAG."""

from __future__ import annotations

from harness.core.errors import HarnessError


class BatchError(HarnessError):
    """The effective batch cannot be reached exactly with the job's processes and per-device batch."""


def accumulation(effective: int, per_device: int, processes: int) -> int:
    """Gradient-accumulation steps so that ``per_device x steps x processes == effective``.

    Args:
        effective: pairs per optimizer update (``training.effective_batch_size``).
        per_device: pairs per device per forward pass (``training.per_device_train_batch_size``).
        processes: data-parallel processes (GPUs; 1 on a CPU).

    Raises:
        BatchError: naming the numbers, when ``effective`` is not a multiple of ``per_device x processes``.
    """
    processes = max(int(processes), 1)
    per_step = per_device * processes
    if effective % per_step:
        raise BatchError(
            f"training.effective_batch_size={effective} is not a multiple of per_device_train_batch_size"
            f"={per_device} x {processes} process(es) = {per_step}: choose an effective batch, per-device"
            " batch or GPU count (training.gpus) that divide"
        )
    return effective // per_step


def describe(effective: int, per_device: int, processes: int) -> str:
    """``128 = 2 per device x 8 accumulation x 8 processes``, or the BatchError's message."""
    steps = accumulation(effective, per_device, processes)
    return f"{effective} = {per_device} per device x {steps} accumulation x {max(processes, 1)} process(es)"
