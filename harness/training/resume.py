"""Where a killed training run resumes: the newest checkpoint of its partial directory that is whole.

transformers writes ``trainer_state.json`` last, so a checkpoint without it was cut off while saving.
One with it can still be damaged afterwards (a full disk, a copy that stopped, a file replaced): every
file the trainer reads back on resume is opened here first, cheaply (JSON parsed, a safetensors
header read, a torch archive's directory and pickle read through mmap without its tensors, under
``weights_only`` as transformers loads it), so that a bad one is set aside (renamed
``damaged-checkpoint-N``, left for a look until the run finishes and removes its partial directory)
with one line naming it, and training goes on from the checkpoint before it, or from the start,
instead of failing on every rerun. An error of reading itself (I/O, memory) is not damage: it stops
the step as before and deletes nothing.
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

TORCH = (".pt", ".pth", ".bin")
UNREAD = ("training_args.bin",)  # a pickle of the arguments: written for people, not read on resume


def resume_point(partial: Path, fingerprint: str) -> str | None:
    """The last whole checkpoint in ``partial`` left by a killed run of the same job, or None.

    A checkpoint is complete once its trainer_state.json exists; an incomplete one (killed while
    saving) and a partial directory of another job are deleted, a damaged one (see
    :func:`checkpoint_problem`) set aside.
    """
    stamp = partial / "fingerprint"
    if partial.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)
    complete = []
    for ckpt in (partial / "trainer").glob("checkpoint-*"):
        if (ckpt / "trainer_state.json").exists():
            complete.append(ckpt)
        else:
            shutil.rmtree(ckpt)
    damaged = []
    for ckpt in sorted(complete, key=lambda c: int(c.name.split("-")[1]), reverse=True):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            if damaged:
                log.warning("%s; resuming from %s", "; ".join(damaged), ckpt.name)
            return str(ckpt)
        aside = ckpt.with_name(f"damaged-{ckpt.name}")
        shutil.rmtree(aside, ignore_errors=True)
        ckpt.rename(aside)
        damaged.append(f"{ckpt}: {problem}; set aside as {aside.name}")
    if damaged:
        log.warning("%s; training starts afresh", "; ".join(damaged))
    return None


def checkpoint_problem(ckpt: Path) -> str | None:
    """What makes a complete-looking checkpoint unreadable (the first file found), or None."""
    import torch
    from safetensors import SafetensorError, safe_open
    from transformers.trainer_pt_utils import safe_globals  # the numpy types of an RNG state

    # what a file that is cut off, overwritten or not what it claims raises: its format's errors (a
    # torch archive: RuntimeError; a refused pickle: UnpicklingError; JSON: a ValueError), never OSError
    damage = (ValueError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, SafetensorError)
    for path in sorted(p for p in ckpt.rglob("*") if p.is_file()):
        name = path.relative_to(ckpt)
        try:
            if path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as f:
                    f.keys()
            elif path.suffix in TORCH and path.name not in UNREAD:
                if not zipfile.is_zipfile(path):
                    return f"{name} is cut off or not a torch archive ({path.stat().st_size} bytes)"
                if path.parent == ckpt:  # the trainer's own files; a DeepSpeed shard is its engine's
                    with safe_globals():
                        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except damage as e:
            if "Weights only load failed" in str(e):
                return f"{name} holds more than tensors (refused by torch.load's weights_only, as on resume)"
            first = (str(e).strip().splitlines() or [""])[0][:200]
            return f"{name} does not load ({type(e).__name__}: {first})"
    return None
