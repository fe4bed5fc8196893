# What the rules share: the run's files (harness/workflow/targets.py computes every list from the
# path table of harness/workflow/paths.py), wildcard constraints, job configs, resources, how a step starts.
import shlex
import sys

from pathlib import Path

from harness import backends
from harness.ranking.kinds import kind as ranker_kind
from harness.training import batch
from harness.workflow import jobs, site, sizing, warm
from harness.workflow.locks import cancel_leftovers, live_snakemake
from harness.workflow.paths import NEVER, SHARD, alt, shard_paths, source_input
from harness.workflow.targets import Targets

# Every job runs this checkout's harness (`python -m harness`), in whatever environment it runs:
# the conda envs of envs/ hold the dependencies, this path the code.
# (The prefix is formatted like a shell command: doubled braces reach the shell as single ones; the
# checkout's path is quoted for the shell, so that a space or a `;` in it is only a character.)
BASEDIR_Q = shlex.quote(str(workflow.basedir)).replace("{", "{{").replace("}", "}}")
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={BASEDIR_Q}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
)

# The run's files: every path more than one rule or target names comes from T's path table.
T = Targets(config, RUN_DIR)
PATHS = T.paths


def run_path(path):
    """``path`` inside this run's folder, results/<run>/ (a wildcard pattern stays one)."""
    return f"{RUN_DIR}/{path}"


def shared_path(path):
    """``path`` inside the folder every run shares, results/shared/."""
    return f"{SHARED_DIR}/{path}"


def out(key, /, **values):
    """A path of the table (harness/workflow/paths.py: PATHS); the names not given stay wildcards."""
    return T.path(key, **values)


def timing(step, job):
    """A job's Snakemake benchmark file: its wall and CPU seconds (step `cost`)."""
    return T.path("timing", step=step, job=job)


CELL = "{ranker}/{regularizer}/seed{seed}"  # the model key of a trained cell
SAMPLE_SHARDS = config["sampling"].get("shards", 1)
# Reward-model and judge rankers run under separate rules, so that a profile sizes each (an 8B scorer
# on one GPU, a 70B-class judge on a multi-GPU node). A stage with `shards` > 1 runs as that many
# `*_shard` jobs and a merge job (harness/core/shards.py); the unsharded rule and the merge rule write
# the same file, so each takes the wildcard values of its case.
POLICIES = alt(config["policies"])
CONVERTED = [n for n, m in config["models"].items() if "gguf" in m]
# the joint LC difficulty: fitted once, then kept (harness/workflow/targets.py)
GROUPS_TO_FIT = T.groups_to_fit()


wildcard_constraints:
    policy=POLICIES,
    ranker=alt(config["rankers"]),
    regularizer=alt(config["regularizers"]),
    seed=r"\d+",
    benchmark=alt(T.benchmarks),
    model=T.model_constraint(),
    dataset_file=T.data_constraint(),
    tuned=alt(n for n, m in config["models"].items() if "finetune" in m) or NEVER,
    converted=alt(CONVERTED) or NEVER,
    gguf_key=r"[A-Za-z0-9_-]+\.[0-9a-f]{16}" if CONVERTED else NEVER,
    pset=alt(config["ranker_study"]["preference_sets"]) or "^$",
    ext=r"\.jsonl?",
    shard=r"[1-9]\d*",
    shards=r"[1-9]\d*",


def job_config(step, key, shared=False):
    """An input function: the job's resolved config file, written when first needed.

    The name holds a hash of the content (results/<run>/configs/<step>/<key>.<hash>.yaml, the step
    named as its rule; a job whose output all runs share: results/shared/configs/...), so a job reruns
    exactly when its own resolved config changes (Snakemake's input-set trigger, in a dry run too), and
    no file is ever rewritten. Writing here, not in a rule, spares the DAG a job per config.
    """

    def path(wc):
        k = key.format(**dict(wc.items()))
        kind, stem = jobs.config_stem(SHARED_DIR if shared else RUN_DIR, step, k)
        written = jobs.write_job_config(
            {**jobs.resolve(config, step, k, PATHS), "step": kind}, stem
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


def judge_api(benchmark):
    """1 for a judge behind an API (alpaca_eval annotator, OpenAI-compatible endpoint), else 0."""
    b = config["evaluation"][benchmark]
    return int("annotator" in b or backends.spec(b["judge"]["backend"]).endpoint)


def ranker_api(ranker):
    r = config["rankers"][ranker]
    return int(
        ranker_kind(r).pairwise and backends.spec(r["judge"]["backend"]).endpoint
    )


# GPUs per job come from the config (harness/workflow/sizing.py), in every executor: 0 for models
# built from code, the oracle and API judges; a model's `gpus` otherwise. On SLURM, `site.resources`
# adds the site's account and partitions (profiles/slurm/site.yaml or HARNESS_SLURM_* variables).
GPUS = {
    "model": lambda name: sizing.model_gpus(config, name),
    "eval": lambda wc: sizing.model_gpus(
        config, T.evaluated_model(wc.policy, wc.model)
    ),
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


def shards_of(pattern, count):
    """Input function: a sharded job's files (``pattern`` with SHARD), in merge order."""
    return lambda wc: shard_paths(pattern, count(wc), **dict(wc.items()))


def cli_args(files):
    """``--name path`` for each named input file."""
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in files.items())


def check_ext(wc):
    if wc.ext != T.ext(wc.benchmark):
        raise ValueError(
            f"{wc.benchmark} files end in {T.ext(wc.benchmark)}, not {wc.ext}"
        )
    return []


# `snakemake evaluate` with nothing to evaluate: one line, before any DAG is built
# (the targets are not known while the Snakefile is read: the command line's words are)
if not config.get("evaluate") and {"evaluate", "evaluated_table"} & set(sys.argv[1:]):
    sys.exit(
        "error: nothing to evaluate: name the model under `evaluate` in the config, or add --config "
        "\"evaluate={'mine': {'source': 'path/or/org/name', 'revision': '...'}}\" (README: Evaluate a model)"
    )


def run_harness(gpus, processes=False):
    """How a step starts: on GPUs, inside the slot wrapper (harness/core/gpus.py gives the job its own
    devices on a shared node); with ``processes``, one process per GPU under accelerate launch. A CPU
    job runs one thread (``OMP_NUM_THREADS``, unless the environment sets it): each job is one of the
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
