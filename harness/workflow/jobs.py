"""Resolve the experiment config into one small config per job.

The workflow writes ``results/configs/<step>/<key>.<hash>.yaml`` from ``resolve`` (``write_job_config``,
called from the rules' input functions); the heavy step reads only that file, so any job can be rerun
by hand, and a job reruns exactly when its own resolved config changes: a new content is a new file
name, which Snakemake sees as a changed input set.

Keys: build ``tiny``; convert ``<converted_key>`` (written under results/shared/, one for every run);
finetune ``<model>``; prepare ``prompts.jsonl|alpaca_eval.json|mt_bench.jsonl``; sample ``<policy>``; rank
``<policy>/<ranker>``; train ``<policy>/<ranker>/<regularizer>/seed<N>``; generate, judge and metrics
``<benchmark>/<policy>/<model>`` with model ``base`` or ``<ranker>/<regularizer>/seed<N>``; downstream
``<policy>/<model>``; difficulty ``alpaca_eval/<reference group>``; report ``main``.
"""

from __future__ import annotations

import os

from harness.core.benchmarks import BENCHMARKS, get
from harness.core.cells import BASE, EVALUATED, ModelKey
from harness.ranking.kinds import kind as ranker_kind
from harness.workflow.targets import model_ref


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


STEPS = ("build", "prepare", "sample", "rank", "study_rank", "gold", "train", "generate", "judge", "metrics")
STEPS += ("report", "figures", "reference", "finetune", "difficulty", "compare", "cost", "convert")
STEPS += tuple(b.name for b in BENCHMARKS.values() if not b.judged)  # one job runs it whole (lm-eval)


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


def resolve(cfg: dict, step: str, key: str, paths: dict) -> dict:
    """The job config of ``step`` for ``key`` (see module docstring)."""
    if step == "build":
        built = {n: m["build"] for n, m in cfg["models"].items() if "build" in m}
        return {"step": step, "tokenizer": cfg.get("tiny_tokenizer", {}), "models": built}
    if step == "convert":  # key: the shared conversion's converted_key (the same in every run)
        from harness.backends.convert import converted_key, gguf_path
        from harness.core.io import file_sha256

        found = [
            (n, m["gguf"])
            for n, m in cfg["models"].items()
            if "gguf" in m and converted_key(m["gguf"], n) == key
        ]
        if not found:
            from harness.core.errors import ConfigError

            raise ConfigError(
                f"models/gguf/{key}: no GGUF model of this config converts to it (a file changed?)"
            )
        name, spec = found[0]
        path = gguf_path(spec, name)  # resolved here: the job may run in an environment without the package
        # the file's bytes are part of the job: another file at the same path converts again
        job = {"step": step, "key": key, "gguf_file": str(path), "sha256": file_sha256(path)}
        return {**job, "scorer": spec["scorer"]} if "scorer" in spec else job
    if step == "finetune":
        return {
            "step": step,
            "name": key,
            "model": model_ref(cfg, key, paths, tuned=False),
            "finetune": cfg["models"][key]["finetune"],
        }
    if step == "prepare":
        job = _prepare(cfg, key)
        if "path" in job["source"]:  # a changed file is a changed job config: prepare_data reruns
            from harness.core.io import file_sha256

            job["source_sha256"] = file_sha256(job["source"]["path"])
        return job
    return _resolve(cfg, step, key, paths)


def _prepare(cfg: dict, key: str) -> dict:
    step = "prepare"
    if key.startswith("finetune/"):
        name = key.removeprefix("finetune/").removesuffix(".jsonl")
        ft = cfg["models"][name]["finetune"]
        kind = "demonstrations" if ft["kind"] == "sft" else "preferences"
        return {"step": step, "kind": kind, "source": ft["data"]}
    if key.startswith("preferences/"):
        name = key.removeprefix("preferences/").removesuffix(".jsonl")
        return {
            "step": step,
            "kind": "preferences",
            "source": cfg["ranker_study"]["preference_sets"][name]["source"],
        }
    key = key.split(".")[0]  # results/data/<key>.<ext>
    if key == "prompts":
        return {"step": step, "kind": key, "source": cfg["prompts"]}
    bench = next(b for b in BENCHMARKS.values() if key in b.data)
    return {"step": step, "kind": key, "source": cfg["evaluation"][bench.name][bench.data[key][0]]}


def _resolve(cfg: dict, step: str, key: str, paths: dict) -> dict:
    if step == "sample":
        return {
            "step": step,
            "policy": key,
            "model": model_ref(cfg, key, paths),
            "sampling": _unsharded(cfg["sampling"]),
            "dataset": cfg["prompts"],  # for provenance
        }
    if step == "gold":
        ranker, pset = key.split("/")
        job = resolve(cfg, "rank", f"{cfg['policies'][0]}/{ranker}", paths)
        job.update(
            step=step,
            preference_set=pset,
            distribution=cfg["ranker_study"]["preference_sets"][pset]["distribution"],
        )
        del job["policy"]
        return job
    if step in ("rank", "study_rank"):
        policy, ranker = key.split("/")
        r = {"name": ranker, **_unsharded(cfg["rankers"][ranker])}
        if step == "study_rank" and ranker_kind(r).pairwise:
            r["procedure"] = cfg["ranker_study"]["procedure"]
        if step == "study_rank" and cfg["ranker_study"].get("prompts"):
            r["limit"] = cfg["ranker_study"]["prompts"]
        if not ranker_kind(r).pairwise:
            r["model"] = model_ref(cfg, r["model"], paths)
            r.pop("judge", None)
        else:
            r["judge"] = _judge(cfg, r["judge"], paths)
            r.pop("model", None)
        return {"step": step, "policy": policy, "ranker": r, "seed": cfg["sampling"]["seed"]}
    if step == "reference":
        policy, ranker = key.split("/")
        return {"step": step, "seed": 0, "model": model_ref(cfg, policy, paths), "training": cfg["training"]}
    if step == "train":
        policy, model = key.split("/", 1)
        ranker, reg, seed = ModelKey.parse(model)
        from harness.training import objectives

        regularizer = objectives.settings(reg, cfg["regularizers"][reg])
        return {
            "step": step,
            "cell": {"policy": policy, "ranker": ranker, "regularizer": reg, "seed": seed},
            "seed": seed,
            "model": model_ref(cfg, policy, paths),
            "regularizer": regularizer,
            "training": cfg["training"],
        }
    if step in BENCHMARKS and not get(step).judged:
        policy, model = key.split("/", 1)
        ranker, reg, seed = ModelKey.parse(model)
        return {
            "step": step,
            "benchmark": step,
            "cell": {
                "policy": policy,
                "ranker": ranker,
                "regularizer": reg,
                "seed": cfg["sampling"]["seed"] if seed is None else seed,
            },
            "model": _eval_model(cfg, policy, model, paths),
            "seed": cfg["sampling"]["seed"] if seed is None else seed,
            step: {k: v for k, v in cfg["evaluation"][step].items() if k != "data"},
            "dataset": cfg["evaluation"][step].get("data"),  # for provenance
        }
    if step in ("generate", "judge", "metrics"):
        bench, policy, model = key.split("/", 2)
        ranker, reg, seed = ModelKey.parse(model)
        cell = {
            "policy": policy,
            "ranker": ranker,
            "regularizer": reg,
            "seed": cfg["sampling"]["seed"] if seed is None else seed,
        }
        b = cfg["evaluation"][bench]
        job = {"step": step, "benchmark": bench, "cell": cell}
        if step == "generate":
            job.update(
                model=_eval_model(cfg, policy, model, paths),
                generator=f"{policy}/{model}",
                seed=cell["seed"],
                generation=_unsharded(b.get("generation", {})),
            )
            job.update({k: b.get(k, {}) for k in get(bench).generate_keys})
        elif step == "judge":
            if "annotator" in b:
                job.update(judge_name=b["annotator"]["name"], annotator=b["annotator"])
            else:
                job.update(
                    judge_name=b["judge"].get("model", b["judge"]["backend"]),
                    judge=_judge(cfg, b["judge"], paths),
                )
            job.update({k: b[k] for k in get(bench).judge_keys})
        else:
            # the eval set, so that its revision is in the metrics file's provenance
            job.update(bootstrap=b["bootstrap"], dataset=b[get(bench).prompts])
            if "metrics_job" in get(bench).hooks:  # its own settings (AlpacaEval's LC)
                job.update(get(bench).hook("metrics_job")(cfg, policy, model))
        return job
    if step == "difficulty":
        from harness.evaluation.lc import lc_models

        bench, group = key.split("/")
        b = cfg["evaluation"][bench]
        return {
            "step": step,
            "benchmark": bench,
            "group": group,
            "models": lc_models(cfg, group),
            **b["lc_joint"],
            "dataset": b["instructions"],
        }
    if step in ("compare", "cost"):
        from harness.workflow.config import run_dir
        from harness.workflow.targets import Targets

        targets = Targets(cfg, run_dir(cfg))
        if step == "cost":
            return {"step": step, "evaluations": targets.cost_jobs()}
        return _compare(cfg, targets)
    if step in ("report", "figures"):
        return {"step": step, "name": key}
    raise ValueError(f"unknown step '{step}'; valid: {', '.join(STEPS)}")


def _compare(cfg: dict, targets) -> dict:
    """The comparisons job: which comparisons, over which main-table cells, each benchmark's own settings
    (its resample counts, the per-cell intervals' own; AlpacaEval's LC method per policy; lm-eval's task
    metrics) and the per-prompt files of every cell."""
    from harness.core.cells import main_cells

    files, difficulty = targets.comparison_files()
    settings = cfg["comparison_settings"]
    return {
        "step": "compare",
        "comparisons": cfg["comparisons"],
        "cells": [list(c) for c in main_cells(cfg)],
        "benchmarks": {b: get(b).hook("compare_job")(cfg) for b in cfg["evaluation"]},
        "files": files,
        "difficulty": difficulty,
        "seed": settings["seed"],
        "more_seeds": settings["more_seeds"],
    }
