"""What each job behind a result measured: wall and CPU seconds from Snakemake's benchmark file and
its GPU count from its output's provenance. Every metrics file embeds this block for its upstream
jobs (``upstream``); ``totals`` sums it over metrics files, and ``footer`` is the provenance line (and
compute) every Markdown table ends with."""

from __future__ import annotations

import csv
from pathlib import Path

from harness.core.io import RecordError, read_json
from harness.core.provenance import provenance

STAGES = ("sample", "rank", "reference", "train", "generate", "judge")


def parse_upstream(specs: list[str]) -> list[tuple[str, str, str]]:
    """``stage=benchmark.tsv,output-with-provenance.json`` -> (stage, tsv, provenance file)."""
    out = []
    for spec in specs:
        stage, sep, paths = spec.partition("=")
        tsv, sep2, prov = paths.partition(",")
        if not (sep and sep2 and stage in STAGES):
            raise ValueError(
                f"--upstream '{spec}': expected <stage>=<benchmark.tsv>,<file.json>; stages: {', '.join(STAGES)}"
            )
        out.append((stage, tsv, prov))
    return out


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


def upstream(specs: list[str]) -> dict:
    """The cost block a metrics file embeds: each upstream job and the totals."""
    jobs = {stage: job_cost(tsv, prov) for stage, tsv, prov in parse_upstream(specs)}
    measured = [j for j in jobs.values() if j["measured"]]
    return {
        "jobs": jobs,
        "wall_s": sum(j["wall_s"] for j in measured),
        "gpu_hours": sum(j["gpu_hours"] for j in measured),
        "cpu_hours": sum(j["cpu_hours"] for j in measured),
        "unmeasured": sorted(s for s, j in jobs.items() if not j["measured"]),
    }


def totals(paths: list[str]) -> dict:
    """Measured jobs behind a set of metrics files (shared ones once), their GPU- and CPU-hours."""
    seen: dict[str, dict] = {}
    for path in paths:
        data = read_json(path)
        for j in data.get("provenance", {}).get("upstream", {}).get("jobs", {}).values():
            if j["measured"]:
                seen[j["benchmark"]] = j
    return {
        "jobs": len(seen),
        "gpu_hours": sum(j["gpu_hours"] for j in seen.values()),
        "cpu_hours": sum(j["cpu_hours"] for j in seen.values()),
    }


def footer(job: dict, started: float, inputs: list[str] = ()) -> str:
    """The provenance line every Markdown table ends with: the commit and config it came from.

    With metrics files among ``inputs`` (the cost table) it also states the compute measured behind
    them. Result tables leave that out and point to the cost table instead: wall-clock hours differ
    between any two runs, and a result table is the same bytes on every rerun of one commit on one
    machine (docs/demo.md)."""
    prov = provenance(job, started=started)
    metrics = [p for p in inputs if p.endswith("metrics.json")]
    spent = ""
    if metrics:
        t = totals(metrics)
        spent = f"\nCompute behind these numbers: {t['jobs']} jobs, {t['gpu_hours']:.2f} GPU-hours, {t['cpu_hours']:.2f} CPU-hours.\n"
    return f"{spent}\n<!-- git {prov['git_sha']} dirty={prov['git_dirty']} config {prov['config_hash']} -->\n"
