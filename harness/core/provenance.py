"""Provenance embedded in every metrics file: code, packages, config, models, seed, device, GPUs."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "harness",
    "torch",
    "transformers",
    "trl",
    "tokenizers",
    "accelerate",
    "datasets",
    "alpaca-eval",
    "vllm",
    "snakemake",
    "pandas",
    "numpy",
)


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def gpus_used() -> int:
    """GPUs the job was given (``resources.gpu``, via HARNESS_GPUS) if it ran on CUDA, else 0."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return 0
    return min(int(os.environ.get("HARNESS_GPUS", "1")), torch.cuda.device_count())


def device_name() -> str:
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            return f"cuda:{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"cpu:{platform.processor() or platform.machine()}"


def provenance(job_config: dict | None = None, seed: int | None = None, started: float | None = None) -> dict:
    """A dict to embed under ``"provenance"`` in a metrics or meta file."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    prov = {
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "packages": _versions(),
        "python": platform.python_version(),
        "device": device_name(),
        "gpus": gpus_used(),
        "seed": seed,
    }
    if job_config is not None:
        prov["config_hash"] = config_hash(job_config)
        prov["models"], prov["datasets"] = _revisions(job_config)
    if started is not None:
        prov["wall_time_s"] = round(time.time() - started, 3)
    if os.environ.get(
        "HARNESS_WARM_WORKER"
    ):  # harness/workflow/warm.py: the job's CPU is not where Snakemake looks
        prov["warm_start"] = True
        prov["cpu_s"] = round(cpu_seconds(), 2)
    return prov


def cpu_seconds() -> float:
    """CPU seconds this process and its finished children have used so far (user and system)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _revisions(cfg) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """Models (``{source, revision}``) and datasets (``{hub: {repo_id, revision}}``, ``{url}``,
    ``{path}``) named anywhere in the job config, each keyed by where it comes from."""
    models, datasets = {}, {}

    def walk(node):
        if isinstance(node, dict):
            if "source" in node and "revision" in node and isinstance(node["source"], str):
                models[node["source"]] = node["revision"]
            if isinstance(node.get("hub"), dict) and "repo_id" in node["hub"]:
                hub = node["hub"]
                datasets[hub["repo_id"] + (f"/{hub['filename']}" if hub.get("filename") else "")] = hub[
                    "revision"
                ]
            for kind in ("url", "path"):
                if isinstance(node.get(kind), str) and set(node) <= {"url", "path", "limit", "skip"}:
                    datasets[node[kind]] = None  # a URL pins its commit in itself; a path is local
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(cfg)
    return models, datasets
