"""The workflow on a real SLURM cluster: slurmctld, slurmd and slurmdbd on this machine (.ci/slurm-cluster,
started by .ci/run as root), submitted through snakemake-executor-plugin-slurm with the shipped profile
and a site file only.

A demo training cell runs every job through sbatch (checked in sacct); a training cancelled with
scancel is retried and resumes from its checkpoint; a Snakemake killed with SIGKILL leaves its job
running, and the next start cancels it before submitting again, so two copies never overlap. Without
the cluster these tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from .conftest import ROOT
from .workflow import copy_workflow, snakemake_command

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CELL = "results/demo/training/tiny-policy/rm/bcr/seed{seed}"
SITE = "account: harness\ncpu_partition: cpu\ngpu_partition: gpu\n"
RUN_LIMIT_S = 900  # a demo cell takes about 3.5 minutes here; a hang would take forever


def _cluster_up() -> bool:
    return subprocess.run([str(ROOT / ".ci/slurm-cluster"), "status"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    if not _cluster_up():
        why = "no SLURM cluster answers (.ci/slurm-cluster start, as root)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-SLURM tests: {why}")
        pytest.skip(why)
    wf = copy_workflow(tmp_path_factory.mktemp("slurm"))
    (wf / "profiles/slurm/site.yaml").write_text(SITE)
    return wf


def _env(wf: Path) -> dict:
    # jobs run in the submitting environment (no conda here): this interpreter's bin first on PATH
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(wf), PATH=path)


def _command(target: str, as_shipped: bool = False) -> list[str]:
    """The shipped profile; but ``as_shipped``, the first status check comes sooner than the plugin's
    40 s (the resume tests wait on one job, not on the profile)."""
    sooner = [] if as_shipped else ["--slurm-init-seconds-before-status-checks", "5"]
    return [
        *snakemake_command(),
        "--profile",
        "profiles/slurm",
        *sooner,
        "--configfile",
        "config/demo.yaml",
        "--",
        target,
    ]


def _run(wf: Path, target: str, as_shipped: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(target, as_shipped),
        cwd=wf,
        env=_env(wf),
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
    )


def _submitted(log: str) -> dict[str, str]:
    """SLURM job id -> rule, from Snakemake's output."""
    found = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/", log)
    assert found, log[-3000:]
    return dict(found)


def _sacct(ids) -> dict[str, dict]:
    out = subprocess.run(
        [
            "sacct",
            "-X",
            "-n",
            "--parsable2",
            "-o",
            "JobID,State,Account,Partition,Start,End",
            "-j",
            ",".join(ids),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {}
    for line in out.splitlines():
        job, state, account, partition, start, end = line.split("|")
        rows[job] = {"state": state, "account": account, "partition": partition, "start": start, "end": end}
    return rows


def _wait_for_checkpoint(wf: Path, seed: int, proc: subprocess.Popen, limit_s: float = 600) -> None:
    partial = wf / f"results/demo/checkpoints/tiny-policy/rm/bcr/seed{seed}.partial/trainer"
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if any(partial.glob("checkpoint-*/trainer_state.json")):
            return
        assert proc.poll() is None, f"Snakemake ended before a checkpoint: {proc.communicate()[0][-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint under {partial} in {limit_s} s")


def _running_train_job(wf: Path) -> str:
    for _ in range(100):
        out = subprocess.run(
            ["squeue", "--me", "-h", "-t", "RUNNING", "-o", "%i|%Z|%k"], capture_output=True, text=True
        ).stdout
        jobs = [line.split("|")[0] for line in out.splitlines() if f"|{wf}|" in line and "train" in line]
        if jobs:
            return jobs[0]
        time.sleep(0.2)
    raise AssertionError("the training job is not running in SLURM")


def _no_overlap(rows: list[dict]) -> None:
    spans = sorted((datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"])) for r in rows)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, f"two copies of one training overlapped: {spans}"


def _summary(wf: Path, seed: int) -> dict:
    return json.loads((wf / CELL.format(seed=seed) / "summary.json").read_text())


def test_demo_cell_runs_every_job_through_sbatch(wf):
    started = time.monotonic()
    r = _run(wf, CELL.format(seed=0) + "/summary.json", as_shipped=True)  # no option but the site file
    minutes = (time.monotonic() - started) / 60
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    jobs = _submitted(r.stdout + r.stderr)
    # tiny models, 3 prepared files (prompts, 2 fine-tuning sets), 2 fine-tunings, sampling, ranking,
    # reference log-probs, training: no job ran outside SLURM
    assert sorted(jobs.values()) == sorted(
        ["build_tiny_models", "prepare_data", "prepare_data", "prepare_data", "finetune", "finetune",
         "sample", "rank", "reference_logps", "train"]
    )  # fmt: skip
    rows = _sacct(jobs)
    assert set(rows) == set(jobs)
    assert {r["state"] for r in rows.values()} == {"COMPLETED"}
    assert {(r["account"], r["partition"]) for r in rows.values()} == {("harness", "cpu")}  # no GPU asked
    summary = _summary(wf, 0)
    assert summary["effective_batch_size"] == 16 and summary["batch"]["processes"] == 1
    print(f"\nSLURM demo cell: {len(jobs)} jobs in {minutes:.1f} min")


def test_cancelled_training_resumes_from_its_checkpoint(wf):
    proc = subprocess.Popen(
        _command(CELL.format(seed=1) + "/summary.json"),
        cwd=wf,
        env=_env(wf),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_checkpoint(wf, 1, proc)
        subprocess.run(["scancel", _running_train_job(wf)], check=True)
        out, _ = proc.communicate(timeout=RUN_LIMIT_S)  # no hang on the CANCELLED state
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    jobs = _submitted(out)
    assert list(jobs.values()) == ["train", "train"], jobs  # the cancelled job and its retry
    rows = _sacct(jobs)
    first, second = (rows[j] for j in jobs)
    assert first["state"].startswith("CANCELLED") and second["state"] == "COMPLETED"
    _no_overlap([first, second])
    assert (_summary(wf, 1)["resumed_from"] or "").startswith("checkpoint-")


def test_killed_snakemake_leaves_no_second_copy(wf):
    target = CELL.format(seed=2) + "/summary.json"
    proc = subprocess.Popen(
        _command(target), cwd=wf, env=_env(wf), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    _wait_for_checkpoint(wf, 2, proc)
    orphan = _running_train_job(wf)
    proc.send_signal(signal.SIGKILL)  # the job stays in SLURM; the directory lock stays behind
    killed_out, _ = proc.communicate()
    unlock = subprocess.run(
        [sys.executable, "-m", "harness.workflow.locks"], cwd=wf, env=_env(wf), capture_output=True, text=True
    )
    assert unlock.returncode == 0, unlock.stderr
    assert "removed the stale lock" in unlock.stderr
    assert f"cancelling 1 SLURM job(s) left by a killed run here: {orphan}" in unlock.stderr
    r = _run(wf, target)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    jobs = {orphan: "train", **_submitted(r.stdout + r.stderr)}
    assert list(jobs.values()) == ["train", "train"], jobs
    rows = _sacct(jobs)
    assert rows[orphan]["state"].startswith("CANCELLED")
    _no_overlap(list(rows.values()))
    assert (_summary(wf, 2)["resumed_from"] or "").startswith("checkpoint-")
