# Helpers only: paths, target lists, input functions, wildcard constraints.
import re
import shlex
import sys

from pathlib import Path

from harness import backends
from harness.core import cells
from harness.ranking.kinds import kind as ranker_kind
from harness.training import batch, objectives
from harness.workflow import jobs, site, sizing, warm
from harness.evaluation.lc import lc_group, lc_models, lc_resolved
from harness.workflow.locks import cancel_leftovers, live_snakemake
from harness.workflow.config import loads_model, run_paths

# Every job runs this checkout's harness (`python -m harness`), in whatever environment it runs:
# the conda envs of envs/ hold the dependencies, this path the code.
# (The prefix is formatted like a shell command: doubled braces reach the shell as single ones; the
# checkout's path is quoted for the shell, so that a space or a `;` in it is only a character.)
BASEDIR_Q = shlex.quote(str(workflow.basedir)).replace("{", "{{").replace("}", "}}")
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={BASEDIR_Q}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
)


def run_path(path):
    """``path`` inside this run's folder, results/<run>/ (a wildcard pattern stays one)."""
    return f"{RUN_DIR}/{path}"


def shared_path(path):
    """``path`` inside the folder every run shares, results/shared/."""
    return f"{SHARED_DIR}/{path}"


# Where each kind of output lives; the harness never builds a path itself.
PATHS = run_paths(RUN_DIR)
BENCHMARKS = list(config["evaluation"])
JUDGED = [
    b for b in BENCHMARKS if b != "downstream"
]  # answered, judged, scored by our metrics step
PREFERENCE_SETS = list(config["ranker_study"]["preference_sets"])


def _alt(names):
    return "|".join(re.escape(n) for n in names)


SEED = r"\d+"
NEVER = r"(?!)"  # a constraint no value matches
# Reward-model and judge rankers run under separate rules, so that a profile sizes each (an 8B scorer
# on one GPU, a 70B-class judge on a multi-GPU node).
# A stage with `shards` > 1 runs as that many `*_shard` jobs and a merge job (harness/core/shards.py); the
# unsharded rule and the merge rule write the same file, so each takes the wildcard values of its case.
SAMPLE_SHARDS = config["sampling"].get("shards", 1)


def rankers_where(pairwise=None, sharded=None):
    """A constraint matching the rankers that are (not) pairwise (either) and (not) sharded (either)."""
    names = [
        r
        for r, c in config["rankers"].items()
        if pairwise in (None, ranker_kind(c).pairwise)
        and sharded in (None, c.get("shards", 1) > 1)
    ]
    return _alt(names) or NEVER


RM_RANKERS = rankers_where(pairwise=False, sharded=False)
IPR_RANKERS = rankers_where(pairwise=True, sharded=False)
RM_SHARDED = rankers_where(pairwise=False, sharded=True)
IPR_SHARDED = rankers_where(pairwise=True, sharded=True)
SHARDED_RANKERS = rankers_where(sharded=True)
# the ranker study re-ranks with every ranker in one job each (not sharded)
RM_STUDY = rankers_where(pairwise=False)
IPR_STUDY = rankers_where(pairwise=True)
POLICIES = _alt(config["policies"])


def generation_shards(benchmark):
    return config["evaluation"][benchmark].get("generation", {}).get("shards", 1)


def benchmarks_where(sharded):
    names = [b for b in JUDGED if (generation_shards(b) > 1) == sharded]
    return _alt(names) or NEVER


# models evaluated without training (config `evaluate`): model key evaluated/<name>
EVALUATED_ONLY = cells.evaluated_only(config)
EVALUATED_NAMES = [m.split("/")[1] for _, m in EVALUATED_ONLY]
TUNED = [n for n, m in config["models"].items() if "finetune" in m]
CONVERTED = [n for n, m in config["models"].items() if "gguf" in m]
TRAINED = (
    rf"(?:{_alt(config['rankers'])})/(?:{_alt(config['regularizers'])})/seed{SEED}"
)


wildcard_constraints:
    policy=_alt(config["policies"]),
    ranker=_alt(config["rankers"]),
    regularizer=_alt(config["regularizers"]),
    seed=SEED,
    benchmark=_alt(BENCHMARKS),
    model=rf"base|{TRAINED}"
    + (f"|{cells.EVALUATED}/(?:{_alt(EVALUATED_NAMES)})" if EVALUATED_NAMES else ""),
    dataset_file=r"prompts\.jsonl|alpaca_eval\.json|mt_bench(_judge_prompts|_references)?\.jsonl|downstream\.jsonl|(preferences|finetune)/[^/]+\.jsonl",
    tuned=_alt(TUNED) or NEVER,
    converted=_alt(CONVERTED) or NEVER,
    gguf_key=r"[A-Za-z0-9_-]+\.[0-9a-f]{16}" if CONVERTED else NEVER,
    pset=_alt(PREFERENCE_SETS) or "^$",
    ext=r"\.jsonl?",
    shard=r"[1-9]\d*",
    shards=r"[1-9]\d*",


def job_config(step, key, shared=False):
    """An input function: the job's resolved config file, written when first needed.

    The name holds a hash of the content (results/<run>/configs/<step>/<key>.<hash>.yaml; a job
    whose output all runs share: results/shared/configs/...), so a job reruns exactly when its own
    resolved config changes (Snakemake's input-set trigger, in a dry run too), and no file is ever
    rewritten. Writing here, not in a rule, spares the DAG a job per config.
    """

    def path(wc):
        k = key.format(**dict(wc.items()))
        written = jobs.write_job_config(
            jobs.resolve(config, step, k, PATHS),
            f"{SHARED_DIR if shared else RUN_DIR}/configs/{step}/{k}",
        )
        seen_to_exist(written)
        return written

    return path


def seen_to_exist(path):
    """Tell Snakemake's existence cache that ``path`` (written while the DAG is built) and
    its folders exist: a folder listed before the file was written would hide it, and the
    job reading it would stop with MissingInputException (two prepare_data targets)."""
    cache = getattr(workflow, "iocache", None)
    if cache is None:
        return
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        cache.exists_local["/".join(parts[:i])] = True


def converted_key(name):
    """The shared conversion of model ``name``'s GGUF file (harness.backends.convert.converted_key)."""
    from harness.backends.convert import converted_key as key

    return key(config["models"][name]["gguf"], name)


def built_models_input(names, tuned=True):
    """The tiny-model build output if any of ``names`` is built from code, the converted directory
    of each given as a GGUF file, and the fine-tuned model of each that has ``finetune``
    (``tuned=False``: only what it is fine-tuned from).
    """
    built = any("build" in config["models"][n] for n in names)
    out = [run_path("models/tiny")] if built else []
    out += [
        PATHS["converted_model"].format(name=n)
        for n in names
        if "gguf" in config["models"][n]
    ]
    if tuned:
        out += [
            PATHS["tuned_model"].format(name=n)
            for n in names
            if "finetune" in config["models"][n]
        ]
    return out


def source_input(source):
    """A local dataset file as an input (so edits trigger reruns); hub and URL sources have none."""
    return [source["path"]] if "path" in source else []


def judge_models(jcfg):
    return [jcfg["model"]] if loads_model(jcfg) else []


def ranker_models(ranker):
    r = config["rankers"][ranker]
    return judge_models(r["judge"]) if ranker_kind(r).pairwise else [r["model"]]


def eval_judge_models(benchmark):
    """Models the benchmark's judge loads here (none for an alpaca_eval annotator or an API judge)."""
    b = config["evaluation"][benchmark]
    return judge_models(b["judge"]) if "judge" in b else []


def judge_api(benchmark):
    """1 for a judge behind an API (alpaca_eval annotator, OpenAI-compatible endpoint), else 0."""
    b = config["evaluation"][benchmark]
    return int("annotator" in b or backends.spec(b["judge"]["backend"]).endpoint)


def ranker_api(ranker):
    r = config["rankers"][ranker]
    return int(
        ranker_kind(r).pairwise and backends.spec(r["judge"]["backend"]).endpoint
    )


# GPUs per job come from the config (harness/workflow/sizing.py), in every executor: 0 for models built from code,
# the oracle and API judges; a model's `gpus` otherwise. On SLURM, `site_resources` adds the site's
# account and partitions (profiles/slurm/site.yaml or HARNESS_SLURM_* variables, harness/workflow/site.py).
def evaluated_model(wc):
    """The model a generation or lm-eval job loads: the evaluated model, or the policy (trained or not)."""
    ranker, reg, _ = jobs.parse_model_key(wc.model)
    return reg if ranker == cells.EVALUATED else wc.policy


GPUS = {
    "model": lambda name: sizing.model_gpus(config, name),
    "eval": lambda wc: sizing.model_gpus(config, evaluated_model(wc)),
    "ranker": lambda wc: sizing.ranker_gpus(config, wc.ranker),
    "judge": lambda wc: sizing.eval_judge_gpus(config, wc.benchmark),
    "train": lambda wc: sizing.training_gpus(config, wc.policy),
}


def sized(gpus):
    """A rule's GPUs, host memory by GPU count and, on a SLURM site, where its job goes:
    ``resources: **sized(fn)`` with ``fn(wildcards) -> GPUs`` or a number."""
    count = gpus if callable(gpus) else (lambda wc: gpus)
    return {
        "gpu": count,
        "mem_mb": lambda wc: sizing.host_mem_mb(count(wc)),
        **site.resources(count, workflow),
    }


def train_batch(wc, resources):
    """How the effective batch is reached with the job's GPUs; stops the plan if it cannot be."""
    t = config["training"]
    return batch.describe(
        t["effective_batch_size"], t["per_device_train_batch_size"], resources.gpu
    )


def shard_paths(pattern, shards, **wildcards):
    """``pattern`` for shards 1..N (``{shard}-of-{shards}``), in merge order."""
    return [
        pattern.format(shard=i, shards=shards, **wildcards)
        for i in range(1, shards + 1)
    ]


def ranker_shards(ranker):
    return config["rankers"][ranker].get("shards", 1)


def rank_shards(kind):
    """Input function: the sharded ranking's files of one kind, in merge order."""
    pattern = (
        f"{RUN_DIR}/pairs/{{policy}}/{{ranker}}/shards/{{shard}}-of-{{shards}}.{kind}"
    )
    return lambda wc: shard_paths(
        pattern, ranker_shards(wc.ranker), policy=wc.policy, ranker=wc.ranker
    )


def answer_shards(kind):
    """Input function: the sharded generation's files of one kind, in merge order."""
    pattern = f"{RUN_DIR}/eval/{{policy}}/{{model}}/{{benchmark}}/shards/{{shard}}-of-{{shards}}/answers{{ext}}{kind}"
    return lambda wc: shard_paths(
        pattern, generation_shards(wc.benchmark), **dict(wc.items())
    )


def judge_extra_inputs(wc):
    """MT-Bench's judge also reads FastChat's judge prompts and reference answers."""
    if wc.benchmark != "mt_bench":
        return {}
    return {
        "judge_prompts": run_path("data/mt_bench_judge_prompts.jsonl"),
        "references": run_path("data/mt_bench_references.jsonl"),
    }


def cli_args(files):
    """``--name path`` for each named input file."""
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in files.items())


def lc_data_input(wc):
    """AlpacaEval's local df_gamed.csv, where config names one (so edits rerun the metrics)."""
    if wc.benchmark != "alpaca_eval":
        return []
    return source_input(config["evaluation"]["alpaca_eval"].get("lc_data", {}))


def metrics_extra_inputs(wc):
    """AlpacaEval metrics: the model's answers (alpaca_eval's avg_length) and, for ``lc_method: joint``
    (or ``auto`` resolved to it), the instruction difficulty fitted over every model of its reference.
    """
    if wc.benchmark != "alpaca_eval":
        return {}
    out = {"answers": f"{RUN_DIR}/eval/{wc.policy}/{wc.model}/alpaca_eval/answers.json"}
    if (
        lc_resolved(config, wc.policy) == "joint"
    ):  # fitted once, then kept: see GROUPS_TO_FIT
        out["difficulty"] = difficulty_file(lc_group(config, wc.policy))
    return out


def difficulty_file(group):
    return f"{RUN_DIR}/eval/difficulty/alpaca_eval/{group}.json"


# The joint LC difficulty is fitted once per reference group and then kept: once its file exists, no
# rule makes it (it is an input like a data file), so retraining a cell, adding a seed, a ranker or an
# evaluated model refits nothing and reruns no other cell's metrics, and every cell's LC uses the one
# fit. To refit it over the judgments as they are then: delete the file and run with
# `-R lc_difficulty` (every AlpacaEval metrics file reads it, so all of them follow).
GROUPS_TO_FIT = sorted(
    {
        lc_group(config, p)
        for p in config["policies"]
        if "alpaca_eval" in config["evaluation"]
        and not Path(difficulty_file(lc_group(config, p))).exists()
    }
)


def difficulty_judgments(wc):
    """The AlpacaEval judgments of every model judged against reference ``wc.group``."""
    return [
        f"{RUN_DIR}/eval/{m}/alpaca_eval/judgments.json"
        for m in lc_models(config, wc.group)
    ]


def judge_reference(wc):
    """What a model's answers are judged against: the eval set's reference outputs, or (AlpacaEval with
    ``reference: base``) the base policy's answers to the same instructions."""
    b = config["evaluation"][wc.benchmark]
    if wc.benchmark == "alpaca_eval" and b.get("reference") == "base":
        return f"{RUN_DIR}/eval/{wc.policy}/{jobs.BASE}/alpaca_eval/answers.json"
    return eval_set(wc.benchmark)


def eval_set(benchmark):
    return f"{RUN_DIR}/data/{benchmark}{ext_of(benchmark)}"


def main_regularizers():
    return config["main_table"]["regularizers"] or list(config["regularizers"])


def model_keys():
    """``base`` and every cell of the main table, as used in generations/ and eval/ paths."""
    return ["base"] + [
        f"{r}/{g}/seed{s}"
        for r in config["rankers"]
        for g in main_regularizers()
        for s in config["seeds"]
    ]


def budget_sweep_inputs():
    """Training summaries of every budget-sweep cell (partial grids from config, every seed), and
    their evaluation metrics where the sweep asks for them."""
    out = []
    for c in config["budget_sweep"]:
        for g in c["regularizers"]:
            for s in config["seeds"]:
                cell = f"{c['policy']}/{c['ranker']}/{g}/seed{s}"
                out.append(f"{RUN_DIR}/training/{cell}/summary.json")
                out += [
                    f"{RUN_DIR}/eval/{cell}/{b}/metrics.json"
                    for b in cells.benchmarks_of(config, c, "evaluate")
                ]
    return out


def baselines_inputs():
    """Metrics and training summaries of every baselines-table cell, and each policy's base metrics."""
    out, policies = [], []
    for c in config["baselines"]:
        policies.append(c["policy"])
        for g in c["regularizers"]:
            for s in config["seeds"]:
                cell = f"{c['policy']}/{c['ranker']}/{g}/seed{s}"
                out.append(f"{RUN_DIR}/training/{cell}/summary.json")
                out += [
                    f"{RUN_DIR}/eval/{cell}/{b}/metrics.json"
                    for b in cells.benchmarks_of(config, c, "benchmarks")
                ]
    for p in dict.fromkeys(policies):
        out += [f"{RUN_DIR}/eval/{p}/{jobs.BASE}/{b}/metrics.json" for b in BENCHMARKS]
    return out


def study_rankings():
    return [
        f"{RUN_DIR}/ranker_study/{p}/{r}/rankings.jsonl"
        for p in config["policies"]
        for r in config["rankers"]
    ]


def study_gold():
    return [
        f"{RUN_DIR}/ranker_study/gold/{r}/{s}.json"
        for r in config["rankers"]
        for s in PREFERENCE_SETS
    ]


def training_logs():
    return [
        f"{RUN_DIR}/training/{p}/{m}/train_log.jsonl"
        for p in config["policies"]
        for m in model_keys()
        if m != "base"
    ]


def main_table_inputs():
    out = []
    for p in config["policies"]:
        for m in model_keys():
            out += [f"{RUN_DIR}/eval/{p}/{m}/{b}/metrics.json" for b in BENCHMARKS]
            if m != "base":
                out.append(f"{RUN_DIR}/training/{p}/{m}/summary.json")
    return out


# `snakemake evaluate` with nothing to evaluate: one line, before any DAG is built
# (the targets are not known while the Snakefile is read: the command line's words are)
if not EVALUATED_ONLY and {"evaluate", "evaluated_table"} & set(sys.argv[1:]):
    sys.exit(
        "error: nothing to evaluate: name the model under `evaluate` in the config, or add --config "
        "\"evaluate={'mine': {'source': 'path/or/org/name', 'revision': '...'}}\" (README: Evaluate a model)"
    )


def evaluated_inputs():
    """Metrics of every model of `evaluate` on every benchmark, and of its policy's base."""
    keys = [(p, jobs.BASE) for p in dict.fromkeys(p for p, _ in EVALUATED_ONLY)]
    return [
        f"{RUN_DIR}/eval/{p}/{m}/{b}/metrics.json"
        for p, m in keys + EVALUATED_ONLY
        for b in BENCHMARKS
    ]


def landing_tables():
    """The tables the report's first screen shows, where config makes them."""
    out = [run_path("tables/main.md")]
    out += [run_path("tables/comparisons.md")] if config["comparisons"] else []
    out.append(run_path("tables/ranker_study.md"))
    out += [run_path("tables/baselines.md")] if config["baselines"] else []
    return out


def landing_figures():
    out = [run_path("figures/likelihood_trajectories.png")]
    out += [run_path("figures/comparisons.png")] if config["comparisons"] else []
    out += [run_path("figures/budget_sweep.png")] if config["budget_sweep"] else []
    out += (
        [run_path("figures/mt_bench_categories.png")]
        if "mt_bench" in config["evaluation"]
        else []
    )
    out += (
        [run_path("figures/downstream.png")]
        if "downstream" in config["evaluation"]
        else []
    )
    return out


def comparison_inputs():
    """The per-prompt files the comparisons resample: every main-table model's (and each base's)
    AlpacaEval and MT-Bench judgments and lm-eval per-sample results, the joint LC difficulty.
    """
    ext = {
        "alpaca_eval": "judgments.json",
        "mt_bench": "judgments.jsonl",
        "downstream": "samples.jsonl",
    }
    out = []
    for p in config["policies"]:
        for m in model_keys():
            out += [
                f"{RUN_DIR}/eval/{p}/{m}/{b}/{ext[b]}" for b in BENCHMARKS if b in ext
            ]
        if "alpaca_eval" in BENCHMARKS and lc_resolved(config, p) == "joint":
            out.append(difficulty_file(lc_group(config, p)))
    return list(dict.fromkeys(out))


def downstream_metrics():
    """Downstream (lm-eval) metrics of every model in the main table (none without it in config)."""
    return [
        f"{RUN_DIR}/eval/{p}/{m}/downstream/metrics.json"
        for p in config["policies"]
        for m in model_keys()
        if "downstream" in BENCHMARKS
    ]


def downstream_data(wc):
    """The prepared data file of the project's own lm-eval tasks, where config names one."""
    ds = config["evaluation"].get("downstream", {})
    return [run_path("data/downstream.jsonl")] if ds.get("data") else []


def mt_bench_metrics():
    """MT-Bench metrics of every model in the main table (none without MT-Bench in config)."""
    return [
        f"{RUN_DIR}/eval/{p}/{m}/mt_bench/metrics.json"
        for p in config["policies"]
        for m in model_keys()
        if "mt_bench" in BENCHMARKS
    ]


def upstream_jobs(wc):
    """Stage -> (benchmark TSV, output with provenance) of every job a metrics file depends on."""
    p, model, bench, ext = wc.policy, wc.model, wc.benchmark, ext_of(wc.benchmark)
    found = {}
    if model != "base" and not model.startswith(f"{cells.EVALUATED}/"):
        ranker, reg, _ = jobs.parse_model_key(model)
        found["sample"] = (
            "+".join(
                shard_paths(
                    f"{RUN_DIR}/benchmarks/sample/{p}/{{shard}}-of-{{shards}}.tsv",
                    SAMPLE_SHARDS,
                )
                if SAMPLE_SHARDS > 1
                else [f"{RUN_DIR}/benchmarks/sample/{p}.tsv"]
            ),
            f"{RUN_DIR}/completions/{p}/completions.meta.json",
        )
        n = ranker_shards(ranker)
        found["rank"] = (
            "+".join(
                shard_paths(
                    f"{RUN_DIR}/benchmarks/rank/{p}/{ranker}/{{shard}}-of-{{shards}}.tsv",
                    n,
                )
                if n > 1
                else [f"{RUN_DIR}/benchmarks/rank/{p}/{ranker}.tsv"]
            ),
            f"{RUN_DIR}/pairs/{p}/{ranker}/pairs.meta.json",
        )
        if objectives.needs_reference(config["regularizers"][reg]["kind"]):
            found["reference"] = (
                f"{RUN_DIR}/benchmarks/reference_logps/{p}/{ranker}.tsv",
                f"{RUN_DIR}/reference/{p}/{ranker}/ref_logps.json",
            )
        found["train"] = (
            f"{RUN_DIR}/benchmarks/train/{p}/{model}.tsv",
            f"{RUN_DIR}/training/{p}/{model}/summary.json",
        )
    eval_dir = f"{RUN_DIR}/eval/{p}/{model}/{bench}"
    n = generation_shards(bench)
    found["generate"] = (
        "+".join(
            shard_paths(
                f"{RUN_DIR}/benchmarks/generate/{p}/{model}/{bench}/{{shard}}-of-{{shards}}{ext}.tsv",
                n,
            )
            if n > 1
            else [f"{RUN_DIR}/benchmarks/generate/{p}/{model}/{bench}{ext}.tsv"]
        ),
        f"{eval_dir}/answers{ext}.meta.json",
    )
    found["judge"] = (
        f"{RUN_DIR}/benchmarks/judge/{p}/{model}/{bench}{ext}.tsv",
        f"{eval_dir}/judgments{ext}.meta.json",
    )
    return found


def pair_metas():
    return [
        f"{RUN_DIR}/pairs/{p}/{r}/pairs.meta.json"
        for p in config["policies"]
        for r in config["rankers"]
    ]


def cost_inputs():
    """Metrics of every evaluated cell: the main table's, the budget sweep's and the baselines'."""
    every = main_table_inputs() + budget_sweep_inputs() + baselines_inputs()
    return sorted({f for f in every if f.endswith("metrics.json")})


def checkpoint_input(wc):
    """The trained checkpoint a generation needs, or the built base policy (or evaluated model)."""
    if wc.model == "base":
        return built_models_input([wc.policy])
    ranker, reg, seed = jobs.parse_model_key(wc.model)
    if (
        ranker == cells.EVALUATED
    ):  # its GGUF conversion, or its folder (a checkpoint: made first)
        src = config["models"][reg].get("source")
        local = src and (Path(src).exists() or src.startswith(f"{RUN_DIR}/"))
        return built_models_input([reg]) + ([src] if local else [])
    return PATHS["checkpoint"].format(
        policy=wc.policy, ranker=ranker, regularizer=reg, seed=seed
    )


def reference_input(wc):
    """The reference log-probs a training cell reads: none for a reference-free objective, so that the
    DAG computes them only for pairs files some cell needs them for."""
    kind = config["regularizers"][wc.regularizer]["kind"]
    if not objectives.needs_reference(kind):
        return []
    return f"{RUN_DIR}/reference/{wc.policy}/{wc.ranker}/ref_logps.json"


def deepspeed_input():
    """The DeepSpeed config file, so that editing it reruns training."""
    ds = config["training"]["deepspeed"]
    return [ds] if ds else []


def run_harness(gpus, processes=False):
    """How a step starts: on GPUs, inside the slot wrapper (harness/core/gpus.py gives the job its own devices
    on a shared node); with ``processes``, one process per GPU under accelerate launch. A CPU job runs
    one thread (``OMP_NUM_THREADS``, unless the environment sets it): each job is one of the
    ``--cores`` slots, and torch's default of a thread per core made two 2-thread jobs on 2 cores
    take 3 times as long as two 1-thread ones.
    """
    n = int(gpus)
    if n == 0:
        return "OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} python"
    # --multi_gpu said, not left to accelerate's guess: it starts one process where it counts fewer
    # than 2 devices, or where a default accelerate config says otherwise (tests/test_multiprocess.py)
    python = (
        f"accelerate launch --multi_gpu --num_processes {n}"
        if processes and n > 1
        else "python"
    )
    return f"HARNESS_GPUS={n} python -m harness.core.gpus {n} -- {python}"


def ext_of(benchmark):
    """AlpacaEval files are JSON lists; MT-Bench files are FastChat JSONL."""
    return ".json" if benchmark == "alpaca_eval" else ".jsonl"


def check_ext(wc):
    if wc.ext != ext_of(wc.benchmark):
        raise ValueError(
            f"{wc.benchmark} files end in {ext_of(wc.benchmark)}, not {wc.ext}"
        )
    return []


onstart:
    # Before the first sbatch: the site's names must be filled in (harness/workflow/site.py).
    if workflow.executor_plugin.name == "slurm":
        try:
            site.check(workflow.basedir)
        except site.SiteError as e:
            raise SystemExit(str(e)) from None
        # jobs still queued here belong to a killed run, unless another run (another config's
        # results/<run>/, which Snakemake's lock lets run beside this one) is alive here
        here = Path(workflow.workdir_init)
        others = live_snakemake(here)
        if others:
            print(
                f"harness.workflow.locks: another Snakemake run is alive here (pid {others[0]}): "
                "its SLURM jobs are left alone",
                file=sys.stderr,
            )
        else:
            cancel_leftovers(here)
    elif config.get("warm_start") and workflow.executor_plugin.name == "local":
        # one process imports the heavy libraries once; each job's step is forked from it
        warm.start(
            log=Path(workflow.workdir_init) / RUN_DIR / "logs/warm_start.log"
        )


onsuccess:
    warm.stop()


onerror:
    warm.stop()
