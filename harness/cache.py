"""A persistent, content-addressed cache of judge calls.

Key: sha256 of the judge's identity (model source and revision, backend, template file, which carries
its version, label set, prompt-length limit) and of the full prompt. Storage: an append-only JSONL file
per job. Each store is flushed at once (a killed process loses nothing it stored) and, unless the caller
batches the syncs (one reply at a time from an endpoint), fsynced; a rerun pays nothing twice. A torn
last line (a kill mid-write) is ignored on load.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class JudgeCache:
    def __init__(self, path: str | os.PathLike, identity: dict):
        self.path = Path(path)
        self.namespace = digest(identity)
        self.entries: dict[str, list[float]] = {}
        self.hits = self.misses = 0
        if self.path.exists():
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # the torn tail of a killed write
                    self.entries[rec["key"]] = rec["value"]

    def key(self, prompt: str) -> str:
        return digest([self.namespace, prompt])

    def lookup(self, prompts: list[str]) -> list[list[float] | None]:
        found = [self.entries.get(self.key(p)) for p in prompts]
        hits = sum(v is not None for v in found)
        self.hits += hits
        self.misses += len(prompts) - hits
        return found

    def store(self, prompts: list[str], values: list, sync: bool = True) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for p, v in zip(prompts, values, strict=True):
                k = self.key(p)
                self.entries[k] = v
                f.write(json.dumps({"key": k, "value": v}) + "\n")
            f.flush()
            if sync:
                os.fsync(f.fileno())

    def sync(self) -> None:
        """fsync what ``store(..., sync=False)`` appended."""
        if self.path.exists():
            with open(self.path, "a", encoding="utf-8") as f:
                os.fsync(f.fileno())
