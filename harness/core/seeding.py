"""One integer seed per run, expanded into every library's RNG and into hashed sub-seeds."""

from __future__ import annotations

import hashlib
import os
import random


def subseed(purpose: str, ident: str | int, seed: int) -> int:
    """A 31-bit seed from (purpose, id, seed): independent streams without ``seed + 1`` collisions."""
    digest = hashlib.sha256(f"{purpose}\x00{ident}\x00{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (and transformers, which seeds the same three)."""
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
    except ImportError:
        pass
