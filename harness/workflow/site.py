"""A SLURM site's names (account, partitions, GPU model), filled once by the user.

They come from ``profiles/slurm/site.yaml`` (copy ``site.example.yaml``; the file is git-ignored, so
filling it leaves the checkout clean for provenance) or from environment variables, which win:

    HARNESS_SLURM_ACCOUNT  HARNESS_SLURM_CPU_PARTITION  HARNESS_SLURM_GPU_PARTITION  HARNESS_SLURM_GPU_MODEL

``HARNESS_SLURM_SITE`` names another file. The rules turn the names into the plugin's resources
(``slurm_account``, ``slurm_partition``, ``gpu_model``) by each job's GPU count, which comes from the
config (harness/workflow/sizing.py): a job without GPUs goes to the CPU partition. With the SLURM executor the
workflow checks the site before the first sbatch and stops with one line naming what is missing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from harness.core.errors import HarnessError

FIELDS = {  # field -> (environment variable, required)
    "account": ("HARNESS_SLURM_ACCOUNT", True),
    "cpu_partition": ("HARNESS_SLURM_CPU_PARTITION", True),
    "gpu_partition": ("HARNESS_SLURM_GPU_PARTITION", True),
    "gpu_model": ("HARNESS_SLURM_GPU_MODEL", False),  # empty: any GPU of the partition
}
DEFAULT_FILE = "profiles/slurm/site.yaml"
NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")  # what sbatch takes unquoted (the plugin's GPU-model rule)


class SiteError(HarnessError):
    """The SLURM site is not filled in, or names something sbatch would refuse."""


def site_file(basedir: str | Path) -> Path:
    return Path(os.environ.get("HARNESS_SLURM_SITE") or Path(basedir) / DEFAULT_FILE)


def load(basedir: str | Path) -> dict:
    """The site's fields from the file (if any) with the environment on top; absent fields are ''."""
    import yaml

    path = site_file(basedir)
    values: dict = {}
    if path.exists():
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise SiteError(f"{path}: expected a mapping of {', '.join(FIELDS)}")
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise SiteError(f"{path}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(FIELDS)}")
    out = {}
    for field, (env, _) in FIELDS.items():
        value = os.environ.get(env, values.get(field))
        out[field] = "" if value is None else str(value).strip()
    return out


def configured(basedir: str | Path) -> bool:
    """Whether the user has started to fill a site (a file or any of the variables)."""
    return site_file(basedir).exists() or any(os.environ.get(env) for env, _ in FIELDS.values())


def check(basedir: str | Path) -> dict:
    """The complete site, or a SiteError naming every missing or malformed field and where to set it."""
    site = load(basedir)
    missing = [f for f, (_, required) in FIELDS.items() if required and not site[f]]
    bad = [f for f, v in site.items() if v and not NAME.match(v)]
    if missing or bad:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(f"{f} ({FIELDS[f][0]})" for f in missing))
        if bad:
            parts.append("not a SLURM name: " + ", ".join(f"{f}={site[f]!r}" for f in bad))
        raise SiteError(
            f"SLURM site: {'; '.join(parts)}: fill {site_file(basedir)} (from profiles/slurm/site.example.yaml)"
            " or set the variables; nothing was submitted"
        )
    return site


def job_resources(site: dict, gpus: int) -> dict:
    """The plugin's resources for a job with ``gpus`` GPUs."""
    out = {
        "slurm_account": site["account"],
        "slurm_partition": site["gpu_partition"] if gpus else site["cpu_partition"],
    }
    if gpus and site["gpu_model"]:
        out["gpu_model"] = site["gpu_model"]
    return out


def resources(gpus, workflow) -> dict:
    """Resource callables for a rule (``gpus``: wildcards -> GPU count), or none where no site is set.

    The site is read once per run; a rule without a site resource falls back to the profile's defaults
    (and the SLURM executor is stopped by ``check`` first).
    """
    basedir = workflow.basedir
    if not configured(basedir):
        return {}
    site = load(basedir)

    def field(name):
        return lambda wc: job_resources(site, gpus(wc)).get(name, "")

    return {name: field(name) for name in ("slurm_account", "slurm_partition", "gpu_model")}
