"""GPU slots on one node: a fake pool of device ids, real Snakemake scheduling, real lock files."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from harness.core.gpus import acquire

from .conftest import pythonpath

# Each job records which devices it was given and when it held them.
RECORD = textwrap.dedent(
    """
    import json, os, sys, time
    start = time.time()
    time.sleep(float(sys.argv[2]))
    with open(sys.argv[1], "w") as f:
        json.dump({"devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}, f)
    """
)


def _overlaps(records):
    """Pairs of jobs that held a device at the same time."""
    bad = []
    for i, a in enumerate(records):
        for b in records[i + 1 :]:
            shared = set(a["devices"].split(",")) & set(b["devices"].split(","))
            if shared and a["start"] < b["end"] and b["start"] < a["end"]:
                bad.append((a, b))
    return bad


def test_snakemake_never_places_two_jobs_on_one_gpu(tmp_path):
    (tmp_path / "record.py").write_text(RECORD)
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(
            f"""
            rule all:
                input: expand("out/{{i}}.json", i=range(6))

            rule job:
                output: "out/{{i}}.json"
                resources: gpu=lambda wc: 1 if int(wc.i) % 2 else 2
                shell: "{sys.executable} -m harness.core.gpus {{resources.gpu}} -- {sys.executable} record.py {{output}} 0.8"
            """
        )
    )
    env = {**os.environ, "HARNESS_GPU_POOL": "0,1,2,3", "PYTHONPATH": pythonpath()}
    env.pop("SLURM_JOB_ID", None)
    snakemake = [sys.executable, "-m", "snakemake", "--cores", "6", "--resources", "gpu=4", "--quiet"]
    r = subprocess.run(snakemake, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    records = [json.loads((tmp_path / f"out/{i}.json").read_text()) for i in range(6)]
    for i, rec in enumerate(records):
        devices = rec["devices"].split(",")
        assert len(devices) == (1 if i % 2 else 2) and set(devices) <= {"0", "1", "2", "3"}
    assert _overlaps(records) == []
    # the pool was used in parallel, not one job at a time
    assert any(
        a["start"] < b["end"] and b["start"] < a["end"] for a in records for b in records if a is not b
    )


def test_two_runs_sharing_a_node_wait_for_each_other(tmp_path):
    """Without Snakemake's accounting (two separate runs), the locks alone keep devices apart."""
    (tmp_path / "record.py").write_text(RECORD)
    env = {
        **os.environ,
        "HARNESS_GPU_POOL": "0,1",
        "HARNESS_GPU_LOCKS": str(tmp_path / "locks"),
        "PYTHONPATH": pythonpath(),
    }
    env.pop("SLURM_JOB_ID", None)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.core.gpus",
                "2",
                "--",
                sys.executable,
                "record.py",
                f"r{i}.json",
                "0.6",
            ],
            cwd=tmp_path,
            env=env,
        )
        for i in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    records = [json.loads((tmp_path / f"r{i}.json").read_text()) for i in range(3)]
    assert all(r["devices"] == "0,1" for r in records) and _overlaps(records) == []


def test_killed_job_releases_its_gpus(tmp_path):
    env = {
        **os.environ,
        "HARNESS_GPU_POOL": "0",
        "HARNESS_GPU_LOCKS": str(tmp_path),
        "PYTHONPATH": pythonpath(),
    }
    env.pop("SLURM_JOB_ID", None)
    p = subprocess.Popen([sys.executable, "-m", "harness.core.gpus", "1", "--", "sleep", "60"], env=env)
    deadline = time.time() + 60
    while True:  # until the sleeper holds the device
        try:
            _, fds = acquire(1, ["0"], tmp_path, wait_s=0)
        except TimeoutError:
            break
        for fd in fds:
            os.close(fd)
        assert time.time() < deadline, "the wrapped job never took the device"
        time.sleep(0.1)
    p.kill()  # SIGKILL: no cleanup code runs
    p.wait(timeout=30)
    ids, fds = acquire(1, ["0"], tmp_path, wait_s=5)
    assert ids == ["0"]
    for fd in fds:
        os.close(fd)


def test_pool_errors_and_pass_through(tmp_path):
    with pytest.raises(ValueError, match="asks for 3 GPUs but the pool has 2"):
        acquire(3, ["0", "1"], tmp_path)
    env = {**os.environ, "HARNESS_GPU_POOL": "", "PYTHONPATH": pythonpath()}  # a CPU machine: no devices
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.core.gpus",
            "1",
            "--",
            sys.executable,
            "-c",
            "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'))",
        ],
        env={k: v for k, v in env.items() if k != "CUDA_VISIBLE_DEVICES"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout.strip() == "None"


def test_more_gpus_than_the_pool_is_one_line(tmp_path):
    env = {
        **os.environ,
        "HARNESS_GPU_POOL": "0,1",
        "HARNESS_GPU_LOCKS": str(tmp_path),
        "PYTHONPATH": pythonpath(),
    }
    r = subprocess.run(
        [sys.executable, "-m", "harness.core.gpus", "4", "--", "true"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines() == [
        "harness.core.gpus: a job asks for 4 GPUs but the pool has 2 (0,1); set the rule's GPUs lower or run "
        "with --resources gpu=<GPUs here>"
    ]
