"""A persistent, content-addressed cache of judge calls.

Key: sha256 of the judge's identity (model source and revision, backend, template file, which carries
its version, label set, prompt-length limit) and of the full prompt. Storage: an append-only JSONL file
per job, kept open while the job runs. Each store is flushed at once (a killed process loses nothing
it stored) and, unless the caller batches the syncs (one reply at a time from an endpoint), fsynced;
a rerun pays nothing twice. A torn last line (a kill mid-write) is ignored on load and ended before
the next append.
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
        self._file = None
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
        f = self._append()
        for p, v in zip(prompts, values, strict=True):
            k = self.key(p)
            self.entries[k] = v
            f.write(json.dumps({"key": k, "value": v}) + "\n")
        f.flush()  # in the kernel's hands: a killed process loses nothing stored
        if sync:
            os.fsync(f.fileno())

    def sync(self) -> None:
        """fsync what ``store(..., sync=False)`` appended."""
        if self._file is not None:
            os.fsync(self._file.fileno())

    def _append(self):
        """The file, open for appending (once per cache object); a torn last line is ended first, so
        the next record starts on a line of its own."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torn = False
            if self.path.exists() and self.path.stat().st_size:
                with open(self.path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    torn = f.read(1) != b"\n"
            self._file = open(self.path, "a", encoding="utf-8")
            if torn:
                self._file.write("\n")
        return self._file
