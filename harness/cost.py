"""What results cost: wall time, GPU-hours and CPU-hours of jobs, from Snakemake's benchmark files.

A job's cost joins its benchmark TSV (wall seconds ``s``, ``cpu_time``) with the provenance of its
output (``gpus``: the GPUs it ran on, 0 on CPU). Every metrics file embeds the cost of its upstream
jobs (sampling, ranking, reference log-probs, training, generation, judging); step `cost` turns all of
them into one table per stage and per cell, with the rank step's calls per prompt per ranker (judge
calls for IPR, completions scored for a reward model).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from harness.io import RecordError, read_json, write_text
from harness.tables import footer, totals  # noqa: F401 - totals: part of this module's interface

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
        # a warm-started job (harness/warm.py) ran in a worker outside its job's process tree: its
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


def table(job: dict, metrics: list[str], pair_metas: list[str], output_csv: str, output_md: str) -> None:
    """Step `cost`: per stage and per cell, from the upstream blocks of every metrics file."""
    import pandas as pd

    started = time.time()
    rows, seen = [], set()
    for path in metrics:
        data = read_json(path)
        cell = data["cell"]
        for stage, j in data["provenance"].get("upstream", {}).get("jobs", {}).items():
            if j["benchmark"] in seen or not j["measured"]:
                continue  # a shared job (sampling, ranking) counts once
            seen.add(j["benchmark"])
            own = stage in ("train", "generate", "judge")
            rows.append(
                {
                    "stage": stage,
                    "policy": cell["policy"],
                    "ranker": cell["ranker"] if stage != "sample" else "—",
                    "regularizer": cell["regularizer"] if own else "—",
                    "seed": cell["seed"] if own else None,
                    **{k: j[k] for k in ("wall_s", "gpus", "gpu_hours", "cpu_hours")},
                }
            )
    if not rows:
        raise ValueError("no measured upstream jobs in the metrics files (run the workflow first)")
    df = pd.DataFrame(rows)
    sums = ["wall_s", "gpu_hours", "cpu_hours"]
    by_stage = (
        df.groupby("stage", sort=False)[sums].sum().reindex([s for s in STAGES if s in set(df["stage"])])
    )
    by_stage.insert(0, "jobs", df.groupby("stage")["wall_s"].size().reindex(by_stage.index).astype(int))
    by_cell = df.groupby(["policy", "ranker", "regularizer"], sort=True)[sums].sum()
    calls = []
    for path in pair_metas:
        meta = read_json(path)
        prompts = max(int(meta.get("prompts", 0)), 1)
        ipr = meta.get("kind") == "ipr"
        calls.append(
            {
                "policy": Path(path).parent.parent.name,
                "ranker": meta.get("ranker", Path(path).parent.name),
                "kind": meta.get("kind"),
                # LLM-judge prompts the rank step sent (both orders of each comparison), cached or not
                "judge_calls_per_prompt": meta.get("judge_prompts", 0) / prompts if ipr else 0.0,
                # of those, the ones not answered from the judge cache (what an API bills)
                "paid_judge_calls_per_prompt": meta.get("judge_calls", 0) / prompts if ipr else 0.0,
                # a reward model scores completions: forward passes, not judge calls
                "reward_model_scores_per_prompt": 0.0 if ipr else meta.get("reward_model_calls", 0) / prompts,
            }
        )
    write_text(output_csv, df.to_csv(index=False, float_format="%.6f"))
    lines = [
        "## Cost per stage",
        "",
        by_stage.reset_index().to_markdown(index=False, floatfmt=".4f"),
        "",
        "## Cost per cell (shared jobs under their policy and ranker, regularizer '—')",
        "",
        by_cell.reset_index().to_markdown(index=False, floatfmt=".4f"),
    ]
    if calls:
        lines += [
            "",
            "## Ranking calls per prompt (the pipeline's rank step)",
            "",
            pd.DataFrame(calls).to_markdown(index=False, floatfmt=".2f"),
            "",
            "Judge calls: prompts sent to the LLM judge by the rank step (IPR's procedure, both orders of "
            "each comparison), and of those the ones not served from the judge cache. A reward model makes "
            "no judge calls; its column counts completions scored. The ranker study's round robin (every "
            "pair judged) makes more: ranker_study.md beside this table.",
        ]
    write_text(output_md, "\n".join(lines) + "\n" + footer(job, started, metrics))
