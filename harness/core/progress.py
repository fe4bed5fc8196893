"""Job logs that read line by line.

Progress bars (tqdm's, in TRL, transformers, datasets, lm-eval) redraw one line with carriage returns;
in a job's log file that is one line of thousands of characters. ``line_wise()`` puts a filter in front
of ``sys.stderr`` when it is not a terminal: every redraw is one complete state of the bar, and the filter
writes such a state as an ordinary line at most once per ``every`` seconds (and always the last one, when
the bar ends), so a log keeps a progress line per half minute and nothing else of the spew. Any other text
passes through as written.
"""

from __future__ import annotations

import io
import sys
import time


class LineWise(io.TextIOBase):
    def __init__(self, stream, every: float = 30.0, clock=time.monotonic):
        self.stream, self.every, self.clock = stream, every, clock
        self.line = ""  # the text since the last line end or carriage return
        self.redrawn = False  # whether ``line`` began with a carriage return (a bar's state)
        self.pending: str | None = None  # the newest bar state not yet written
        self.last = float("-inf")

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        for part in _parts(text):
            if part == "\r":
                self._state_done()
                self.redrawn = True
            elif part == "\n":
                if self.redrawn:
                    self.pending = None  # the bar's last state: always written
                    self.stream.write(self.line.strip() + "\n")
                else:
                    self._emit_pending()
                    self.stream.write(self.line + "\n")
                self.line, self.redrawn = "", False
            else:
                self.line += part
        return len(text)

    def _state_done(self) -> None:
        """A carriage return ends the current bar state; write it if enough time has passed."""
        if self.redrawn and self.line.strip():
            self.pending = self.line.strip()
            if self.clock() - self.last >= self.every:
                self._emit_pending()
        elif self.line:  # text that a carriage return ends without a bar: keep it as a line
            self._emit_pending()
            self.stream.write(self.line + "\n")
        self.line = ""

    def _emit_pending(self) -> None:
        if self.pending is not None:
            self.stream.write(self.pending + "\n")
            self.last = self.clock()
            self.pending = None

    def finish(self) -> None:
        """Write what is left: an unfinished bar's newest state, an unterminated line."""
        if self.redrawn and self.line.strip():
            self.pending = self.line.strip()
        elif self.line:
            self.stream.write(self.line + "\n")  # ended, so that an error line after it has its own
        self.line, self.redrawn = "", False
        self._emit_pending()
        self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self):
        return getattr(self.stream, "encoding", "utf-8")


def _parts(text: str):
    """The text's pieces: each carriage return and line end alone, the runs of other text between."""
    start = 0
    for i, ch in enumerate(text):
        if ch in "\r\n":
            if i > start:
                yield text[start:i]
            yield ch
            start = i + 1
    if start < len(text):
        yield text[start:]


def line_wise(every: float = 30.0) -> LineWise | None:
    """Filter ``sys.stderr`` (a log file, not a terminal) through ``LineWise``; the filter, or None."""
    if isinstance(sys.stderr, LineWise) or sys.stderr is None or sys.stderr.isatty():
        return None
    sys.stderr = LineWise(sys.stderr, every)
    return sys.stderr
