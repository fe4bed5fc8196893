"""Resolve the experiment config into one small config per job.

The workflow writes ``results/<run>/configs/<kind>/<key>.<hash>.yaml`` from ``resolve``
(``write_job_config``, called from the rules' input functions); the heavy step reads only that file, so
any job can be rerun by hand, and a job reruns exactly when its own resolved config changes: a new content
is a new file name, which Snakemake sees as a changed input set. A job's kind is the name of its rule.

Keys: build_tiny_models ``tiny``; convert_gguf ``<converted_key>`` (written under results/shared/, one for
every run); finetune ``<model>``; prepare_data ``prompts.jsonl|alpaca_eval.json|mt_bench.jsonl|...``;
sample ``<policy>``; rank and rank_study ``<policy>/<ranker>``; gold_accuracy ``<ranker>/<preference
set>``; reference_logps ``<policy>/<ranker>``; train ``<policy>/<ranker>/<regularizer>/seed<N>``;
generate, judge and metrics ``<benchmark>/<policy>/<model>`` with model ``base`` or
``<ranker>/<regularizer>/seed<N>``; downstream ``<policy>/<model>``; lc_difficulty ``alpaca_eval/<reference
group>``; comparisons and cost ``main``; the tables and figures (``NAMED``) their own name.
"""

from __future__ import annotations

import os

from harness.core.benchmarks import BENCHMARKS, get
from harness.core.cells import BASE, EVALUATED, ModelKey
from harness.ranking.kinds import kind as ranker_kind
from harness.workflow.paths import model_ref

# kinds named after their rule since 2026-12-05, and what they were called before: a job whose config
# a run wrote under the old name keeps it (configs/<old>/<key>.<hash>.yaml, the old name inside), so
# that its path and content, and so the finished job, stay as they were
RENAMED = {
    "build_tiny_models": "build",
    "convert_gguf": "convert",
    "prepare_data": "prepare",
    "rank_study": "study_rank",
    "gold_accuracy": "gold",
    "reference_logps": "reference",
    "lc_difficulty": "difficulty",
    "comparisons": "compare",
    **dict.fromkeys(
        ("evaluated_table", "baselines_table", "study_table", "mt_bench_categories", "arena_hard_style"),
        "report",
    ),  # fmt: skip
    **dict.fromkeys(("training_curves", "budget_sweep", "downstream_figure"), "figures"),
}


def config_stem(root: str, kind: str, key: str) -> tuple[str, str]:
    """The kind a job config names and the stem of its file under ``root`` (a run's folder, or
    results/shared): the old kind's where the run holds a config of this job under it (``RENAMED``)."""
    import re

    old = RENAMED.get(kind)
    if old:
        folder, _, name = f"{root}/configs/{old}/{key}".rpartition("/")
        pattern = re.compile(re.escape(name) + r"\.[0-9a-f]{12}\.yaml")
        if os.path.isdir(folder) and any(pattern.fullmatch(f) for f in os.listdir(folder)):
            kind = old
    return kind, f"{root}/configs/{kind}/{key}"


def write_job_config(cfg: dict, stem: str) -> str:
    """Write ``cfg`` as YAML to ``<stem>.<hash of the text>.yaml`` unless that file exists; return its path."""
    import hashlib

    import yaml

    from harness.core.io import write_text

    text = yaml.safe_dump(cfg, sort_keys=True)
    path = f"{stem}.{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    if not os.path.exists(path):
        write_text(path, text)
    return path


def _judge(cfg, jcfg, paths):
    from harness.backends import spec

    j = dict(jcfg)
    if spec(j["backend"]).ground_truth:  # the demo world's ground truth: no model
        return j
    if spec(j["backend"]).endpoint:  # the endpoint's model name; no weights to load here
        j["model"] = {
            "name": j["model"],
            "source": j["model"],
            "revision": None,
            "base_url": j.get("base_url"),
            "api_key_env": j.get("api_key_env", "OPENAI_API_KEY"),
        }
    else:
        j["model"] = model_ref(cfg, j["model"], paths)
    return j


def _unsharded(settings: dict) -> dict:
    """A stage's settings without ``shards``: how many jobs share the work does not change the result
    (harness/core/shards.py), so it stays out of the job config and its hash."""
    return {k: v for k, v in settings.items() if k != "shards"}


def _eval_model(cfg: dict, policy: str, model: str, paths: dict) -> dict:
    """The model an evaluation runs: the base policy, or a trained cell's checkpoint."""
    ranker, reg, seed = ModelKey.parse(model)
    if ranker == BASE:
        return model_ref(cfg, policy, paths)
    if ranker == EVALUATED:
        return model_ref(cfg, reg, paths)
    return {
        "name": f"{policy}/{model}",
        "source": paths["checkpoint"].format(policy=policy, ranker=ranker, regularizer=reg, seed=seed),
        "revision": None,
        "dtype": cfg["models"][policy].get("dtype", "auto"),
        "trust_remote_code": False,
    }


RESOLVERS: dict = {}  # job kind -> its resolver (cfg, key, paths) -> job config


def resolver(*steps: str):
    """Declare the resolver of one or more job kinds."""

    def register(fn):
        RESOLVERS.update(dict.fromkeys(steps, fn))
        return fn

    return register


def resolve(cfg: dict, step: str, key: str, paths: dict) -> dict:
    """The job config of ``step`` for ``key`` (see module docstring)."""
    if step not in RESOLVERS:
        raise ValueError(f"unknown step '{step}'; valid: {', '.join(RESOLVERS)}")
    return {"step": step, **RESOLVERS[step](cfg, step, key, paths)}


@resolver("build_tiny_models")
def _build(cfg, step, key, paths):
    built = {n: m["build"] for n, m in cfg["models"].items() if "build" in m}
    return {"tokenizer": cfg.get("tiny_tokenizer", {}), "models": built}


@resolver("convert_gguf")
def _convert(cfg, step, key, paths):  # key: the shared conversion's converted_key (the same in every run)
    from harness.backends.convert import converted_key, gguf_path
    from harness.core.io import file_sha256

    found = [
        (n, m["gguf"]) for n, m in cfg["models"].items() if "gguf" in m and converted_key(m["gguf"], n) == key
    ]
    if not found:
        from harness.core.errors import ConfigError

        raise ConfigError(f"models/gguf/{key}: no GGUF model of this config converts to it (a file changed?)")
    name, spec = found[0]
    path = gguf_path(spec, name)  # resolved here: the job may run in an environment without the package
    # the file's bytes are part of the job: another file at the same path converts again
    job = {"key": key, "gguf_file": str(path), "sha256": file_sha256(path)}
    return {**job, "scorer": spec["scorer"]} if "scorer" in spec else job


@resolver("finetune")
def _finetune(cfg, step, key, paths):
    m = cfg["models"][key]
    return {"name": key, "model": model_ref(cfg, key, paths, tuned=False), "finetune": m["finetune"]}


@resolver("prepare_data")
def _prepare(cfg, step, key, paths):
    job = _prepared(cfg, key)
    from harness.core.arena import source_sha256

    # a changed file is a changed job config: prepare_data reruns
    sha = [source_sha256(s["path"]) if "path" in s else None for s in _listed(job["source"])]
    if any(sha):
        job["source_sha256"] = sha if isinstance(job["source"], list) else sha[0]
    return job


def _listed(source) -> list:
    """A source, or a list of them (Arena-Hard's baselines), as a list."""
    return source if isinstance(source, list) else [source]


def _prepared(cfg: dict, key: str) -> dict:
    if key.startswith("finetune/"):
        ft = cfg["models"][key.removeprefix("finetune/").removesuffix(".jsonl")]["finetune"]
        return {"kind": "demonstrations" if ft["kind"] == "sft" else "preferences", "source": ft["data"]}
    if key.startswith("preferences/"):
        name = key.removeprefix("preferences/").removesuffix(".jsonl")
        return {"kind": "preferences", "source": cfg["ranker_study"]["preference_sets"][name]["source"]}
    key = key.split(".")[0]  # results/data/<key>.<ext>
    if key == "prompts":
        return {"kind": key, "source": cfg["prompts"]}
    bench = next((b for b in BENCHMARKS.values() if key in b.data), None)
    if bench is None:
        raise ValueError(f"data/{key}: not a data file of any benchmark (harness/core/benchmarks.py)")
    return {"kind": key, "source": cfg["evaluation"][bench.name][bench.data[key][0]]}


@resolver("sample")
def _sample(cfg, step, key, paths):
    return {
        "policy": key,
        "model": model_ref(cfg, key, paths),
        "sampling": _unsharded(cfg["sampling"]),
        "dataset": cfg["prompts"],  # for provenance
    }


@resolver("gold_accuracy")
def _gold(cfg, step, key, paths):
    ranker, pset = key.split("/")
    job = resolve(cfg, "rank", f"{cfg['policies'][0]}/{ranker}", paths)
    distribution = cfg["ranker_study"]["preference_sets"][pset]["distribution"]
    job.update(step=step, preference_set=pset, distribution=distribution)
    del job["policy"]
    return job


@resolver("rank", "rank_study")
def _rank(cfg, step, key, paths):
    policy, ranker = key.split("/")
    r = {"name": ranker, **_unsharded(cfg["rankers"][ranker])}
    if step == "rank_study" and ranker_kind(r).pairwise:
        r["procedure"] = cfg["ranker_study"]["procedure"]
    if step == "rank_study" and cfg["ranker_study"].get("prompts"):
        r["limit"] = cfg["ranker_study"]["prompts"]
    if not ranker_kind(r).pairwise:
        r["model"] = model_ref(cfg, r["model"], paths)
        r.pop("judge", None)
    else:
        r["judge"] = _judge(cfg, r["judge"], paths)
        r.pop("model", None)
    return {"policy": policy, "ranker": r, "seed": cfg["sampling"]["seed"]}


@resolver("reference_logps")
def _reference(cfg, step, key, paths):
    policy, _ = key.split("/")
    return {"seed": 0, "model": model_ref(cfg, policy, paths), "training": cfg["training"]}


@resolver("train")
def _train(cfg, step, key, paths):
    from harness.training import objectives

    policy, model = key.split("/", 1)
    ranker, reg, seed = ModelKey.parse(model)
    return {
        "cell": {"policy": policy, "ranker": ranker, "regularizer": reg, "seed": seed},
        "seed": seed,
        "model": model_ref(cfg, policy, paths),
        "regularizer": objectives.settings(reg, cfg["regularizers"][reg]),
        "training": cfg["training"],
    }


def _cell(cfg: dict, policy: str, model: str) -> dict:
    """The cell of an evaluated model: a base or evaluated model's seed is the sampling seed."""
    ranker, reg, seed = ModelKey.parse(model)
    seed = cfg["sampling"]["seed"] if seed is None else seed
    return {"policy": policy, "ranker": ranker, "regularizer": reg, "seed": seed}


@resolver(*(b.name for b in BENCHMARKS.values() if not b.judged))  # one job runs it whole (lm-eval)
def _whole_benchmark(cfg, step, key, paths):
    policy, model = key.split("/", 1)
    cell = _cell(cfg, policy, model)
    return {
        "benchmark": step,
        "cell": cell,
        "model": _eval_model(cfg, policy, model, paths),
        "seed": cell["seed"],
        step: {k: v for k, v in cfg["evaluation"][step].items() if k != "data"},
        "dataset": cfg["evaluation"][step].get("data"),  # for provenance
    }


@resolver("generate", "judge", "metrics")
def _judged(cfg, step, key, paths):
    bench, policy, model = key.split("/", 2)
    b, entry = cfg["evaluation"][bench], get(bench)
    job = {"benchmark": bench, "cell": _cell(cfg, policy, model)}
    if step == "generate":
        job.update(
            model=_eval_model(cfg, policy, model, paths),
            generator=f"{policy}/{model}",
            seed=job["cell"]["seed"],
            generation=_unsharded(b.get("generation", {})),
        )
        job.update({k: b.get(k, {}) for k in entry.generate_keys})
    elif step == "judge":
        if "annotator" in b:
            job.update(judge_name=b["annotator"]["name"], annotator=b["annotator"])
        else:
            job.update(
                judge_name=b["judge"].get("model", b["judge"]["backend"]),
                judge=_judge(cfg, b["judge"], paths),
            )
        job.update({k: b[k] for k in entry.judge_keys})
    else:  # the eval set, so that its revision is in the metrics file's provenance
        job.update(bootstrap=b["bootstrap"], dataset=b[entry.prompts])
        if "metrics_job" in entry.hooks:  # its own settings (AlpacaEval's LC)
            job.update(entry.hook("metrics_job")(cfg, policy, model))
    return job


@resolver("lc_difficulty")
def _difficulty(cfg, step, key, paths):
    from harness.evaluation.lc import lc_models

    bench, group = key.split("/")
    b = cfg["evaluation"][bench]
    return {
        "benchmark": bench,
        "group": group,
        "models": lc_models(cfg, group),
        **b["lc_joint"],
        "dataset": b[get(bench).prompts],
    }


@resolver("comparisons", "cost")
def _from_targets(cfg, step, key, paths):
    from harness.workflow.config import run_dir
    from harness.workflow.targets import Targets

    targets = Targets(cfg, run_dir(cfg))
    return {"evaluations": targets.cost_jobs()} if step == "cost" else _compare(cfg, targets)


# the tables and figures, whose job configs hold only their name
NAMED = ("report", "evaluated_table", "baselines_table", "study_table", "training_curves", "budget_sweep",
         "mt_bench_categories", "arena_hard_style", "downstream_figure")  # fmt: skip


@resolver(*NAMED)
def _named(cfg, step, key, paths):
    return {"name": key}


def _compare(cfg: dict, targets) -> dict:
    """The comparisons job: which comparisons, over which main-table cells, each benchmark's own settings
    (its resample counts, the per-cell intervals' own; AlpacaEval's LC method per policy; lm-eval's task
    metrics) and the per-prompt files of every cell."""
    from harness.core.cells import main_cells

    files, difficulty = targets.comparison_files()
    settings = cfg["comparison_settings"]
    return {
        "comparisons": cfg["comparisons"],
        "cells": [list(c) for c in main_cells(cfg)],
        "benchmarks": {b: get(b).hook("compare_job")(cfg) for b in cfg["evaluation"]},
        "files": files,
        "difficulty": difficulty,
        "seed": settings["seed"],
        "more_seeds": settings["more_seeds"],
    }
