"""``python -m harness <step>``: one sub-command per pipeline step.

Every step takes ``--config`` (the resolved job config written by the workflow) and writes exactly the
paths it is given. Heavy libraries are imported inside each step, never at start-up. Each step is
declared once, in ``STEPS``: its name, help, arguments and the function it runs with which of them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from harness.evaluation.downstream import BENCHMARK as DOWNSTREAM  # its one step runs it whole


@dataclass(frozen=True)
class Step:
    """A sub-command: its help and arguments beside --config and --output, and what it runs:
    ``run`` names a function (``module:function``, imported when the step runs) called with ``call``,
    the names of its arguments in order (``job``: the resolved job config); or ``run`` is a function
    of ``(args, job)`` for a step that does more than one call."""

    name: str
    help: str
    arguments: tuple[tuple[str, dict], ...] = ()
    run: str | Callable = ""
    call: tuple[str, ...] = ("job", "output")
    config: bool = True  # takes --config (a resolved job config)
    output: bool = True  # takes --output

    def __call__(self, args, job) -> None:
        if callable(self.run):
            return self.run(args, job)
        module, _, fn = self.run.partition(":")
        values = {**vars(args), "job": job}
        return getattr(importlib.import_module(module), fn)(*(values[n] for n in self.call))


def arg(flag: str, help: str, **kw) -> tuple[str, dict]:
    return flag, {"help": help, **kw}


def need(flag: str, help: str, **kw) -> tuple[str, dict]:
    return arg(flag, help, required=True, **kw)


SHARD = arg("--shard", "i/N: only the i-th of N contiguous parts of the prompts (harness/core/shards.py)")
CACHE = arg("--cache", "judge-call cache (JSONL, kept across reruns)")
PAIRS = need("--pairs", "TRL prompt/chosen/rejected pairs (JSONL)")
CONFIGFILE = arg("--configfile", "experiment config (YAML)", default="config/config.yaml")
MD = need("--output-md", "the Markdown table")
BASELINE = arg("--baseline", "Arena-Hard: the baseline model's answers (JSONL)")
PDF = need("--output-pdf", "the same figure as PDF")
PNG_PDF = (need("--output-png", "the figure (PNG)"), PDF)


def _check_config(args, job) -> None:
    from harness.workflow.config import load_config

    load_config(args.path)
    print(f"{args.path}: valid")


def _prepare(args, job) -> None:
    from harness.data import prepare

    print(f"{args.output}: {prepare.run(job, args.output)} records")


def _judge(args, job) -> None:
    from harness.core.benchmarks import get

    bench = get(job["benchmark"])
    missing = [f"--{k.replace('_', '-')}" for k in bench.judge_files if not getattr(args, k)]
    if missing:
        raise ValueError(f"{bench.title} judging needs {' and '.join(missing)}")
    bench.hook("judge")(job, vars(args))


def _metrics(args, job) -> None:
    from harness.core.benchmarks import get

    get(job["benchmark"]).hook("metrics")(job, vars(args))


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


def _prefetch(args, job) -> None:
    from harness.workflow import prefetch
    from harness.workflow.config import load_config

    prefetch.run(load_config(args.configfile), args.list)


# ---- the steps, in pipeline order ----
STEPS = {s.name: s for s in (
    Step("check-config", "validate an experiment config against config/schema.yaml",
         (arg("path", "experiment config (YAML)"),), _check_config, config=False, output=False),
    Step("build-tiny-models", "build the demo's tiny Llama policy, reward model and judge with a trained BPE tokenizer",
         run="harness.demo.tiny:run"),
    Step("convert-gguf", "convert a model shipped as a GGUF file into a transformers directory (float32)",
         run="harness.backends.convert:run"),
    Step("link-model", "a run's copy of a shared converted model: its files as hard links (copies across file systems)",
         (need("--source", "the shared converted model (results/shared/models/gguf/<key>)"),),
         "harness.backends.convert:link_tree", ("source", "output"), config=False),
    Step("finetune", "train a model before the pipeline uses it: SFT on demonstrations or a Bradley-Terry reward model",
         (need("--data", "demonstrations (sft) or labelled preferences (reward), JSONL"),
          need("--summary", "loss per step and provenance (JSON)")),
         "harness.training.finetune:run", ("job", "data", "output", "summary")),
    Step("prepare-data", "bring prompts or an evaluation set into its local record format (file, hub or URL)",
         run=_prepare),
    Step("sample", "draw K completions per prompt from a policy",
         (need("--prompts", "prompts JSONL ({id, prompt})"), need("--meta", "counts and provenance (JSON)"), SHARD),
         "harness.data.sample:run", ("job", "prompts", "output", "meta", "shard")),
    Step("rank", "rank completions (reward model or iterative pairwise ranking) into preference pairs",
         (need("--completions", "completions JSONL from `sample`"),
          need("--judgments", "every score or comparison (JSONL)"),
          need("--meta", "counts and provenance (JSON)"),
          arg("--rankings", "also write each prompt's best-first order (JSONL)"), CACHE, SHARD),
         "harness.ranking.rank:run",
         ("job", "completions", "output", "judgments", "meta", "cache", "rankings", "shard")),
    Step("merge", "concatenate the shards of a sharded step into the file one job writes; sum their meta counts",
         (need("--inputs", "the shards' record files, in order", nargs="+"),
          arg("--metas", "the shards' meta files (JSON)", nargs="*", default=[]),
          arg("--meta", "the merged meta file")),
         "harness.core.shards:merge", ("inputs", "output", "metas", "meta"), config=False),
    Step("gold-accuracy", "a ranker's accuracy on a labelled preference set (ranker study)",
         (need("--preferences", "labelled preferences (JSONL)"), CACHE),
         "harness.ranking.study:gold_accuracy", ("job", "preferences", "output", "cache")),
    Step("study-table", "the ranker-study tables: agreement, flips, cycles, gold accuracy",
         (need("--rankings", "rankings.jsonl of every ranker", nargs="+"),
          arg("--gold", "gold-accuracy results (JSON)", nargs="+", default=[]), MD),
         "harness.ranking.study:table", ("job", "rankings", "gold", "output", "output_md")),
    Step("reference-logps", "the reference model's log-probs of every pair, once per pairs file", (PAIRS,),
         "harness.training.train:reference_logps", ("job", "pairs", "output")),
    Step("train", "train one preference objective on one pairs file (harness/training/objectives.py; TRL)",
         (PAIRS, need("--log", "per-step training log (JSONL)"),
          arg("--reference", "reference log-probs from `reference-logps` (else computed here where needed)"),
          need("--summary", "final log-likelihood changes and provenance (JSON)")),
         "harness.training.train:run", ("job", "pairs", "output", "log", "summary", "reference")),
    Step("generate", "answer an evaluation set (AlpacaEval instructions or MT-Bench questions)",
         (need("--eval-set", "AlpacaEval JSON or MT-Bench questions JSONL"),
          need("--meta", "empty and truncated answers, provenance (JSON)"), SHARD),
         "harness.evaluation.generate:run", ("job", "eval_set", "output", "meta", "shard")),
    Step("judge", "judge answers: pairwise against references (AlpacaEval) or 1-10 grading (MT-Bench)",
         (need("--eval-set", "references (AlpacaEval) or questions (MT-Bench)"),
          need("--answers", "the model's answers from `generate`"),
          need("--meta", "judge calls, cache hits, unparsable verdicts (JSON)"),
          arg("--judge-prompts", "MT-Bench: FastChat judge prompts (JSONL)"),
          arg("--references", "MT-Bench: FastChat reference answers (JSONL)"), BASELINE,
          arg("--judge-settings", "Arena-Hard: the judge's system prompts, template and verdict patterns (JSON)"), CACHE),
         _judge),
    Step("metrics", "win rates and length-controlled win rate (alpaca_eval), MT-Bench means",
         (need("--judgments", "annotations/judgments from `judge`"),
          arg("--eval-set", "MT-Bench questions (for per-category means)"),
          arg("--answers", "AlpacaEval: the model's outputs (avg_length); Arena-Hard: its answers (style)"),
          arg("--difficulty", "AlpacaEval: the output of `lc-difficulty` (lc_method: joint)"), BASELINE),
         _metrics),
    Step(DOWNSTREAM, "downstream task accuracy through lm-evaluation-harness (lm-eval's simple_evaluate)",
         (arg("--data", "the data file of the project's own lm-eval tasks"),
          need("--metrics", "the metrics file (JSON)"),
          arg("--samples", "also lm-eval's per-sample results, a row per document and metric (JSONL)")),
         "harness.evaluation.downstream:run", ("job", "data", "output", "metrics", "samples")),
    Step("lc-difficulty", "AlpacaEval instruction difficulty fitted jointly over many judged models (lc_method: joint)",
         (need("--eval-set", "AlpacaEval instructions (JSON)"),
          need("--judgments", "annotations of each model named in the job config, in order", nargs="+")),
         "harness.evaluation.lc:fit_difficulty", ("job", "eval_set", "judgments", "output")),
    Step("report", "a table of cells (the main table, the baselines) as CSV and Markdown",
         (need("--inputs", "metrics.json and summary.json files", nargs="+"), MD),
         "harness.reporting.report:run", ("job", "inputs", "output", "output_md")),
    Step("comparisons", "paired differences between cells with intervals, Holm p-values and MDE (CSV, Markdown, forest plot)",
         (need("--inputs", "per-prompt files: AlpacaEval and MT-Bench judgments, lm-eval samples, the LC difficulty",
               nargs="+"), MD, *PNG_PDF),
         "harness.reporting.compare:run", ("job", "inputs", "output", "output_md", "output_png", "output_pdf")),
    Step("landing", "the HTML report's first screen: the main, comparison and ranker tables and every figure with its caption",
         (need("--tables", "Markdown tables", nargs="+"), need("--figures", "PNG figures", nargs="+"),
          arg("--captions", "the folder of caption files (name.rst)", default="rules/captions")),
         "harness.reporting.landing:run", ("tables", "figures", "captions", "output"), config=False),
    Step("training-curves", "training curves: chosen and rejected log-likelihood change per step (PNG and PDF)",
         (need("--logs", "train_log.jsonl files", nargs="+"), PDF),
         "harness.reporting.figures:likelihood_trajectories", ("logs", "output", "output_pdf")),
    Step("mt-bench-categories", "MT-Bench means per category with confidence intervals (CSV, Markdown, PNG, PDF)",
         (need("--inputs", "MT-Bench metrics.json files", nargs="+"), MD, *PNG_PDF),
         "harness.reporting.report:mt_bench_categories",
         ("job", "inputs", "output", "output_md", "output_png", "output_pdf")),
    Step("arena-hard-style", "Arena-Hard scores with and without style control per cell (CSV, Markdown, PNG, PDF)",
         (need("--inputs", "Arena-Hard metrics.json files", nargs="+"), MD, *PNG_PDF),
         "harness.reporting.style:run", ("job", "inputs", "output", "output_md", "output_png", "output_pdf")),
    Step("downstream-figure", "change of downstream accuracy against the base policy per cell (PNG, PDF)",
         (need("--inputs", "downstream metrics.json files", nargs="+"), PDF),
         "harness.reporting.report:downstream_figure", ("job", "inputs", "output", "output_pdf")),
    Step("cost", "wall time, GPU-hours and CPU-hours per stage and per cell; judge calls per prompt",
         (arg("--pair-metas", "pairs.meta.json files (judge calls)", nargs="*", default=[]), MD),
         "harness.reporting.cost:table", ("job", "pair_metas", "output", "output_md")),
    Step("budget-sweep", "final chosen and rejected log-likelihood change against the budget delta (PNG, PDF, CSV)",
         (need("--inputs", "summary.json (and metrics.json) files of the sweep's cells", nargs="+"), PDF,
          need("--output-csv", "the sweep as a table")),
         "harness.reporting.figures:budget_sweep", ("inputs", "output", "output_pdf", "output_csv")),
    Step("plan", "jobs, prompts, judge calls, tokens, GPU-hours and API cost per stage, and jobs past their time limit",
         (CONFIGFILE,
          arg("--profile", "profile whose per-rule runtime limits apply", default="profiles/slurm/config.yaml"),
          arg("--workdir", "workflow directory whose finished outputs make counts exact", default="."),
          arg("--output", "also write the table here (Markdown)"),
          arg("--json", "also write the plan as JSON here"),
          arg("--readme", "rewrite the generated plan in this README (the plan before anything has run)")),
         _plan, config=False, output=False),
    Step("prefetch", "download every model, dataset and file a config names into the local caches (for offline jobs)",
         (CONFIGFILE, arg("--list", "print the assets, download nothing", action="store_true")),
         _prefetch, config=False, output=False),
)}  # fmt: skip


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
            sp.add_argument(
                "--config", required=True, help="resolved job config (results/<run>/configs/<kind>/...)"
            )
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
        s(args, None)
        return
    job = job_config(args.config)
    try:
        s(args, job)
    except KeyError as e:  # a hand-made or older job config lacking a setting this step reads
        if not (e.args and isinstance(e.args[0], str)):
            raise
        from harness.core.errors import ConfigError

        raise ConfigError(
            f"{args.config}: no setting '{e.args[0]}' where the {args.step} step reads one (a job config "
            "from another version of the harness? the workflow writes them anew; --debug shows where)"
        ) from e
