"""A persistent, content-addressed cache of judge calls.

Key: sha256 of the judge's identity (backend, endpoint, model source and revision, a hash of a local
model's files, template name and text, label set, prompt-length limit, decoding; harness/ranking/judge.py)
and of the full prompt. Storage: an append-only JSONL file
per job, kept open while the job runs. Each store is written at once (a killed process loses nothing
it stored) and, unless the caller batches the syncs (one reply at a time from an endpoint), fsynced;
a rerun pays nothing twice. A torn last line (a kill mid-write) is ignored on load and cut off
before the next append, so the next record starts a line of its own and the torn one is asked again.
The files live in results/shared/, so two runs may use one at once (both evaluate the same base
model): each store appends its records in one write under a file lock and a load reads under a shared
one, so that neither sees nor leaves half of the other's line (see ``_locked`` for where locks hold).
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
        self._fd: int | None = None
        if self.path.exists():
            with open(self.path, "rb") as f, _locked(f.fileno(), self.path, shared=True):
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
            with _locked(fd, self.path) as locked:
                if locked:  # a writer killed mid-line since this file was opened left a torn tail
                    cut_torn_tail(fd)
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

    def close(self) -> None:
        if getattr(self, "_fd", None) is not None:  # (None too where __init__ stopped early)
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()

    def _append(self) -> int:
        """The file's descriptor, open for appending and reading (once per cache object); a torn last
        line is cut off first, so the next record starts on a line of its own."""
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            with _locked(fd, self.path):  # without locks (below) only here, as it always was
                cut_torn_tail(fd)
            self._fd = fd
        return self._fd


_UNLOCKABLE: set[Path] = set()  # folders whose file system refused a lock, said once each


@contextmanager
def _locked(fd: int, path: Path, shared: bool = False):
    """Hold an advisory lock on the whole file while the block runs; yields whether it holds one. The
    lock is flock, which the Linux NFS client turns into a POSIX lock the server enforces across nodes
    (unless the mount keeps locks local: nolock, local_lock). All the cache does under it goes through
    this one descriptor, since closing another descriptor of the file would drop a POSIX lock. A file
    system without locks (Lustre mounted without flock: ENOSYS) is said once, and the cache goes on
    unlocked, cutting a torn tail only when it opens the file, as it did before it had locks."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        locked = True
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        locked = False
        if path.parent not in _UNLOCKABLE:
            _UNLOCKABLE.add(path.parent)
            log.warning("%s: the file system refuses file locks (%s); two runs that judge the same "
                        "model at once may each ask a call the other asked", path.parent, e.strerror)  # fmt: skip
    try:
        yield locked
    finally:
        if locked:
            fcntl.flock(fd, fcntl.LOCK_UN)


def cut_torn_tail(fd: int) -> int:
    """Truncate the file open as ``fd`` after its last newline; return the bytes cut (0 where it ends a
    line)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    end = size
    while end > 0:  # back from the end, a block at a time, to the last newline
        start = max(0, end - (1 << 16))
        nl = os.pread(fd, end - start, start).rfind(b"\n")
        if nl >= 0:
            end = start + nl + 1
            break
        end = start
    os.ftruncate(fd, end)
    os.fsync(fd)
    return size - end
