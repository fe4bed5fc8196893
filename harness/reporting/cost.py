"""What results cost: wall time, GPU-hours and CPU-hours of jobs, from Snakemake's benchmark files.

A job's cost joins its benchmark TSV (wall seconds ``s``, ``cpu_time``) with the provenance of its
output (``gpus``: the GPUs it ran on, 0 on CPU). The job config of step `cost` names, per evaluation,
the jobs behind it (sampling, ranking, reference log-probs, training, generation, judging;
harness/workflow/targets.py); the step turns all of them into one table per stage and per cell, with
the rank step's calls per prompt per ranker (judge calls for IPR, completions scored for a reward
model).
"""

from __future__ import annotations

import time
from pathlib import Path

from harness.core.io import read_json, write_text
from harness.core.timing import STAGES, check_stages, footer, totals, upstream
from harness.ranking.kinds import kind as ranker_kind


def table(job: dict, pair_metas: list[str], output_csv: str, output_md: str) -> None:
    """Step `cost`: per stage and per cell, from the jobs behind every evaluation (``evaluations``:
    each one's cell and stage -> [benchmark TSV, output with provenance])."""
    import pandas as pd

    started = time.time()
    rows, seen, blocks = [], set(), []
    for i, ev in enumerate(job["evaluations"]):
        check_stages(ev["jobs"], f"evaluations/{i}/jobs")
        cell, block = ev["cell"], upstream(ev["jobs"])
        blocks.append(block)
        for stage, j in block["jobs"].items():
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
        raise ValueError("no measured job behind any evaluation (run the workflow first)")
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
        ipr = "kind" in meta and ranker_kind(meta).pairwise
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
    write_text(output_md, "\n".join(lines) + "\n" + footer(job, started, totals(blocks)))
