"""Where a killed training run resumes: the newest checkpoint of its partial directory that is whole.

transformers writes ``trainer_state.json`` last, so a checkpoint without it was cut off while saving.
One with it can still be damaged afterwards (a full disk, a copy that stopped, a file replaced): every
file the trainer reads back on resume is opened here first, cheaply (JSON parsed, a safetensors
header read, a torch archive's directory and pickle read through mmap without its tensors, under
``weights_only`` as transformers loads it), so that a bad one is set aside with one line naming it and
training goes on from the checkpoint before it, or from the start, instead of failing on every rerun.
"""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

TORCH = (".pt", ".pth", ".bin")
UNREAD = ("training_args.bin",)  # a pickle of the arguments: written for people, not read on resume


def resume_point(partial: Path, fingerprint: str) -> str | None:
    """The last whole checkpoint in ``partial`` left by a killed run of the same job, or None.

    A checkpoint is complete once its trainer_state.json exists; an incomplete one (killed while
    saving), a damaged one (see :func:`checkpoint_problem`) and a partial directory of another job are
    deleted.
    """
    stamp = partial / "fingerprint"
    if partial.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)
    found = sorted(
        (partial / "trainer").glob("checkpoint-*"), key=lambda c: int(c.name.split("-")[1]), reverse=True
    )
    damaged = []
    for ckpt in found:
        if not (ckpt / "trainer_state.json").exists():
            shutil.rmtree(ckpt)
            continue
        problem = checkpoint_problem(ckpt)
        if problem is None:
            if damaged:
                log.warning("%s; deleted, resuming from %s", "; ".join(damaged), ckpt.name)
            return str(ckpt)
        damaged.append(f"{ckpt}: {problem}")
        shutil.rmtree(ckpt)
    if damaged:
        log.warning("%s; deleted, training starts afresh", "; ".join(damaged))
    return None


def checkpoint_problem(ckpt: Path) -> str | None:
    """What makes a complete-looking checkpoint unreadable (the first file found), or None."""
    for path in sorted(p for p in ckpt.rglob("*") if p.is_file()):
        name = path.relative_to(ckpt)
        try:
            if path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".safetensors":
                _safetensors(path)
            elif path.suffix in TORCH and path.name not in UNREAD:
                if not zipfile.is_zipfile(path):
                    return f"{name} is cut off or not a torch archive ({path.stat().st_size} bytes)"
                if path.parent == ckpt:  # the trainer's own files; a DeepSpeed shard is its engine's
                    _torch(path)
        except Exception as e:  # whatever the reader says, the resume would have said it too
            if "Weights only load failed" in str(e):
                return f"{name} holds more than tensors (refused by torch.load's weights_only, as on resume)"
            first = (str(e).strip().splitlines() or [""])[0][:200]
            return f"{name} does not load ({type(e).__name__}: {first})"
    return None


def _safetensors(path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        f.keys()


def _torch(path: Path) -> None:
    import torch
    from transformers.trainer_pt_utils import safe_globals  # the numpy types of an RNG state

    with safe_globals():
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
