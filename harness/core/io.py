"""Atomic writes and strict JSONL reading.

Every output goes through a temp file in the same directory and an ``os.replace``, so a killed job
never leaves a file that looks complete. Readers name the file, line and field of a bad record.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness.core.errors import InputError, OutputError, os_error_line


class RecordError(InputError):
    """A malformed input record; the message names file, line and field."""


# errors of writing itself (full disk, quota, read-only or forbidden place), as opposed to the
# errors of whatever the block reads while it writes
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}


def _cannot_create(e: OSError, path: Path) -> OutputError:
    """The error for an output whose directory cannot be made or written: a file in the way is named."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return OutputError(f"{path}: {parent} is a file, not a directory; move it or write elsewhere")
            break
    return OutputError(os_error_line(e, path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path next to ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _cannot_create(e, path) from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs are for the whole group
        os.replace(tmp, path)
    except OutputError:
        raise
    except OSError as e:  # a full disk, a quota: nothing is left behind, the path is named
        if e.errno not in WRITE_ERRNOS:
            raise
        raise OutputError(os_error_line(e, path)) from None
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp directory next to ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as e:
        raise _cannot_create(e, path) from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


_SHA_MEMO: dict[tuple, str] = {}


def file_sha256(path) -> str:
    """sha256 of a file's bytes, read in blocks, remembered per (path, size, mtime) within a process."""
    import hashlib

    st = os.stat(path)
    memo = (str(path), st.st_size, st.st_mtime_ns)
    if memo not in _SHA_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _SHA_MEMO[memo] = h.hexdigest()
    return _SHA_MEMO[memo]


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
            n += 1
    return n


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordError(
            f"{path}:{lineno}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
            "re-encode the file as UTF-8"
        ) from None


def _need(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise RecordError(f"{path}: is a directory, expected a file")


def read_json(path) -> Any:
    path = Path(path)
    _need(path)
    raw = path.read_bytes()
    text = "\n".join(_decode(line, path, i) for i, line in enumerate(raw.split(b"\n"), start=1))
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None


def read_jsonl(path) -> list[tuple[int, dict]]:
    """Read a JSONL file; return ``(line_number, record)`` pairs. Blank lines are skipped; a line that
    is not UTF-8, not JSON or not an object fails naming the file and line."""
    path = Path(path)
    _need(path)
    out = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = _decode(raw, path, lineno)
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise RecordError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(rec, dict):
                raise RecordError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
            out.append((lineno, rec))
    return out


def require(rec: dict, field: str, kind: type | tuple, where: str):
    """Return ``rec[field]`` if present with the right type, else raise naming ``where`` and the field."""
    if field not in rec:
        raise RecordError(f"{where}: missing field '{field}'")
    value = rec[field]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise RecordError(f"{where}: field '{field}' should be {names}, got {type(value).__name__}")
    return value


def marked_block(text: str, begin: str, end: str, where: str) -> tuple[int, int]:
    """Start and end of what lies between a line ``begin`` and the next ``end`` in ``text`` (a
    generated part of a document); a missing marker is one line naming ``where``."""
    try:
        start = text.index(begin) + len(begin) + 1
        return start, text.index(end, start)
    except ValueError:
        raise ValueError(f"{where}: no generated block (a line {begin!r} and one {end!r})") from None


def replace_marked_block(path, begin: str, end: str, block: str) -> bool:
    """Put ``block`` between the markers of the file ``path``; whether anything changed."""
    text = Path(path).read_text(encoding="utf-8")
    start, stop = marked_block(text, begin, end, str(path))
    new = text[:start] + block + text[stop:]
    if new != text:
        write_text(path, new)
    return new != text
