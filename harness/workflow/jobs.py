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
import re

from harness.core.cells import BASE, EVALUATED  # noqa: F401 - part of this module's interface
from harness.ranking.kinds import kind as ranker_kind


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
STEPS += ("report", "figures", "reference", "finetune", "difficulty", "downstream", "compare", "convert")


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


def parse_model_key(model: str) -> tuple[str, str, int | None]:
    """``base`` -> ('base', '—', None); ``rk/reg/seedN`` -> (rk, reg, N); ``evaluated/<name>`` (a model
    evaluated without training, config ``evaluate``) -> ('evaluated', name, None)."""
    if model == BASE:
        return BASE, "—", None
    if model.startswith(f"{EVALUATED}/") and model.count("/") == 1:
        return EVALUATED, model.split("/")[1], None
    m = re.fullmatch(r"([^/]+)/([^/]+)/seed(\d+)", model)
    if not m:
        raise ValueError(
            f"model key '{model}' is neither 'base', '<ranker>/<regularizer>/seed<N>' nor 'evaluated/<name>'"
        )
    return m.group(1), m.group(2), int(m.group(3))


def _eval_model(cfg: dict, policy: str, model: str, paths: dict) -> dict:
    """The model an evaluation runs: the base policy, or a trained cell's checkpoint."""
    ranker, reg, seed = parse_model_key(model)
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
    sources = {
        "prompts": lambda: cfg["prompts"],
        "alpaca_eval": lambda: cfg["evaluation"]["alpaca_eval"]["instructions"],
        "mt_bench": lambda: cfg["evaluation"]["mt_bench"]["questions"],
        "mt_bench_judge_prompts": lambda: cfg["evaluation"]["mt_bench"]["judge_prompts"],
        "mt_bench_references": lambda: cfg["evaluation"]["mt_bench"]["reference_answers"],
        "downstream": lambda: cfg["evaluation"]["downstream"]["data"],
    }
    return {"step": step, "kind": key, "source": sources[key]()}


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
        policy, ranker, reg, seed = key.split("/")
        seed = int(seed.removeprefix("seed"))
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
    if step == "downstream":
        policy, model = key.split("/", 1)
        ranker, reg, seed = parse_model_key(model)
        return {
            "step": step,
            "benchmark": "downstream",
            "cell": {
                "policy": policy,
                "ranker": ranker,
                "regularizer": reg,
                "seed": cfg["sampling"]["seed"] if seed is None else seed,
            },
            "model": _eval_model(cfg, policy, model, paths),
            "seed": cfg["sampling"]["seed"] if seed is None else seed,
            "downstream": {k: v for k, v in cfg["evaluation"]["downstream"].items() if k != "data"},
            "dataset": cfg["evaluation"]["downstream"].get("data"),  # for provenance
        }
    if step in ("generate", "judge", "metrics"):
        bench, policy, model = key.split("/", 2)
        ranker, reg, seed = parse_model_key(model)
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
            if bench == "mt_bench":
                job["category_temperatures"] = b.get("category_temperatures", {})
        elif step == "judge":
            if "annotator" in b:
                job.update(judge_name=b["annotator"]["name"], annotator=b["annotator"])
            else:
                job.update(
                    judge_name=b["judge"].get("model", b["judge"]["backend"]),
                    judge=_judge(cfg, b["judge"], paths),
                )
            if bench == "mt_bench":
                job.update(ref_categories=b["ref_categories"])
        else:
            # the eval set, so that its revision is in the metrics file's provenance
            job.update(
                bootstrap=b["bootstrap"], dataset=b["instructions" if bench == "alpaca_eval" else "questions"]
            )
            if bench == "alpaca_eval":
                from harness.evaluation.lc import lc_resolved

                job.update(
                    lc_method=lc_resolved(cfg, policy),
                    lc_requested=b["lc_method"],
                    lc_data=b.get("lc_data"),
                    model_key=model,  # whether it was among the models its LC difficulty was fitted on
                )
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
    if step == "compare":
        return _compare(cfg)
    if step in ("report", "figures"):
        return {"step": step, "name": key}
    raise ValueError(f"unknown step '{step}'; valid: {', '.join(STEPS)}")


def _compare(cfg: dict) -> dict:
    """The comparisons job: which comparisons, over which main-table cells, each benchmark's resample
    counts (the per-cell intervals' own), AlpacaEval's LC method per policy, lm-eval's task metrics."""
    from harness.core.cells import main_cells

    ev = cfg["evaluation"]
    benchmarks = {}
    if "alpaca_eval" in ev:
        b = ev["alpaca_eval"]["bootstrap"]
        benchmarks["alpaca_eval"] = {"samples": b["samples"], "lc_samples": b["lc_samples"]}
    if "mt_bench" in ev:
        benchmarks["mt_bench"] = {"samples": ev["mt_bench"]["bootstrap"]["samples"]}
    if "downstream" in ev:
        tasks = [{"name": t["name"], "metric": t["metric"]} for t in ev["downstream"]["tasks"]]
        benchmarks["downstream"] = {"samples": 1000, "tasks": tasks}  # documents resampled per comparison
    lc = {}
    if "alpaca_eval" in ev:
        from harness.evaluation.lc import lc_group, lc_resolved

        lc = {
            p: {
                "group": lc_group(cfg, p),
                "method": lc_resolved(cfg, p),
                "lc_data": ev["alpaca_eval"].get("lc_data"),
            }
            for p in cfg["policies"]
        }
    settings = cfg["comparison_settings"]
    return {
        "step": "compare",
        "comparisons": cfg["comparisons"],
        "cells": [list(c) for c in main_cells(cfg)],
        "benchmarks": benchmarks,
        "lc": lc,
        "seed": settings["seed"],
        "more_seeds": settings["more_seeds"],
    }
