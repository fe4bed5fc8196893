"""Atomic writes, strict JSONL reading and strict YAML reading (a key given twice is refused).

Every output goes through a temp file in the same directory and an ``os.replace``, so a killed job
never leaves a file that looks complete. Readers name the file, line and field of a bad record.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from harness.core.errors import ConfigError, InputError, OutputError, os_error_line

log = logging.getLogger(__name__)


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


def dumps(obj: Any, where, quiet: bool = False, **kw) -> str:
    """JSON text without the ``NaN`` and ``Infinity`` tokens strict readers refuse: a non-finite
    number is written as null, and unless ``quiet`` (a library's field known to hold NaN for "none")
    a warning names the file and the first such field, so that no number turns blank unsaid."""
    text, found = _strict(obj, **kw)
    if found and not quiet:
        log.warning(
            "%s: %d non-finite numbers written as null (the first at %s)", where, len(found), found[0]
        )
    return text


def _strict(obj: Any, **kw) -> tuple[str, list[str]]:
    kw = {"sort_keys": True, "ensure_ascii": False, **kw}
    try:
        return json.dumps(obj, allow_nan=False, **kw), []
    except ValueError:
        found: list[str] = []
        return json.dumps(_finite(obj, "", found), allow_nan=False, **kw), found


def _finite(obj, at: str, found: list):
    if isinstance(obj, float) and not math.isfinite(obj):
        found.append(at or "the top")
        return None
    if isinstance(obj, dict):
        return {k: _finite(v, f"{at}.{k}" if at else str(k), found) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v, f"{at}[{i}]", found) for i, v in enumerate(obj)]
    return obj


def write_json(path, obj: Any, quiet: bool = False) -> None:
    write_text(path, dumps(obj, path, quiet, indent=2) + "\n")


def write_jsonl(path, rows: Iterable[dict], quiet: bool = False) -> int:
    n, blank, first = 0, 0, None
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            n += 1
            text, found = _strict(row)
            f.write(text + "\n")
            blank += len(found)
            first = first or (found and f"line {n}, {found[0]}")
    if blank and not quiet:  # once per file
        log.warning("%s: %d non-finite numbers written as null (the first at %s)", path, blank, first)
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


def yaml_error_line(path, e: yaml.YAMLError) -> str:
    """``<path>:<line>:<column>: not valid YAML (<problem>)``, one line."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    return f"{where}: not valid YAML ({problem}{f', {context}' if context else ''})"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last)."""


def _mapping(loader: _StrictLoader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' repeats the one on line {seen[key] + 1}", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml(path) -> dict:
    """A YAML mapping from ``path``; errors name the file (and line and column)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 - a safe loader
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 (byte at offset {e.start}); re-encode it as UTF-8") from None
    except yaml.YAMLError as e:
        raise ConfigError(yaml_error_line(path, e)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data
