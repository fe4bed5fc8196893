"""Where a run's files live: the path table (``PATHS``, run-relative templates), the model each
config entry loads (``model_ref``), and the helpers that fill templates and constraints. The one place
a path that more than one rule, target or job config names is written (harness/workflow/targets.py
builds the targets from it; the rules write their outputs through it)."""

from __future__ import annotations

import re
import string

# run-relative path templates; {model} is a model key (cells.ModelKey), {ext} a benchmark's file ending
PATHS = {
    "built_models": "models/tiny",
    "built_model": "models/tiny/{name}",
    "tuned_model": "models/tuned/{name}",
    "converted_model": "models/gguf/{name}",
    "data": "data/{file}",
    "completions": "completions/{policy}/{file}",
    "pairs": "pairs/{policy}/{ranker}/{file}",
    "ref_logps": "reference/{policy}/{ranker}/ref_logps.json",
    "checkpoint": "checkpoints/{policy}/{ranker}/{regularizer}/seed{seed}",
    "training": "training/{policy}/{model}/{file}",
    "eval": "eval/{policy}/{model}/{benchmark}/{file}",
    "difficulty": "eval/difficulty/{benchmark}/{group}.json",
    "study": "ranker_study/{policy}/{ranker}/{file}",
    "gold": "ranker_study/gold/{ranker}/{pset}.json",
    "table": "tables/{name}",
    "figure": "figures/{name}",
    # Snakemake's benchmark file of a job (its wall and CPU seconds): benchmarks/<step>/<job key>.tsv
    "timing": "benchmarks/{step}/{job}.tsv",
}
SHARD = "{shard}-of-{shards}"  # a shard's part of a path (harness/core/shards.py)


class _Keep(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def fill(template: str, **values) -> str:
    """``template`` with ``values`` put in and every other ``{name}`` kept (a Snakemake wildcard)."""
    return string.Formatter().vformat(template, (), _Keep(values))


def run_paths(run_dir: str) -> dict:
    """The path table inside a run's folder: format templates."""
    return {k: f"{run_dir}/{v}" for k, v in PATHS.items()}


def alt(names) -> str:
    """A regex matching exactly one of ``names``."""
    return "|".join(re.escape(n) for n in names)


NEVER = r"(?!)"  # a wildcard constraint no value matches


def shard_paths(pattern: str, shards: int, **wildcards) -> list[str]:
    """``pattern`` for shards 1..N (``{shard}-of-{shards}``), in merge order."""
    return [pattern.format(shard=i, shards=shards, **wildcards) for i in range(1, shards + 1)]


def model_ref(cfg: dict, name: str, paths: dict, tuned: bool = True) -> dict:
    """``{source, revision, dtype, trust_remote_code}`` for a key of ``models``: the fine-tuned model
    where the entry has ``finetune`` (``tuned=False``: the model it is fine-tuned from)."""
    m = cfg["models"][name]
    if "build" in m:
        source = paths["built_model"].format(name=name)
    elif "gguf" in m:
        source = paths["converted_model"].format(name=name)
    else:
        source = m["source"]
    revision = m.get("revision")
    if tuned and "finetune" in m:
        source, revision = paths["tuned_model"].format(name=name), None
    return {
        "name": name,
        "source": source,
        "revision": revision,
        "dtype": m.get("dtype", "auto"),
        # remote code runs only for ids the config lists as reviewed
        "trust_remote_code": source in cfg.get("trusted_remote_code", []),
    }


def source_input(source: dict | list) -> list[str]:
    """A local dataset file as an input (so edits trigger reruns); hub and URL sources have none. A list of
    sources (Arena-Hard's baselines): each one's."""
    return [s["path"] for s in (source if isinstance(source, list) else [source]) if "path" in s]
