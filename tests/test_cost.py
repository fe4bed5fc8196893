"""Cost of results: Snakemake benchmark files joined with the GPUs in each job's provenance."""

import json

import pytest

from harness.core import timing
from harness.reporting import cost

TSV = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n{s}\t0:00:00\t1\t1\t1\t1\t0\t0\t90\t{cpu}\n"


def _job(tmp_path, name, seconds, cpu, gpus):
    tsv, prov = tmp_path / f"{name}.tsv", tmp_path / f"{name}.json"
    tsv.write_text(TSV.format(s=seconds, cpu=cpu))
    prov.write_text(json.dumps({"provenance": {"gpus": gpus}}))
    return name, [str(tsv), str(prov)]


def test_upstream_block_and_tables(tmp_path):
    jobs = dict([
        _job(tmp_path, "sample", 3600, 600, 1),
        _job(tmp_path, "train", 7200, 1800, 8),
        _job(tmp_path, "generate", 1800, 900, 1),
        _job(tmp_path, "judge", 360, 3600, 0),
    ])  # fmt: skip
    block = timing.upstream(jobs)
    assert block["jobs"]["train"]["gpu_hours"] == pytest.approx(16.0)
    assert block["gpu_hours"] == pytest.approx(1 + 16 + 0.5) and block["cpu_hours"] == pytest.approx(
        6900 / 3600
    )
    assert block["unmeasured"] == []

    cell = {"policy": "p", "ranker": "ipr", "regularizer": "bcr", "seed": 0}
    evaluation = {"cell": cell, "jobs": jobs}
    meta = tmp_path / "pairs" / "p" / "ipr" / "pairs.meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(
        json.dumps({"ranker": "ipr", "kind": "ipr", "prompts": 10, "judge_prompts": 70, "judge_calls": 35})
    )
    rm = tmp_path / "pairs" / "p" / "rm" / "pairs.meta.json"
    rm.parent.mkdir(parents=True)
    rm.write_text(
        json.dumps({"ranker": "rm", "kind": "reward_model", "prompts": 10, "reward_model_calls": 31})
    )
    csv, md = tmp_path / "cost.csv", tmp_path / "cost.md"
    job = {"step": "cost", "evaluations": [evaluation, evaluation]}
    cost.table(job, [str(meta), str(rm)], str(csv), str(md))
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in md.read_text().splitlines()
        if line.startswith("|")
    ]
    assert ["train", "1", "7200.0000", "16.0000", "0.5000"] in rows
    assert ["p", "ipr", "bcr", "9360.0000", "16.5000", "1.7500"] in rows  # train, generate, judge of the cell
    assert ["p", "—", "—", "3600.0000", "1.0000", "0.1667"] in rows  # sampling, shared by the policy's cells
    assert ["p", "ipr", "ipr", "7.00", "3.50", "0.00"] in rows  # judge prompts and paid calls per prompt
    assert ["p", "rm", "reward_model", "0.00", "0.00", "3.10"] in rows  # no judge calls: completions scored
    assert len(csv.read_text().splitlines()) == 1 + 4  # the same jobs twice: each job once
    assert timing.totals([block, block]) == {
        "jobs": 4,
        "gpu_hours": pytest.approx(17.5),
        "cpu_hours": pytest.approx(6900 / 3600),
    }


def test_a_warm_started_job_counts_the_cpu_its_step_measured(tmp_path, monkeypatch):
    """A warm-start worker (harness/workflow/warm.py) is outside its job's process tree, so the benchmark's
    cpu_time is the waiting client's; the step's own measurement counts instead."""
    from harness.core.provenance import provenance

    monkeypatch.setenv("HARNESS_WARM_WORKER", "1")
    prov = provenance()
    assert prov["warm_start"] is True and prov["cpu_s"] > 0  # this test process has used some CPU
    tsv, out = tmp_path / "train.tsv", tmp_path / "train.json"
    tsv.write_text(TSV.format(s=100, cpu=0.05))
    out.write_text(json.dumps({"provenance": {"gpus": 0, "warm_start": True, "cpu_s": 90.0}}))
    assert timing.upstream({"train": [str(tsv), str(out)]})["cpu_hours"] == pytest.approx(90 / 3600)
    from harness.core.shards import merge_meta

    shards = [{"n": 2, "provenance": {"warm_start": True, "cpu_s": c, "gpus": 0}} for c in (3.0, 4.5)]
    merged = merge_meta(shards)
    assert merged["provenance"]["cpu_s"] == 7.5 and merged["n"] == 4  # every shard's CPU, not the first's
    monkeypatch.delenv("HARNESS_WARM_WORKER")
    assert "warm_start" not in provenance() and "cpu_s" not in provenance()


def test_missing_benchmark_is_reported_not_invented(tmp_path):
    prov = tmp_path / "out.json"
    prov.write_text(json.dumps({"provenance": {"gpus": 2}}))
    block = timing.upstream({"train": [str(tmp_path / "none.tsv"), str(prov)]})
    assert block["unmeasured"] == ["train"] and block["gpu_hours"] == 0
    with pytest.raises(ValueError, match="evaluations/0/jobs: unknown stage 'training'"):
        timing.check_stages({"training": ["a.tsv", "b.json"]}, "evaluations/0/jobs")


def test_provenance_names_models_datasets_and_gpus(monkeypatch):
    import torch  # a step that ran with torch loaded: it used GPUs only if CUDA is there

    from harness.core.provenance import provenance

    monkeypatch.setenv("HARNESS_GPUS", "4")
    job = {
        "model": {"source": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": "339ce92d"},
        "dataset": {"hub": {"repo_id": "tatsu-lab/alpaca_eval", "revision": "abc123", "filename": "x.json"}},
    }
    prov = provenance(job, seed=3)
    assert prov["models"] == {"meta-llama/Meta-Llama-3-8B-Instruct": "339ce92d"}
    assert prov["datasets"] == {"tatsu-lab/alpaca_eval/x.json": "abc123"}
    assert prov["gpus"] == (min(4, torch.cuda.device_count()) if torch.cuda.is_available() else 0)
    assert prov["seed"] == 3
    assert {"git_sha", "git_dirty", "packages", "config_hash", "device"} <= set(prov)
