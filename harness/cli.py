"""``python -m harness <step>``: one sub-command per pipeline step.

Every step takes ``--config`` (the resolved job config written by the workflow) and writes exactly the
paths it is given. Heavy libraries are imported inside each step, never at start-up. Each step is
declared once, below: its name, help, arguments and what it runs (``@step``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from harness.evaluation.downstream import BENCHMARK as DOWNSTREAM  # its one step runs it whole


@dataclass(frozen=True)
class Step:
    help: str
    arguments: tuple[tuple[str, dict], ...]
    run: Callable  # run(args, job): job is the resolved job config, or None without --config
    config: bool = True  # takes --config (a resolved job config)
    output: bool = True  # takes --output


STEPS: dict[str, Step] = {}


def step(name: str, help: str, *arguments, config: bool = True, output: bool = True):
    """Declare a sub-command: its help, its arguments (``arg(...)``) beside --config and --output, and
    the function that runs it."""

    def register(fn):
        STEPS[name] = Step(help, arguments, fn, config, output)
        return fn

    return register


def arg(flag: str, help: str, **kw) -> tuple[str, dict]:
    return flag, {"help": help, **kw}


def need(flag: str, help: str, **kw) -> tuple[str, dict]:
    return arg(flag, help, required=True, **kw)


SHARD = arg("--shard", "i/N: only the i-th of N contiguous parts of the prompts (harness/core/shards.py)")
CACHE = arg("--cache", "judge-call cache (JSONL, kept across reruns)")
PAIRS = need("--pairs", "TRL prompt/chosen/rejected pairs (JSONL)")
CONFIGFILE = arg("--configfile", "experiment config (YAML)", default="config/config.yaml")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    p.add_argument(
        "--debug",
        action="store_true",
        help="raise expected failures with their traceback (also HARNESS_DEBUG=1); else one line each",
    )
    sub = p.add_subparsers(dest="step", required=True, metavar="STEP")
    for name, s in STEPS.items():
        sp = sub.add_parser(name, help=s.help, description=s.help)
        if s.config:
            sp.add_argument("--config", required=True, help="resolved job config (results/configs/...)")
        if s.output:
            sp.add_argument("--output", required=True, help="the file or directory this step writes")
        for flag, kw in s.arguments:
            sp.add_argument(flag, **kw)
    return p


def main(argv: list[str] | None = None) -> None:
    """Run one step. An expected failure (harness.core.errors, a bad record or config, an OS error) prints
    one line, ``error: <place>: <what>``, and exits 1; ``--debug`` or ``HARNESS_DEBUG=1`` raises it
    with its traceback instead."""
    from harness.core.progress import line_wise

    args = _parser().parse_args(argv)
    debug = args.debug or os.environ.get("HARNESS_DEBUG", "") not in ("", "0")
    level = logging.DEBUG if debug else logging.INFO
    lines = line_wise()  # a log file: progress bars as a line per half minute, not carriage-return spew
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    try:
        _step(args)
    except KeyboardInterrupt:
        if debug:
            raise
        sys.exit(f"error: {args.step}: interrupted; nothing it had not finished was written")
    except Exception as e:
        line = error_line(e)
        if line is None or debug:
            raise
        sys.exit(f"error: {line}")
    finally:
        if lines is not None:
            lines.finish()
            sys.stderr = lines.stream


def error_line(e: BaseException) -> str | None:
    """The one line for an expected failure, or None for a bug (which keeps its traceback)."""
    from harness.core.errors import HarnessError, os_error_line

    if isinstance(e, HarnessError | ValueError | FileNotFoundError):
        text = str(e) or type(e).__name__
    elif isinstance(e, OSError):
        text = os_error_line(e)
    elif type(e).__name__ == "OutOfMemoryError" or isinstance(e, MemoryError):  # torch.cuda's, or the host's
        where = "GPU" if type(e).__name__ == "OutOfMemoryError" else "host"
        first = (str(e).splitlines() or [""])[0][:200]
        text = (
            f"out of {where} memory ({first}); lower the step's batch size (batch_size, "
            "per_device_train_batch_size) or give the job more memory (its profile's mem_mb / GPUs)"
        )
    else:
        return None
    return " ".join(text.split("\n")).strip()


def job_config(path: str) -> dict:
    """The resolved job config a step runs from; a missing or broken one is named."""
    from harness.core.io import read_yaml

    return read_yaml(path)


def _step(args) -> None:
    s = STEPS[args.step]
    if not s.config:
        s.run(args, None)
        return
    job = job_config(args.config)
    try:
        s.run(args, job)
    except KeyError as e:  # a hand-made or older job config lacking a setting this step reads
        if not (e.args and isinstance(e.args[0], str)):
            raise
        from harness.core.errors import ConfigError

        raise ConfigError(
            f"{args.config}: no setting '{e.args[0]}' where the {args.step} step reads one (a job config "
            "from another version of the harness? the workflow writes them anew; --debug shows where)"
        ) from e


# ---- the steps, in pipeline order ----


@step("check-config", "validate an experiment config against config/schema.yaml",
      arg("path", "experiment config (YAML)"), config=False, output=False)  # fmt: skip
def _check_config(args, job) -> None:
    from harness.workflow.config import load_config

    load_config(args.path)
    print(f"{args.path}: valid")


@step(
    "build-tiny-models",
    "build the demo's tiny Llama policy, reward model and judge with a trained BPE tokenizer",
)
def _build_tiny(args, job) -> None:
    from harness.demo import tiny

    tiny.run(job, args.output)


@step("convert-gguf", "convert a model shipped as a GGUF file into a transformers directory (float32)")
def _convert_gguf(args, job) -> None:
    from harness.backends import convert

    convert.run(job, args.output)


@step("link-model", "a run's copy of a shared converted model: its files as hard links (copies across file systems)",
      need("--source", "the shared converted model (results/shared/models/gguf/<key>)"), config=False)  # fmt: skip
def _link_model(args, job) -> None:
    from harness.backends import convert

    convert.link_tree(args.source, args.output)


@step("finetune", "train a model before the pipeline uses it: SFT on demonstrations or a Bradley-Terry reward model",
      need("--data", "demonstrations (sft) or labelled preferences (reward), JSONL"),
      need("--summary", "loss per step and provenance (JSON)"))  # fmt: skip
def _finetune(args, job) -> None:
    from harness.training import finetune

    finetune.run(job, args.data, args.output, args.summary)


@step("prepare-data", "bring prompts or an evaluation set into its local record format (file, hub or URL)")
def _prepare(args, job) -> None:
    from harness.data import prepare as data

    n = data.run(job, args.output)
    print(f"{args.output}: {n} records")


@step("sample", "draw K completions per prompt from a policy",
      need("--prompts", "prompts JSONL ({id, prompt})"), need("--meta", "counts and provenance (JSON)"), SHARD)  # fmt: skip
def _sample(args, job) -> None:
    from harness.data import sample

    sample.run(job, args.prompts, args.output, args.meta, args.shard)


@step("rank", "rank completions (reward model or iterative pairwise ranking) into preference pairs",
      need("--completions", "completions JSONL from `sample`"),
      need("--judgments", "every score or comparison (JSONL)"),
      need("--meta", "counts and provenance (JSON)"),
      arg("--rankings", "also write each prompt's best-first order (JSONL)"), CACHE, SHARD)  # fmt: skip
def _rank(args, job) -> None:
    from harness.ranking import rank

    rank.run(
        job, args.completions, args.output, args.judgments, args.meta, args.cache, args.rankings, args.shard
    )


@step("merge", "concatenate the shards of a sharded step into the file one job writes; sum their meta counts",
      need("--inputs", "the shards' record files, in order", nargs="+"),
      arg("--metas", "the shards' meta files (JSON)", nargs="*", default=[]),
      arg("--meta", "the merged meta file"), config=False)  # fmt: skip
def _merge(args, job) -> None:
    from harness.core import shards

    shards.merge(args.inputs, args.output, args.metas, args.meta)


@step("gold-accuracy", "a ranker's accuracy on a labelled preference set (ranker study)",
      need("--preferences", "labelled preferences (JSONL)"), CACHE)  # fmt: skip
def _gold(args, job) -> None:
    from harness.ranking import study

    study.gold_accuracy(job, args.preferences, args.output, args.cache)


@step("study-table", "the ranker-study tables: agreement, flips, cycles, gold accuracy",
      need("--rankings", "rankings.jsonl of every ranker", nargs="+"),
      arg("--gold", "gold-accuracy results (JSON)", nargs="+", default=[]),
      need("--output-md", "the Markdown tables"))  # fmt: skip
def _study_table(args, job) -> None:
    from harness.ranking import study

    study.table(job, args.rankings, args.gold, args.output, args.output_md)


@step("reference-logps", "the reference model's log-probs of every pair, once per pairs file", PAIRS)
def _reference(args, job) -> None:
    from harness.training import train

    train.reference_logps(job, args.pairs, args.output)


@step("train", "train one preference objective on one pairs file (harness/training/objectives.py; TRL)",
      PAIRS, need("--log", "per-step training log (JSONL)"),
      arg("--reference", "reference log-probs from `reference-logps` (else computed here where needed)"),
      need("--summary", "final log-likelihood changes and provenance (JSON)"))  # fmt: skip
def _train(args, job) -> None:
    from harness.training import train

    train.run(job, args.pairs, args.output, args.log, args.summary, args.reference)


@step("generate", "answer an evaluation set (AlpacaEval instructions or MT-Bench questions)",
      need("--eval-set", "AlpacaEval JSON or MT-Bench questions JSONL"),
      need("--meta", "empty and truncated answers, provenance (JSON)"), SHARD)  # fmt: skip
def _generate(args, job) -> None:
    from harness.evaluation import generate

    generate.run(job, args.eval_set, args.output, args.meta, args.shard)


@step("judge", "judge answers: pairwise against references (AlpacaEval) or 1-10 grading (MT-Bench)",
      need("--eval-set", "references (AlpacaEval) or questions (MT-Bench)"),
      need("--answers", "the model's answers from `generate`"),
      need("--meta", "judge calls, cache hits, unparsable verdicts (JSON)"),
      arg("--judge-prompts", "MT-Bench: FastChat judge prompts (JSONL)"),
      arg("--references", "MT-Bench: FastChat reference answers (JSONL)"), CACHE)  # fmt: skip
def _judge(args, job) -> None:
    from harness.core.benchmarks import get

    bench = get(job["benchmark"])
    for key in bench.judge_files:
        if not getattr(args, key):
            raise ValueError(f"{bench.title} judging needs --{key.replace('_', '-')}")
    bench.hook("judge")(job, vars(args))


@step("metrics", "win rates and length-controlled win rate (alpaca_eval), MT-Bench means",
      need("--judgments", "annotations/judgments from `judge`"),
      arg("--eval-set", "MT-Bench questions (for per-category means)"),
      arg("--answers", "AlpacaEval: the model's outputs (for avg_length)"),
      arg("--difficulty", "AlpacaEval: the output of `difficulty` (lc_method: joint)"))  # fmt: skip
def _metrics(args, job) -> None:
    from harness.core.benchmarks import get

    get(job["benchmark"]).hook("metrics")(job, vars(args))


@step(DOWNSTREAM, "downstream task accuracy through lm-evaluation-harness (lm-eval's simple_evaluate)",
      arg("--data", "the data file of the project's own lm-eval tasks"),
      need("--metrics", "the metrics file (JSON)"),
      arg("--samples", "also lm-eval's per-sample results, a row per document and metric (JSONL)"))  # fmt: skip
def _downstream(args, job) -> None:
    from harness.evaluation import downstream

    downstream.run(job, args.data, args.output, args.metrics, args.samples)


@step("difficulty", "AlpacaEval instruction difficulty fitted jointly over many judged models (lc_method: joint)",
      need("--eval-set", "AlpacaEval instructions (JSON)"),
      need("--judgments", "annotations of each model named in the job config, in order", nargs="+"))  # fmt: skip
def _difficulty(args, job) -> None:
    from harness.evaluation import lc

    lc.fit_difficulty(job, args.eval_set, args.judgments, args.output)


@step("report", "a table of cells (the main table, the baselines) as CSV and Markdown",
      need("--inputs", "metrics.json and summary.json files", nargs="+"),
      need("--output-md", "the Markdown table"))  # fmt: skip
def _report(args, job) -> None:
    from harness.reporting import report

    report.run(job, args.inputs, args.output, args.output_md)


@step("compare", "paired differences between cells with intervals, Holm p-values and MDE (CSV, Markdown, forest plot)",
      need("--inputs", "per-prompt files: AlpacaEval and MT-Bench judgments, lm-eval samples, the LC difficulty", nargs="+"),
      *(need(f"--output-{ext}", f"the {ext.upper()} output") for ext in ("md", "png", "pdf")))  # fmt: skip
def _compare(args, job) -> None:
    from harness.reporting import compare

    compare.run(job, args.inputs, args.output, args.output_md, args.output_png, args.output_pdf)


@step("landing", "the HTML report's first screen: the main, comparison and ranker tables and every figure with its caption",
      need("--tables", "Markdown tables", nargs="+"), need("--figures", "PNG figures", nargs="+"),
      arg("--captions", "the folder of caption files (name.rst)", default="rules/captions"), config=False)  # fmt: skip
def _landing(args, job) -> None:
    from harness.reporting import landing

    landing.run(args.tables, args.figures, args.captions, args.output)


@step("figures", "training curves: chosen and rejected log-likelihood change per step (PNG and PDF)",
      need("--logs", "train_log.jsonl files", nargs="+"), need("--output-pdf", "the same figure as PDF"))  # fmt: skip
def _figures(args, job) -> None:
    from harness.reporting import figures

    figures.likelihood_trajectories(args.logs, args.output, args.output_pdf)


@step("mt-bench-categories", "MT-Bench means per category with confidence intervals (CSV, Markdown, PNG, PDF)",
      need("--inputs", "MT-Bench metrics.json files", nargs="+"),
      *(need(f"--output-{ext}", f"the {ext.upper()} output") for ext in ("md", "png", "pdf")))  # fmt: skip
def _mt_bench_categories(args, job) -> None:
    from harness.reporting import report

    report.mt_bench_categories(
        job, args.inputs, args.output, args.output_md, args.output_png, args.output_pdf
    )


@step("downstream-figure", "change of downstream accuracy against the base policy per cell (PNG, PDF)",
      need("--inputs", "downstream metrics.json files", nargs="+"), need("--output-pdf", "the figure as PDF"))  # fmt: skip
def _downstream_figure(args, job) -> None:
    from harness.reporting import report

    report.downstream_figure(job, args.inputs, args.output, args.output_pdf)


@step("cost", "wall time, GPU-hours and CPU-hours per stage and per cell; judge calls per prompt",
      arg("--pair-metas", "pairs.meta.json files (judge calls)", nargs="*", default=[]),
      need("--output-md", "the Markdown tables"))  # fmt: skip
def _cost(args, job) -> None:
    from harness.reporting import cost

    cost.table(job, args.pair_metas, args.output, args.output_md)


@step("budget-sweep", "final chosen and rejected log-likelihood change against the budget delta (PNG, PDF, CSV)",
      need("--inputs", "summary.json (and metrics.json) files of the sweep's cells", nargs="+"),
      need("--output-pdf", "the same figure as PDF"), need("--output-csv", "the sweep as a table"))  # fmt: skip
def _budget_sweep(args, job) -> None:
    from harness.reporting import figures

    figures.budget_sweep(args.inputs, args.output, args.output_pdf, args.output_csv)


@step("plan", "jobs, prompts, judge calls, tokens, GPU-hours and API cost per stage, and jobs past their time limit",
      CONFIGFILE,
      arg("--profile", "profile whose per-rule runtime limits apply", default="profiles/slurm/config.yaml"),
      arg("--workdir", "workflow directory whose finished outputs make counts exact", default="."),
      arg("--output", "also write the table here (Markdown)"),
      arg("--json", "also write the plan as JSON here"),
      arg("--readme", "rewrite the generated plan in this README (the plan before anything has run)"),
      config=False, output=False)  # fmt: skip
def _plan(args, job) -> None:
    from pathlib import Path

    from harness.core.io import write_json, write_text
    from harness.workflow import plan
    from harness.workflow.config import load_config

    cfg = load_config(args.configfile)
    result = plan.plan(cfg, Path(args.workdir), plan.profile_limits(Path(args.profile)))
    text = plan.render(result, cfg.get("plan", {}))
    print(text, end="")
    if args.output:
        write_text(args.output, text)
    if args.json:
        write_json(args.json, result)
    if args.readme:  # counted before the run: the same numbers on every machine
        before = plan.plan(cfg, Path("/nonexistent"), plan.profile_limits(Path(args.profile)))
        changed = plan.update_readme(
            Path(args.readme), plan.summary(plan.render(before, cfg.get("plan", {})))
        )
        print(f"{args.readme}: {'plan updated' if changed else 'plan unchanged'}", file=sys.stderr)


@step("prefetch", "download every model, dataset and file a config names into the local caches (for offline jobs)",
      CONFIGFILE, arg("--list", "print the assets, download nothing", action="store_true"),
      config=False, output=False)  # fmt: skip
def _prefetch(args, job) -> None:
    from harness.workflow import prefetch
    from harness.workflow.config import load_config

    prefetch.run(load_config(args.configfile), args.list)
