"""What each job behind a result measured: wall and CPU seconds from Snakemake's benchmark file and
its GPU count from its output's provenance. Step `cost` is given, per evaluation, the jobs behind it
(harness/workflow/targets.py: ``cost_jobs``); ``upstream`` measures them, ``totals`` sums them, and
``footer`` is the provenance line (and compute) every Markdown table ends with."""

from __future__ import annotations

import csv
from pathlib import Path

from harness.core.io import RecordError, read_json
from harness.core.provenance import provenance

STAGES = ("sample", "rank", "reference", "train", "generate", "judge")


def check_stages(jobs: dict, where: str) -> None:
    """The jobs behind an evaluation are named by stage (``STAGES``)."""
    odd = [s for s in jobs if s not in STAGES]
    if odd:
        raise ValueError(f"{where}: unknown stage '{odd[0]}'; stages: {', '.join(STAGES)}")


def _seconds(tsv: str) -> tuple[float, float]:
    """Wall and CPU seconds of the last run recorded in a Snakemake benchmark file."""
    with open(tsv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or "s" not in rows[-1]:
        raise RecordError(f"{tsv}: not a Snakemake benchmark file (no 's' column)")
    return float(rows[-1]["s"]), float(rows[-1].get("cpu_time") or 0.0)


def job_cost(tsv: str, prov_file: str) -> dict:
    """One job's wall and CPU seconds and GPU count; ``measured`` is False where Snakemake wrote no
    benchmark file (an output made by hand or with --touch). A sharded stage gives its shards'
    benchmark files joined by ``+``: their seconds add up (job-seconds, not elapsed time)."""
    prov = read_json(prov_file).get("provenance", {})
    gpus = int(prov.get("gpus", 0))
    files = tsv.split("+")
    if not all(Path(t).exists() for t in files):
        return {"benchmark": tsv, "measured": False, "gpus": gpus}
    per_shard = [_seconds(t) for t in files]
    wall, cpu = sum(w for w, _ in per_shard), sum(c for _, c in per_shard)
    if prov.get("warm_start") and "cpu_s" in prov:
        # a warm-started job (harness/workflow/warm.py) ran in a worker outside its job's process tree: its
        # CPU is what the step measured itself when it wrote its provenance (summed over the shards
        # of a sharded stage by its merge)
        cpu = float(prov["cpu_s"])
    return {
        "benchmark": tsv,
        "measured": True,
        "wall_s": wall,
        "cpu_hours": cpu / 3600,
        "gpus": gpus,
        "gpu_hours": wall * gpus / 3600,
    }


def upstream(jobs: dict) -> dict:
    """What the jobs behind one evaluation measured: stage -> [benchmark TSV, output with provenance]."""
    measured = {stage: job_cost(tsv, prov) for stage, (tsv, prov) in jobs.items()}
    done = [j for j in measured.values() if j["measured"]]
    return {
        "jobs": measured,
        "wall_s": sum(j["wall_s"] for j in done),
        "gpu_hours": sum(j["gpu_hours"] for j in done),
        "cpu_hours": sum(j["cpu_hours"] for j in done),
        "unmeasured": sorted(s for s, j in measured.items() if not j["measured"]),
    }


def totals(blocks: list[dict]) -> dict:
    """Measured jobs behind a set of evaluations (``upstream`` blocks; shared jobs once), their GPU- and
    CPU-hours."""
    seen: dict[str, dict] = {}
    for block in blocks:
        for j in block["jobs"].values():
            if j["measured"]:
                seen[j["benchmark"]] = j
    return {
        "jobs": len(seen),
        "gpu_hours": sum(j["gpu_hours"] for j in seen.values()),
        "cpu_hours": sum(j["cpu_hours"] for j in seen.values()),
    }


def footer(job: dict, started: float, spent: dict | None = None) -> str:
    """The provenance line every Markdown table ends with: the commit and config it came from.

    With ``spent`` (``totals``, the cost table) it also states the compute measured behind the
    results. Result tables leave that out and point to the cost table instead: wall-clock hours differ
    between any two runs, and a result table is the same bytes on every rerun of one commit on one
    machine (docs/demo.md)."""
    prov = provenance(job, started=started)
    line = ""
    if spent:
        t = spent
        line = f"\nCompute behind these numbers: {t['jobs']} jobs, {t['gpu_hours']:.2f} GPU-hours, {t['cpu_hours']:.2f} CPU-hours.\n"
    return f"{line}\n<!-- git {prov['git_sha']} dirty={prov['git_dirty']} config {prov['config_hash']} -->\n"
