"""Hub assets in the local caches: what a step says when one is missing offline, and where a URL's
file is kept. ``python -m harness prefetch`` (harness/workflow/prefetch.py) fills these caches."""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

from harness.core.errors import HarnessError


class MissingAsset(HarnessError):
    """An asset a step needs is not in the local cache and the hub is off (HF_HUB_OFFLINE=1)."""


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def missing(what: str) -> MissingAsset:
    return MissingAsset(
        f"{what} is not in the local cache and HF_HUB_OFFLINE=1: run `python -m harness prefetch"
        " --configfile <your config>` where the hub is reachable (same HF_HOME), then rerun"
    )


@contextmanager
def hub_asset(what: str):
    """Turn a hub lookup that fails offline (no cached copy) into one line naming ``what``."""
    try:
        yield
    except MissingAsset:
        raise
    except Exception as e:
        lookup = isinstance(e, (OSError, ConnectionError)) or any(
            w in type(e).__name__ for w in ("NotFound", "Offline", "Connection")
        )
        if offline() and lookup:
            raise missing(what) from e
        raise


def url_cache(url: str) -> Path:
    """Where a URL's file is kept: one folder per URL (its SHA-256), named as the URL names it."""
    root = (
        os.environ.get("HARNESS_URL_CACHE")
        or Path(os.environ.get("HF_HOME") or Path.home() / ".cache/huggingface") / "harness-urls"
    )
    return Path(root) / hashlib.sha256(url.encode()).hexdigest()[:16] / (url.rsplit("/", 1)[-1] or "file")
