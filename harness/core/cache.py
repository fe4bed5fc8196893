"""A persistent, content-addressed cache of judge calls.

Key: sha256 of the judge's identity (backend, endpoint, model source and revision, a hash of a local
model's files, template name and text, label set, prompt-length limit, decoding; harness/ranking/judge.py)
and of the full prompt. Storage: an append-only JSONL file
per job, kept open while the job runs. Each store is written at once (a killed process loses nothing
it stored) and, unless the caller batches the syncs (one reply at a time from an endpoint), fsynced;
a rerun pays nothing twice. A torn last line (a kill mid-write) is ignored on load and cut off
before the next append, so the next record starts a line of its own and the torn one is asked again.
The files live in results/shared/, so two runs may use one at once (both evaluate the same base
model): each store appends its records in one locked write, a load reads under a shared lock, so
neither sees nor leaves half of the other's line.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class JudgeCache:
    def __init__(self, path: str | os.PathLike, identity: dict):
        self.path = Path(path)
        self.namespace = digest(identity)
        self.entries: dict[str, list[float]] = {}
        self.hits = self.misses = 0
        self.bad_lines: list[int] = []  # unreadable lines (a torn tail, or a line ended by an older version)
        self.torn_cut = 0
        self._fd: int | None = None
        if self.path.exists():
            with open(self.path, "rb") as f, _locked(f.fileno(), shared=True):
                for lineno, line in enumerate(f, start=1):
                    try:
                        rec = json.loads(line.decode("utf-8"))
                        self.entries[rec["key"]] = rec["value"]
                    except (ValueError, KeyError, TypeError):
                        self.bad_lines.append(lineno)  # its calls are made again, and counted
        if self.bad_lines:
            log.warning(
                "%s: %d unreadable line(s) (first: line %d); their judge calls are made again",
                self.path,
                len(self.bad_lines),
                self.bad_lines[0],
            )

    def key(self, prompt: str) -> str:
        return digest([self.namespace, prompt])

    def lookup(self, prompts: list[str]) -> list[list[float] | None]:
        found = [self.entries.get(self.key(p)) for p in prompts]
        hits = sum(v is not None for v in found)
        self.hits += hits
        self.misses += len(prompts) - hits
        return found

    def store(self, prompts: list[str], values: list, sync: bool = True) -> None:
        lines = []
        for p, v in zip(prompts, values, strict=True):
            k = self.key(p)
            self.entries[k] = v
            lines.append(json.dumps({"key": k, "value": v}) + "\n")
        data = "".join(lines).encode("utf-8")
        try:
            fd = self._append()
            with _locked(fd):
                # a writer killed mid-line (since this file was opened) left a torn tail: cut it first
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    self.torn_cut += cut_torn_tail(self.path)
                while data:  # in the kernel's hands at once: a killed process loses nothing stored
                    data = data[os.write(fd, data) :]
                if sync:
                    os.fsync(fd)
        except OSError as e:  # a full disk: the cache is named (a torn line is cut on the next run)
            from harness.core.errors import OutputError, os_error_line

            raise OutputError(os_error_line(e, self.path)) from None

    def sync(self) -> None:
        """fsync what ``store(..., sync=False)`` appended."""
        if self._fd is not None:
            os.fsync(self._fd)

    def _append(self) -> int:
        """The file's descriptor, open for appending (and reading its last byte), once per cache object."""
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd


_UNLOCKABLE: set[str] = set()  # file systems that refused a lock, said once each


@contextmanager
def _locked(fd: int, shared: bool = False):
    """An advisory lock on the whole file (flock; on NFS the client maps it to a byte-range lock). Where
    the file system has no locks (Lustre mounted without ``flock``: ENOSYS), it goes on without one,
    as before, and says so once."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        where = os.path.dirname(os.path.realpath(f"/proc/self/fd/{fd}"))
        if where not in _UNLOCKABLE:
            _UNLOCKABLE.add(where)
            log.warning("%s: the file system refuses file locks (%s); two runs that judge the same "
                        "model at once may each ask a call the other asked", where, e.strerror)  # fmt: skip
        yield
        return
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def cut_torn_tail(path: Path) -> int:
    """Truncate ``path`` after its last newline; return the bytes cut (0 where it ends a line)."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    with open(path, "r+b") as f:
        end = size
        while end > 0:  # back from the end, a block at a time, to the last newline
            start = max(0, end - (1 << 16))
            f.seek(start)
            block = f.read(end - start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                end = start + nl + 1
                break
            end = start
        if end < size:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    return size - end
