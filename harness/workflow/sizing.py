"""How many GPUs and how much host memory each job gets, from the config alone.

GPU counts belong to what a config runs: a tiny model built from code, the demo's oracle and an API
judge need none; a hub model needs ``models.<name>.gpus`` (default 1; 4 for a 70B judge in bf16);
training needs ``training.gpus`` (default: the policy's). Every executor reads the same numbers, so a
local ``--resources gpu=8`` run and a SLURM run plan the same jobs, and a profile only names where they
go (partition, GPU model, memory, time).

The batch arithmetic of training is harness/training/batch.py. This module imports nothing heavy: the
workflow calls it while planning the DAG.
"""

from __future__ import annotations

from harness.backends import loads_model
from harness.ranking.kinds import kind as ranker_kind

# Host memory of a job: enough for the steps that run on CPU (the demo's, metrics, tables), and 64 GB
# per GPU for jobs that load hub models (an 8B model's bf16 weights are 16 GB; vLLM and DeepSpeed
# stage them in host memory; 8 GPUs -> 512 GB, a common 8-GPU node's share).
CPU_JOB_MEM_MB = 8000
HOST_MEM_MB_PER_GPU = 64000


def host_mem_mb(gpus: int) -> int:
    return max(CPU_JOB_MEM_MB, HOST_MEM_MB_PER_GPU * int(gpus))


def model_gpus(cfg: dict, name: str) -> int:
    """GPUs a job that loads ``models.<name>`` gets: its ``gpus``, else 0 if built from code, else 1."""
    m = cfg["models"][name]
    if m.get("gpus") is not None:
        return int(m["gpus"])
    return 0 if "build" in m else 1


def judge_gpus(cfg: dict, judge: dict) -> int:
    """0 for the oracle and endpoint judges (no weights here), else the judge model's GPUs."""
    return model_gpus(cfg, judge["model"]) if loads_model(judge) else 0


def ranker_gpus(cfg: dict, ranker: str) -> int:
    r = cfg["rankers"][ranker]
    return judge_gpus(cfg, r["judge"]) if ranker_kind(r).pairwise else model_gpus(cfg, r["model"])


def eval_judge_gpus(cfg: dict, benchmark: str) -> int:
    b = cfg["evaluation"][benchmark]
    return judge_gpus(cfg, b["judge"]) if "judge" in b else 0  # an alpaca_eval annotator is an API


def training_gpus(cfg: dict, policy: str) -> int:
    t = cfg["training"].get("gpus")
    return model_gpus(cfg, policy) if t is None else int(t)
