"""The benchmarks, one entry each: what the workflow, the job configs, the tables and the comparisons
need to know of a benchmark. Every other module asks this registry (``get(name)``, ``BENCHMARKS``)
instead of testing a benchmark's name; the schema's ``evaluation`` keys equal its keys
(tests/test_layout.py). It is data (standard library only), so that every floor may read it, down to
the data preparation; the functions its hooks name are imported by the step that calls them.

A benchmark is judged (its model answers the eval set with ``generate``, a judge rates the answers
with ``judge``, ``metrics`` scores the ratings) or runs whole in one job (lm-eval's ``downstream``).
Its code is the modules its hooks name (``module:function``, imported when called, so that reading
the registry imports nothing heavy). Adding a benchmark: its module, its entry here, its schema block
under ``evaluation`` and, for one that is not judged, its rule (docs/extending.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str  # its column and figure heading
    # answered, judged and scored by generate -> judge -> metrics (else one job runs it whole)
    judged: bool = True
    ext: str = ".jsonl"  # of its answers and judgments: FastChat JSONL, or AlpacaEval's JSON lists
    prompts: str | None = None  # the config key of its eval set's source
    # prepared data files, data/<stem><ext>: stem -> (the config key of its source, its record format
    # in harness/data/prepare.py), the eval set first; those in ``json_data`` are one JSON document
    data: dict = field(default_factory=dict)
    json_data: tuple = ()
    # more inputs of its judge: the `judge` option -> the stem of a prepared data file
    judge_files: dict = field(default_factory=dict)
    per_prompt: str = ""  # its file of per-prompt results, which the paired comparisons resample
    # its columns of the main and baselines tables: key -> heading (in table order)
    columns: dict = field(default_factory=dict)
    sweep_columns: tuple = ()  # those the budget-sweep figure plots
    table_note: str = ""  # what the tables say of its numbers, where they show them
    figure: tuple | None = None  # (stem, title) of its own figure on the report's first screen
    length_controlled: bool = False  # AlpacaEval's LC: a difficulty fitted over the models (lc_method)
    turns: int = 1
    games: int = 1  # judge calls per answer and turn (Arena-Hard: both orders)
    rating: bool = False  # its judge grades each answer alone (1-10), rather than against a reference
    judge_prompts_in_data: bool = False  # its judge's prompts come from its data files, not a template
    generate_keys: tuple = ()  # its config keys the generation job also reads
    judge_keys: tuple = ()  # its config keys the judge job also reads
    metrics_files: tuple = ()  # what its metrics step reads beside the judgments: answers, judge files
    # what runs where the steps differ by benchmark -> "module:function": generate (its answers),
    # judge and metrics (the
    # step's files by option name), values (a metrics file's table columns), paired (the comparisons'
    # families of a benchmark's per-prompt files), compare_job and metrics_job (its own settings in
    # those job configs)
    hooks: dict = field(default_factory=dict)

    def hook(self, what: str):
        """The function of ``hooks[what]`` (its module imported now)."""
        if what not in self.hooks:
            raise ValueError(f"benchmark '{self.name}' has no {what} step (harness/core/benchmarks.py)")
        module, _, fn = self.hooks[what].partition(":")
        return getattr(importlib.import_module(module), fn)

    def data_file(self, stem: str) -> str:
        """A prepared data file's name under data/."""
        ext = self.ext if stem == self.name else ".json" if stem in self.json_data else ".jsonl"
        return f"{stem}{ext}"

    @property
    def eval_set(self) -> str:
        """The prepared eval set's file name under data/."""
        return self.data_file(self.name)


_ALPACA = "harness.evaluation.alpaca"
_MT = "harness.evaluation.mt_bench"
_DOWN = "harness.evaluation.downstream"
_AH = "harness.evaluation.arena_hard"

BENCHMARKS = {
    b.name: b
    for b in (
        Benchmark(
            "alpaca_eval",
            "AlpacaEval 2",
            ext=".json",
            prompts="instructions",
            data={"alpaca_eval": ("instructions", "alpaca_instructions")},
            per_prompt="judgments.json",
            metrics_files=("answers",),
            columns={
                "alpaca_eval_lc": "AlpacaEval LC (%)",
                "alpaca_eval_wr": "AlpacaEval WR (%)",
                "oracle_score": "Oracle score (0-100)",
            },
            sweep_columns=("alpaca_eval_lc", "oracle_score"),
            length_controlled=True,
            hooks={
                "generate": "harness.evaluation.generate:instruction_answers",
                "judge": f"{_ALPACA}:judge_step",
                "metrics": f"{_ALPACA}_metrics:metrics_step",
                "values": f"{_ALPACA}_metrics:table_values",
                "paired": f"{_ALPACA}_metrics:paired_cells",
                "compare_job": f"{_ALPACA}_metrics:compare_job",
                "metrics_job": "harness.evaluation.lc:metrics_job",
            },
        ),
        Benchmark(
            "mt_bench",
            "MT-Bench",
            prompts="questions",
            data={
                "mt_bench": ("questions", "fastchat_questions"),
                "mt_bench_judge_prompts": ("judge_prompts", "fastchat_judge_prompts"),
                "mt_bench_references": ("reference_answers", "fastchat_references"),
            },
            judge_files={"judge_prompts": "mt_bench_judge_prompts", "references": "mt_bench_references"},
            judge_prompts_in_data=True,
            per_prompt="judgments.jsonl",
            columns={"mt_bench": "MT-Bench (1-10)"},
            sweep_columns=("mt_bench",),
            figure=("mt_bench_categories", "MT-Bench per category"),
            turns=2,
            rating=True,
            generate_keys=("category_temperatures",),
            judge_keys=("ref_categories",),
            hooks={
                "generate": "harness.evaluation.generate:two_turn_answers",
                "judge": f"{_MT}:judge_step",
                "metrics": f"{_MT}:metrics_step",
                "values": f"{_MT}:table_values",
                "paired": f"{_MT}:paired_cells",
                "compare_job": f"{_MT}:compare_job",
                "metrics_job": f"{_MT}:metrics_job",
            },
        ),
        Benchmark(
            "arena_hard",
            "Arena-Hard",
            games=2,
            prompts="questions",
            data={
                "arena_hard": ("questions", "arena_hard_questions"),
                "arena_hard_baseline": ("baseline_answers", "arena_hard_answers"),
                "arena_hard_judge_settings": ("judge_settings", "arena_hard_judge_settings"),
            },
            json_data=("arena_hard_judge_settings",),
            judge_files={"baseline": "arena_hard_baseline", "judge_settings": "arena_hard_judge_settings"},
            judge_prompts_in_data=True,
            per_prompt="judgments.jsonl",
            columns={"arena_hard": "Arena-Hard (%)", "arena_hard_sc": "Arena-Hard, style controlled (%)"},
            table_note="Arena-Hard: win rate against its baseline model by Arena-Hard-Auto's rules (each "
            "question judged twice, a strong verdict 3 battles), and with length and markdown style "
            "controlled; one run's interval is its 90% bootstrap interval over battles, as the tool's.",
            sweep_columns=("arena_hard",),
            figure=("arena_hard_style", "Arena-Hard with and without style control"),
            generate_keys=("token_count",),
            judge_keys=("version", "oracle_strong_gap"),
            metrics_files=("answers", "baseline"),
            hooks={
                "generate": "harness.evaluation.generate:arena_answers",
                "judge": f"{_AH}_judge:judge_step",
                "metrics": f"{_AH}:metrics_step",
                "values": f"{_AH}:table_values",
                "paired": f"{_AH}:paired_cells",
                "compare_job": f"{_AH}:compare_job",
                "metrics_job": f"{_AH}:metrics_job",
            },
        ),
        Benchmark(
            "downstream",
            "Downstream tasks",
            judged=False,
            data={"downstream": ("data", "task_data")},
            per_prompt="samples.jsonl",
            figure=("downstream", "Downstream tasks"),
            hooks={
                "values": f"{_DOWN}:table_values",
                "paired": f"{_DOWN}:paired_cells",
                "compare_job": f"{_DOWN}:compare_job",
            },
        ),
    )
}


def get(name: str) -> Benchmark:
    """The registry entry of benchmark ``name``."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark '{name}'; valid: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def of(cfg: dict, judged: bool | None = None) -> list[Benchmark]:
    """The config's benchmarks (those judged or not, where ``judged`` is given), in config order."""
    return [get(n) for n in cfg["evaluation"] if judged in (None, get(n).judged)]


def length_controlled(cfg: dict) -> Benchmark | None:
    """The config's benchmark with a length-controlled win rate (AlpacaEval), if it has one."""
    return next((b for b in of(cfg) if b.length_controlled), None)


def data_format(kind: str) -> str:
    """The record format of a prepared data file of a benchmark (its stem, the prepare job's kind), or
    ``kind`` itself (prompts, preferences, demonstrations)."""
    formats = {stem: fmt for b in BENCHMARKS.values() for stem, (_, fmt) in b.data.items()}
    return formats.get(kind, kind)


def write_metrics(path: str, name: str, job: dict, metrics: dict, started: float) -> None:
    """A benchmark's metrics file: the benchmark, the cell, its metrics and their provenance."""
    from harness.core.io import write_json
    from harness.core.provenance import provenance

    prov = provenance(job, seed=job["cell"].get("seed"), started=started)
    write_json(path, {"benchmark": name, "cell": job["cell"], "metrics": metrics, "provenance": prov})


def data_stems() -> list[str]:
    """The stems of every benchmark's prepared data files (the prepare jobs' kinds)."""
    return [stem for b in BENCHMARKS.values() for stem in b.data]
