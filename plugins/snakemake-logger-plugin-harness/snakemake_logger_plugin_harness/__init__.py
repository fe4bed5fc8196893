"""A Snakemake logger plugin for this harness's runs (``snakemake --logger harness``; `make demo` and
`make real` use it): the console shows one line per finished job, with its rule, its cell and its wall
time, instead of Snakemake's block of input, output, reason and command per job. Snakemake's own log
file (.snakemake/log/) still gets everything, and each job's output is in its log under
results/<run>/logs/. A dry run, the job-count table, warnings and errors are printed as Snakemake prints
them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

# Snakemake's messages kept on the console besides the job lines (the rest is in its log file)
KEPT = ("Nothing to be done", "Complete log", "Building DAG", "Job stats", "Will exit", "Shutting down")


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    pass


def cell_of(wildcards: dict) -> str:
    """What a job works on, from its wildcards: a cell (policy/ranker/regularizer/seedN), a model key,
    a benchmark, a shard; empty for a job without wildcards (a table)."""
    w = {k: str(v) for k, v in (wildcards or {}).items()}
    if {"ranker", "regularizer", "seed"} <= set(w):
        head = (
            "/".join(x for x in (w.get("policy"), w["ranker"], w["regularizer"]) if x) + f"/seed{w['seed']}"
        )
        rest = [w[k] for k in w if k not in ("policy", "ranker", "regularizer", "seed")]
    else:
        head = "/".join(w[k] for k in ("policy", "model", "ranker") if k in w)
        rest = [w[k] for k in w if k not in ("policy", "model", "ranker")]
    rest = [r for r in rest if r and r not in (".json", ".jsonl")]
    return " ".join(x for x in [head, *rest] if x)


def duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class LogHandler(LogHandlerBase):
    def __post_init__(self) -> None:
        from snakemake.logging import DefaultFilter, DefaultFormatter

        c = self.common_settings
        self.plain_filter = DefaultFilter(c.quiet, c.debug_dag, c.verbose, c.dryrun, c.printshellcmds)
        self.plain = DefaultFormatter(c.quiet, c.show_failed_logs)
        self.stream = sys.stdout if getattr(c, "stdout", False) else sys.stderr
        self.jobs: dict[int, tuple[str, str, float]] = {}
        self.done, self.total = 0, 0

    def _print(self, text: str) -> None:
        self.stream.write(text.rstrip("\n") + "\n")
        self.stream.flush()

    def _as_snakemake(self, record) -> None:
        if self.plain_filter.filter(record):
            text = self.plain.format(record)
            if text:
                self._print(text)

    def emit(self, record) -> None:
        try:
            event = getattr(record, "event", None)
            if self.common_settings.dryrun:  # a plan is read whole: as Snakemake prints it
                self._as_snakemake(record)
            elif event == LogEvent.JOB_INFO:
                self.jobs[record.jobid] = (record.rule_name, cell_of(record.wildcards), time.monotonic())
            elif event == LogEvent.PROGRESS:
                self.done, self.total = record.done, record.total
            elif event == LogEvent.JOB_FINISHED:
                rule, cell, started = self.jobs.pop(record.job_id, ("?", "", time.monotonic()))
                count = f"{self.done + 1}/{self.total}" if self.total else ""
                self._print(f"done  {rule:<20} {cell:<44} {duration(time.monotonic() - started):>7}  {count}")
            elif event == LogEvent.JOB_ERROR:
                rule, cell, started = self.jobs.pop(record.jobid, (record.rule_name, "", time.monotonic()))
                logs = ", ".join(str(x) for x in (record.log or [])) or "no log"
                self._print(
                    f"FAIL  {rule:<20} {cell:<44} {duration(time.monotonic() - started):>7}  log: {logs}"
                )
                self._as_snakemake(record)
            elif event == LogEvent.RUN_INFO:
                stats = getattr(record, "stats", None) or {}
                self.total = int(stats.get("total", 0) or 0) or self.total
                self._as_snakemake(record)
            elif record.levelno >= 30 or event == LogEvent.ERROR:
                self._as_snakemake(record)
            elif event is None and str(record.msg or "").lstrip().startswith(KEPT):
                self._as_snakemake(record)
        except Exception:  # a console line is never worth a failed run
            self.handleError(record)

    # what Snakemake asks a handler: it prints to the console itself, filters and formats its records
    writes_to_stream = property(lambda self: True)
    writes_to_file = property(lambda self: False)
    has_filter = property(lambda self: True)
    has_formatter = property(lambda self: True)
    needs_rulegraph = property(lambda self: False)
