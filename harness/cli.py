"""``python -m harness <step>``: one sub-command per pipeline step.

Every step takes ``--config`` (the resolved job config written by the workflow) and writes exactly the
paths it is given. Heavy libraries are imported inside each step, never at start-up.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

STEPS = {
    "check-config": "validate an experiment config against config/schema.yaml",
    "build-tiny-models": "build the demo's tiny Llama policy, reward model and judge with a trained BPE tokenizer",
    "finetune": "train a model before the pipeline uses it: SFT on demonstrations or a Bradley-Terry reward model",
    "prepare-data": "bring prompts or an evaluation set into its local record format (file, hub or URL)",
    "sample": "draw K completions per prompt from a policy",
    "rank": "rank completions (reward model or iterative pairwise ranking) into preference pairs",
    "gold-accuracy": "a ranker's accuracy on a labelled preference set (ranker study)",
    "study-table": "the ranker-study tables: agreement, flips, cycles, gold accuracy",
    "reference-logps": "the reference model's log-probs of every pair, once per pairs file",
    "train": "DPO with no regularizer, NLL or budget-controlled regularization (TRL)",
    "generate": "answer an evaluation set (AlpacaEval instructions or MT-Bench questions)",
    "judge": "judge answers: pairwise against references (AlpacaEval) or 1-10 grading (MT-Bench)",
    "metrics": "win rates and length-controlled win rate (alpaca_eval), MT-Bench means",
    "downstream": "downstream task accuracy through lm-evaluation-harness (lm-eval's simple_evaluate)",
    "difficulty": "AlpacaEval instruction difficulty fitted jointly over many judged models (lc_method: joint)",
    "report": "the main table as CSV and Markdown",
    "figures": "training curves: chosen and rejected log-likelihood change per step (PNG and PDF)",
    "mt-bench-categories": "MT-Bench means per category with confidence intervals (CSV, Markdown, PNG, PDF)",
    "downstream-figure": "change of downstream accuracy against the base policy per cell (PNG, PDF)",
    "cost": "wall time, GPU-hours and CPU-hours per stage and per cell; judge calls per prompt",
    "budget-sweep": "final chosen and rejected log-likelihood change against the budget delta (PNG, PDF, CSV)",
    "merge": "concatenate the shards of a sharded step into the file one job writes; sum their meta counts",
    "plan": "jobs, prompts, judge calls, tokens, GPU-hours and API cost per stage, and jobs past their time limit",
    "prefetch": "download every model, dataset and file a config names into the local caches (for offline jobs)",
}
NO_CONFIG = ("check-config", "merge", "plan", "prefetch")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    p.add_argument(
        "--debug",
        action="store_true",
        help="raise expected failures with their traceback (also HARNESS_DEBUG=1); else one line each",
    )
    sub = p.add_subparsers(dest="step", required=True, metavar="STEP")
    subs = {name: sub.add_parser(name, help=text, description=text) for name, text in STEPS.items()}
    subs["check-config"].add_argument("path", help="experiment config (YAML)")
    for name, s in subs.items():
        if name not in NO_CONFIG:
            s.add_argument("--config", required=True, help="resolved job config (results/configs/...)")
        if name not in ("check-config", "plan", "prefetch"):
            s.add_argument("--output", required=True, help="the file or directory this step writes")
    subs["plan"].add_argument("--configfile", default="config/config.yaml", help="experiment config (YAML)")
    subs["plan"].add_argument(
        "--profile", default="profiles/slurm/config.yaml", help="profile whose per-rule runtime limits apply"
    )
    subs["plan"].add_argument(
        "--workdir", default=".", help="workflow directory whose finished outputs make counts exact"
    )
    subs["plan"].add_argument("--output", help="also write the table here (Markdown)")
    subs["plan"].add_argument("--json", help="also write the plan as JSON here")
    subs["prefetch"].add_argument(
        "--configfile", default="config/config.yaml", help="experiment config (YAML)"
    )
    subs["prefetch"].add_argument("--list", action="store_true", help="print the assets, download nothing")
    for name in ("sample", "rank", "generate"):
        subs[name].add_argument(
            "--shard", help="i/N: only the i-th of N contiguous parts of the prompts (harness/shards.py)"
        )
    subs["merge"].add_argument(
        "--inputs", nargs="+", required=True, help="the shards' record files, in order"
    )
    subs["merge"].add_argument("--metas", nargs="*", default=[], help="the shards' meta files (JSON)")
    subs["merge"].add_argument("--meta", help="the merged meta file")
    subs["finetune"].add_argument(
        "--data", required=True, help="demonstrations (sft) or labelled preferences (reward), JSONL"
    )
    subs["finetune"].add_argument("--summary", required=True, help="loss per step and provenance (JSON)")
    subs["sample"].add_argument("--prompts", required=True, help="prompts JSONL ({id, prompt})")
    subs["sample"].add_argument("--meta", required=True, help="counts and provenance (JSON)")
    subs["rank"].add_argument("--completions", required=True, help="completions JSONL from `sample`")
    subs["rank"].add_argument("--judgments", required=True, help="every score or comparison (JSONL)")
    subs["rank"].add_argument("--meta", required=True, help="counts and provenance (JSON)")
    subs["rank"].add_argument("--rankings", help="also write each prompt's best-first order (JSONL)")
    subs["gold-accuracy"].add_argument("--preferences", required=True, help="labelled preferences (JSONL)")
    subs["study-table"].add_argument(
        "--rankings", nargs="+", required=True, help="rankings.jsonl of every ranker"
    )
    subs["study-table"].add_argument("--gold", nargs="+", default=[], help="gold-accuracy results (JSON)")
    subs["study-table"].add_argument("--output-md", required=True, help="the Markdown tables")
    for name in ("rank", "judge", "gold-accuracy"):
        subs[name].add_argument("--cache", help="judge-call cache (JSONL, kept across reruns)")
    subs["train"].add_argument("--pairs", required=True, help="TRL prompt/chosen/rejected pairs (JSONL)")
    subs["train"].add_argument("--log", required=True, help="per-step training log (JSONL)")
    subs["train"].add_argument(
        "--reference", help="reference log-probs from `reference-logps` (else computed here)"
    )
    subs["reference-logps"].add_argument(
        "--pairs", required=True, help="TRL prompt/chosen/rejected pairs (JSONL)"
    )
    subs["train"].add_argument(
        "--summary", required=True, help="final log-likelihood changes and provenance (JSON)"
    )
    subs["generate"].add_argument(
        "--eval-set", required=True, help="AlpacaEval JSON or MT-Bench questions JSONL"
    )
    subs["generate"].add_argument(
        "--meta", required=True, help="empty and truncated answers, provenance (JSON)"
    )
    subs["judge"].add_argument(
        "--eval-set", required=True, help="references (AlpacaEval) or questions (MT-Bench)"
    )
    subs["judge"].add_argument("--answers", required=True, help="the model's answers from `generate`")
    subs["judge"].add_argument(
        "--meta", required=True, help="judge calls, cache hits, unparsable verdicts (JSON)"
    )
    subs["judge"].add_argument("--judge-prompts", help="MT-Bench: FastChat judge prompts (JSONL)")
    subs["judge"].add_argument("--references", help="MT-Bench: FastChat reference answers (JSONL)")
    subs["metrics"].add_argument("--judgments", required=True, help="annotations/judgments from `judge`")
    subs["metrics"].add_argument("--eval-set", help="MT-Bench questions (for per-category means)")
    subs["metrics"].add_argument("--answers", help="AlpacaEval: the model's outputs (for avg_length)")
    subs["metrics"].add_argument(
        "--difficulty", help="AlpacaEval: the output of `difficulty` (lc_method: joint)"
    )
    subs["difficulty"].add_argument("--eval-set", required=True, help="AlpacaEval instructions (JSON)")
    subs["downstream-figure"].add_argument(
        "--inputs", nargs="+", required=True, help="downstream metrics.json files"
    )
    subs["downstream-figure"].add_argument("--output-pdf", required=True, help="the figure as PDF")
    subs["downstream"].add_argument("--data", help="the data file of the project's own lm-eval tasks")
    subs["downstream"].add_argument("--metrics", required=True, help="the metrics file (JSON)")
    subs["difficulty"].add_argument(
        "--judgments",
        nargs="+",
        required=True,
        help="annotations of each model named in the job config, in order",
    )
    subs["metrics"].add_argument(
        "--upstream",
        nargs="*",
        default=[],
        help="stage=benchmark.tsv,output.json of each upstream job (cost)",
    )
    subs["cost"].add_argument("--metrics", nargs="+", required=True, help="metrics.json files")
    subs["cost"].add_argument(
        "--pair-metas", nargs="*", default=[], help="pairs.meta.json files (judge calls)"
    )
    subs["cost"].add_argument("--output-md", required=True, help="the Markdown tables")
    subs["report"].add_argument(
        "--inputs", nargs="+", required=True, help="metrics.json and summary.json files"
    )
    subs["report"].add_argument("--output-md", required=True, help="the Markdown table")
    subs["figures"].add_argument("--logs", nargs="+", required=True, help="train_log.jsonl files")
    subs["figures"].add_argument("--output-pdf", required=True, help="the same figure as PDF")
    subs["mt-bench-categories"].add_argument(
        "--inputs", nargs="+", required=True, help="MT-Bench metrics.json files"
    )
    for ext in ("md", "png", "pdf"):
        subs["mt-bench-categories"].add_argument(
            f"--output-{ext}", required=True, help=f"the {ext.upper()} output"
        )
    subs["budget-sweep"].add_argument(
        "--inputs",
        nargs="+",
        required=True,
        help="summary.json (and metrics.json) files of the sweep's cells",
    )
    subs["budget-sweep"].add_argument("--output-pdf", required=True, help="the same figure as PDF")
    subs["budget-sweep"].add_argument("--output-csv", required=True, help="the sweep as a table")
    return p


def main(argv: list[str] | None = None) -> None:
    """Run one step. An expected failure (harness.errors, a bad record or config, an OS error) prints
    one line, ``error: <place>: <what>``, and exits 1; ``--debug`` or ``HARNESS_DEBUG=1`` raises it
    with its traceback instead."""
    args = _parser().parse_args(argv)
    debug = args.debug or os.environ.get("HARNESS_DEBUG", "") not in ("", "0")
    level = logging.DEBUG if debug else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
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


def error_line(e: BaseException) -> str | None:
    """The one line for an expected failure, or None for a bug (which keeps its traceback)."""
    from harness.errors import HarnessError, os_error_line

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
    from harness.config import read_yaml

    return read_yaml(path)


def _step(args) -> None:
    if args.step == "check-config":
        from harness.config import load_config

        load_config(args.path)
        print(f"{args.path}: valid")
    elif args.step in ("plan", "prefetch"):
        _plan(args) if args.step == "plan" else _prefetch(args)
    elif args.step == "merge":
        from harness import shards

        shards.merge(args.inputs, args.output, args.metas, args.meta)
    else:
        job = job_config(args.config)
        try:
            _dispatch(args, job)
        except KeyError as e:  # a hand-made or older job config lacking a setting this step reads
            if not (e.args and isinstance(e.args[0], str)):
                raise
            from harness.config import ConfigError

            raise ConfigError(
                f"{args.config}: no setting '{e.args[0]}' where the {args.step} step reads one (a job config "
                "from another version of the harness? the workflow writes them anew; --debug shows where)"
            ) from e


def _prefetch(args) -> None:
    from harness import prefetch
    from harness.config import load_config

    prefetch.run(load_config(args.configfile), args.list)


def _plan(args) -> None:
    from pathlib import Path

    from harness import plan
    from harness.config import load_config
    from harness.io import write_json, write_text

    cfg = load_config(args.configfile)
    result = plan.plan(cfg, Path(args.workdir), plan.profile_limits(Path(args.profile)))
    text = plan.render(result, cfg.get("plan", {}))
    print(text, end="")
    if args.output:
        write_text(args.output, text)
    if args.json:
        write_json(args.json, result)


def _dispatch(args, job) -> None:
    step = args.step
    if step == "build-tiny-models":
        from harness import tiny

        tiny.run(job, args.output)
    elif step == "finetune":
        from harness import finetune

        finetune.run(job, args.data, args.output, args.summary)
    elif step == "prepare-data":
        from harness import data

        n = data.run(job, args.output)
        print(f"{args.output}: {n} records")
    elif step == "sample":
        from harness import sample

        sample.run(job, args.prompts, args.output, args.meta, args.shard)
    elif step == "rank":
        from harness import rank

        rank.run(
            job,
            args.completions,
            args.output,
            args.judgments,
            args.meta,
            args.cache,
            args.rankings,
            args.shard,
        )
    elif step == "train":
        from harness import train

        train.run(job, args.pairs, args.output, args.log, args.summary, args.reference)
    elif step == "reference-logps":
        from harness import train

        train.reference_logps(job, args.pairs, args.output)
    elif step == "generate":
        from harness import generate

        generate.run(job, args.eval_set, args.output, args.meta, args.shard)
    elif step == "judge" and job["benchmark"] == "alpaca_eval":
        from harness import alpaca

        alpaca.judge(job, args.eval_set, args.answers, args.output, args.meta, args.cache)
    elif step == "judge":
        from harness import mt_bench

        if not (args.judge_prompts and args.references):
            raise ValueError("MT-Bench judging needs --judge-prompts and --references")
        mt_bench.judge(
            job,
            args.eval_set,
            args.answers,
            args.output,
            args.meta,
            args.judge_prompts,
            args.references,
            args.cache,
        )
    elif step == "metrics" and job["benchmark"] == "alpaca_eval":
        from harness import alpaca_metrics

        alpaca_metrics.metrics(job, args.judgments, args.output, args.upstream, args.difficulty, args.answers)
    elif step == "downstream-figure":
        from harness import report

        report.downstream_figure(job, args.inputs, args.output, args.output_pdf)
    elif step == "downstream":
        from harness import downstream

        downstream.run(job, args.data, args.output, args.metrics)
    elif step == "difficulty":
        from harness import alpaca_metrics

        alpaca_metrics.fit_difficulty(job, args.eval_set, args.judgments, args.output)
    elif step == "metrics":
        from harness import mt_bench

        mt_bench.metrics(job, args.eval_set, args.judgments, args.output, args.upstream)
    elif step == "gold-accuracy":
        from harness import study

        study.gold_accuracy(job, args.preferences, args.output, args.cache)
    elif step == "study-table":
        from harness import study

        study.table(job, args.rankings, args.gold, args.output, args.output_md)
    elif step == "figures":
        from harness import figures

        figures.likelihood_trajectories(args.logs, args.output, args.output_pdf)
    elif step == "mt-bench-categories":
        from harness import report

        report.mt_bench_categories(
            job, args.inputs, args.output, args.output_md, args.output_png, args.output_pdf
        )
    elif step == "cost":
        from harness import cost

        cost.table(job, args.metrics, args.pair_metas, args.output, args.output_md)
    elif step == "budget-sweep":
        from harness import figures

        figures.budget_sweep(args.inputs, args.output, args.output_pdf, args.output_csv)
    elif step == "report":
        from harness import report

        report.run(job, args.inputs, args.output, args.output_md)
