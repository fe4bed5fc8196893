"""Expected failures, one class each: the CLI prints any of them as one line, ``error: <message>``,
and exits 1 (a traceback only with ``python -m harness --debug`` or ``HARNESS_DEBUG=1``).

Each message names its place: a file and line and field (:class:`InputError`), a config key path
(:class:`ConfigError`), a server and its last message (:class:`EndpointError`), a
model and its missing weights (:class:`ModelError`), a path that could not be written and what to
do (:class:`OutputError`).
"""

from __future__ import annotations

import errno


class HarnessError(Exception):
    """An expected failure, stated in one line that names its place (file, field, server)."""


class InputError(HarnessError, ValueError):
    """A bad input file or record: the message names the file, line and field."""


class ConfigError(InputError):
    """A bad experiment config: the message names the file and the key path (or line and column)."""


class EndpointError(HarnessError):
    """A model endpoint refused requests or could not be reached: names the server and its message."""


class ModelError(HarnessError):
    """A model that loads but is not what its role needs (e.g. a reward model without a trained head)."""


class OutputError(HarnessError, OSError):
    """An output that could not be written: names the path, the system's reason and what to do."""


_ADVICE = {
    errno.ENOSPC: "free space on that disk or point the results elsewhere",
    errno.EDQUOT: "the disk quota is full: free space or point the results elsewhere",
    errno.EACCES: "check that this user may read (or write) that path, or run from a checkout you own",
    errno.EPERM: "check that this user may read (or write) that path, or run from a checkout you own",
    errno.EROFS: "the file system is read-only: run from a writable checkout or working directory",
}


def os_error_line(e: OSError, path=None) -> str:
    """One line for an operating-system error: the path, the reason and, where known, what to do."""
    where = path or e.filename
    reason = e.strerror or str(e) or type(e).__name__
    advice = _ADVICE.get(e.errno)
    return (f"{where}: {reason}" if where else reason) + (f"; {advice}" if advice else "")
