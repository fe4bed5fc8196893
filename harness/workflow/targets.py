"""What the workflow's rules write and read, computed from the config without Snakemake: the path
table, the files every named target gathers, and what each input function names.

The paths come from the one path table (harness/workflow/paths.py), through which the rules also
write their outputs (rules/common.smk's ``out`` and ``timing``); rules/common.smk makes one ``Targets``
per run. Step `cost` is given the benchmark files and
outputs of the jobs behind every evaluation from here (tests/test_demo_e2e.py checks that each exists).
"""

from __future__ import annotations

from pathlib import Path

from harness.backends import loads_model
from harness.core import benchmarks, cells
from harness.core.cells import BASE, EVALUATED, ModelKey
from harness.ranking.kinds import kind as ranker_kind
from harness.training import objectives
from harness.workflow.paths import NEVER, SHARD, alt, fill, run_paths, shard_paths, source_input


class Targets:
    """The files of one run of one config (results/<run>/)."""

    def __init__(self, cfg: dict, run_dir: str):
        self.cfg, self.run_dir = cfg, run_dir
        self.paths = run_paths(run_dir)
        self.benchmarks = [b.name for b in benchmarks.of(cfg)]
        self.judged = [b.name for b in benchmarks.of(cfg, judged=True)]
        self.lc = benchmarks.length_controlled(cfg)

    def path(self, key: str, /, **values) -> str:
        """The table's path ``key`` with ``values`` put in (the names not given stay wildcards)."""
        return fill(self.paths[key], **values)

    # ---- wildcard constraints ----

    def rankers_where(self, pairwise=None, sharded=None) -> str:
        """The rankers that are (not) pairwise (either) and (not) sharded (either)."""
        names = [
            r
            for r, c in self.cfg["rankers"].items()
            if pairwise in (None, ranker_kind(c).pairwise) and sharded in (None, c.get("shards", 1) > 1)
        ]
        return alt(names) or NEVER

    def generation_shards(self, bench: str) -> int:
        return self.cfg["evaluation"][bench].get("generation", {}).get("shards", 1)

    def ranker_shards(self, ranker: str) -> int:
        return self.cfg["rankers"][ranker].get("shards", 1)

    def judged_where(self, sharded: bool | None = None) -> str:
        """The judged benchmarks whose generation is (not) sharded (either)."""
        names = [b for b in self.judged if sharded in (None, self.generation_shards(b) > 1)]
        return alt(names) or NEVER

    def model_constraint(self) -> str:
        """Every model key: base, a trained cell, a model evaluated without training."""
        c = self.cfg
        trained = rf"(?:{alt(c['rankers'])})/(?:{alt(c['regularizers'])})/seed\d+"
        names = [ModelKey.parse(m).regularizer for _, m in cells.evaluated_only(c)]
        return rf"{BASE}|{trained}" + (f"|{EVALUATED}/(?:{alt(names)})" if names else "")

    def data_constraint(self) -> str:
        """Every prepared data file (``data/<file>``)."""
        files = ["prompts.jsonl"] + [b.data_file(s) for b in benchmarks.BENCHMARKS.values() for s in b.data]
        return alt(files) + r"|(preferences|finetune)/[^/]+\.jsonl"

    # ---- models ----

    def built_models(self, names, tuned: bool = True) -> list[str]:
        """The tiny-model build output if any of ``names`` is built from code, the converted directory
        of each given as a GGUF file, and the fine-tuned model of each that has ``finetune``
        (``tuned=False``: only what it is fine-tuned from)."""
        models = self.cfg["models"]
        out = [self.paths["built_models"]] if any("build" in models[n] for n in names) else []
        out += [self.path("converted_model", name=n) for n in names if "gguf" in models[n]]
        if tuned:
            out += [self.path("tuned_model", name=n) for n in names if "finetune" in models[n]]
        return out

    def ranker_models(self, ranker: str) -> list[str]:
        r = self.cfg["rankers"][ranker]
        if not ranker_kind(r).pairwise:
            return [r["model"]]
        return [r["judge"]["model"]] if loads_model(r["judge"]) else []

    def eval_judge_models(self, bench: str) -> list[str]:
        """Models the benchmark's judge loads here (none for an alpaca_eval annotator or an API judge)."""
        b = self.cfg["evaluation"][bench]
        return [b["judge"]["model"]] if "judge" in b and loads_model(b["judge"]) else []

    def evaluated_model(self, policy: str, model: str) -> str:
        """The model a generation or lm-eval job loads: the evaluated model, or the policy."""
        key = ModelKey.parse(model)
        return key.regularizer if key.ranker == EVALUATED else policy

    def checkpoint(self, policy: str, model: str) -> list[str] | str:
        """The trained checkpoint a generation needs, or the built base policy (or evaluated model)."""
        key = ModelKey.parse(model)
        if key.ranker == BASE:
            return self.built_models([policy])
        if key.ranker == EVALUATED:  # its GGUF conversion, or its folder (a checkpoint: made first)
            src = self.cfg["models"][key.regularizer].get("source")
            local = src and (Path(src).exists() or src.startswith(f"{self.run_dir}/"))
            return self.built_models([key.regularizer]) + ([src] if local else [])
        return self.path(
            "checkpoint", policy=policy, ranker=key.ranker, regularizer=key.regularizer, seed=key.seed
        )

    def reference(self, policy: str, ranker: str, regularizer: str) -> str | None:
        """The reference log-probs a training cell reads: none for a reference-free objective, so that
        the DAG computes them only for pairs files some cell needs them for."""
        if not objectives.needs_reference(self.cfg["regularizers"][regularizer]["kind"]):
            return None
        return self.path("ref_logps", policy=policy, ranker=ranker)

    # ---- evaluation ----

    def eval_file(self, policy: str, model: str, bench: str, file: str) -> str:
        return self.path("eval", policy=policy, model=model, benchmark=bench, file=file)

    def ext(self, bench: str) -> str:
        return benchmarks.get(bench).ext

    def eval_set(self, bench: str) -> str:
        return self.path("data", file=benchmarks.get(bench).eval_set)

    def judge_files(self, bench: str) -> dict:
        """The judge's other inputs by option name (MT-Bench: FastChat's judge prompts, references)."""
        b = benchmarks.get(bench)
        return {k: self.path("data", file=b.data_file(stem)) for k, stem in b.judge_files.items()}

    def judge_reference(self, policy: str, bench: str) -> str:
        """What answers are judged against: the eval set's reference outputs, or (``reference: base``)
        the base policy's answers to the same instructions."""
        if self.cfg["evaluation"][bench].get("reference") == "base":
            return self.eval_file(policy, BASE, bench, f"answers{self.ext(bench)}")
        return self.eval_set(bench)

    def lc_data(self, bench: str) -> list[str]:
        """A local df_gamed.csv (AlpacaEval's official LC), where config names one."""
        if not benchmarks.get(bench).length_controlled:
            return []
        return source_input(self.cfg["evaluation"][bench].get("lc_data", {}))

    def lc_joint(self, policy: str) -> bool:
        from harness.evaluation.lc import lc_resolved

        return self.lc is not None and lc_resolved(self.cfg, policy) == "joint"

    def lc_group(self, policy: str) -> str:
        from harness.evaluation.lc import lc_group

        return lc_group(self.cfg, policy)

    def difficulty(self, group: str) -> str:
        return self.path("difficulty", benchmark=self.lc.name, group=group)

    def metrics_files(self, policy: str, model: str, bench: str) -> dict:
        """What a benchmark's metrics read beside the judgments (its registry entry's ``metrics_files``:
        AlpacaEval the answers, for alpaca_eval's avg_length; Arena-Hard the answers and the baseline's,
        for their style) and, for a joint LC, the difficulty fitted over every model of its reference."""
        b = benchmarks.get(bench)
        out = {k: self.judge_files(bench)[k] for k in b.metrics_files if k in b.judge_files}
        if "answers" in b.metrics_files:
            out["answers"] = self.eval_file(policy, model, bench, f"answers{self.ext(bench)}")
        if b.length_controlled and self.lc_joint(policy):  # fitted once, then kept: see groups_to_fit
            out["difficulty"] = self.difficulty(self.lc_group(policy))
        return out

    def groups_to_fit(self) -> list[str]:
        """The joint LC difficulty is fitted once per reference group and then kept: once its file
        exists, no rule makes it, so retraining a cell or adding a model refits nothing and reruns no
        other cell's metrics. To refit: delete the file and run with `-R lc_difficulty`."""
        if self.lc is None:
            return []
        groups = {self.lc_group(p) for p in self.cfg["policies"]}
        return sorted(g for g in groups if not Path(self.difficulty(g)).exists())

    def difficulty_judgments(self, group: str) -> list[str]:
        """The judgments of every model judged against reference ``group``."""
        from harness.evaluation.lc import lc_models

        ext = self.ext(self.lc.name)
        return [
            self.eval_file(*m.split("/", 1), self.lc.name, f"judgments{ext}")
            for m in lc_models(self.cfg, group)
        ]

    def downstream_data(self, bench: str) -> list[str]:
        """The prepared data file of the project's own lm-eval tasks, where config names one."""
        b = benchmarks.get(bench)
        return [self.path("data", file=b.eval_set)] if self.cfg["evaluation"][bench].get("data") else []

    # ---- the tables' cells ----

    def main_regularizers(self) -> list[str]:
        return self.cfg["main_table"]["regularizers"] or list(self.cfg["regularizers"])

    def model_keys(self) -> list[str]:
        """``base`` and every cell of the main table, as used in eval/ and training/ paths."""
        c = self.cfg
        return [BASE] + [
            ModelKey.cell(r, g, s) for r in c["rankers"] for g in self.main_regularizers() for s in c["seeds"]
        ]

    def _entry_cells(self, entries: list, key: str) -> list[str]:
        """Training summaries and metrics of every cell of budget-sweep or baselines entries."""
        out = []
        for e in entries:
            for g in e["regularizers"]:
                for s in self.cfg["seeds"]:
                    model = ModelKey.cell(e["ranker"], g, s)
                    out.append(self.path("training", policy=e["policy"], model=model, file="summary.json"))
                    out += [
                        self.eval_file(e["policy"], model, b, "metrics.json")
                        for b in cells.benchmarks_of(self.cfg, e, key)
                    ]
        return out

    def budget_sweep(self) -> list[str]:
        """Training summaries of every budget-sweep cell, and their metrics where the sweep asks."""
        return self._entry_cells(self.cfg["budget_sweep"], "evaluate")

    def baselines(self) -> list[str]:
        """Metrics and summaries of every baselines-table cell, and each policy's base metrics."""
        out = self._entry_cells(self.cfg["baselines"], "benchmarks")
        for p in dict.fromkeys(e["policy"] for e in self.cfg["baselines"]):
            out += [self.eval_file(p, BASE, b, "metrics.json") for b in self.benchmarks]
        return out

    def main_table(self) -> list[str]:
        out = []
        for p in self.cfg["policies"]:
            for m in self.model_keys():
                out += [self.eval_file(p, m, b, "metrics.json") for b in self.benchmarks]
                if m != BASE:
                    out.append(self.path("training", policy=p, model=m, file="summary.json"))
        return out

    def evaluated(self) -> list[str]:
        """Metrics of every model of `evaluate` on every benchmark, and of its policy's base."""
        only = cells.evaluated_only(self.cfg)
        keys = [(p, BASE) for p in dict.fromkeys(p for p, _ in only)]
        return [self.eval_file(p, m, b, "metrics.json") for p, m in keys + only for b in self.benchmarks]

    def benchmark_metrics(self, bench: str) -> list[str]:
        """One benchmark's metrics of every main-table model (none without it in config)."""
        if bench not in self.benchmarks:
            return []
        return [
            self.eval_file(p, m, bench, "metrics.json")
            for p in self.cfg["policies"]
            for m in self.model_keys()
        ]

    def training_logs(self) -> list[str]:
        return [
            self.path("training", policy=p, model=m, file="train_log.jsonl")
            for p in self.cfg["policies"]
            for m in self.model_keys()
            if m != BASE
        ]

    def _each_ranking(self, key: str, file: str) -> list[str]:
        c = self.cfg
        return [self.path(key, policy=p, ranker=r, file=file) for p in c["policies"] for r in c["rankers"]]

    def study_rankings(self) -> list[str]:
        return self._each_ranking("study", "rankings.jsonl")

    def study_gold(self) -> list[str]:
        psets = self.cfg["ranker_study"]["preference_sets"]
        return [self.path("gold", ranker=r, pset=s) for r in self.cfg["rankers"] for s in psets]

    def pair_metas(self) -> list[str]:
        return self._each_ranking("pairs", "pairs.meta.json")

    def comparison_files(self) -> tuple[dict, dict]:
        """The per-prompt files the comparisons resample, {benchmark: [[policy, model, path], ...]} of
        every main-table model (and each base), and {group: path} of the joint LC difficulties."""
        files: dict = {}
        difficulty = {}
        for p in self.cfg["policies"]:
            for m in self.model_keys():
                for b in self.benchmarks:
                    files.setdefault(b, []).append(
                        [p, m, self.eval_file(p, m, b, benchmarks.get(b).per_prompt)]
                    )
            if self.lc_joint(p):
                difficulty[self.lc_group(p)] = self.difficulty(self.lc_group(p))
        return files, difficulty

    def comparison_inputs(self) -> list[str]:
        files, difficulty = self.comparison_files()
        out = [path for entries in files.values() for *_, path in entries] + list(difficulty.values())
        return list(dict.fromkeys(out))

    def landing_tables(self) -> list[str]:
        """The tables the report's first screen shows, where config makes them."""
        c = self.cfg
        names = ["main", *(["comparisons"] if c["comparisons"] else []), "ranker_study"]
        names += ["baselines"] if c["baselines"] else []
        return [self.path("table", name=f"{n}.md") for n in names]

    def landing_figures(self) -> list[str]:
        c = self.cfg
        names = ["likelihood_trajectories", *(["comparisons"] if c["comparisons"] else [])]
        names += ["budget_sweep"] if c["budget_sweep"] else []
        names += [
            b.figure[0] for b in benchmarks.BENCHMARKS.values() if b.figure and b.name in c["evaluation"]
        ]
        return [self.path("figure", name=f"{n}.png") for n in names]

    # ---- cost ----

    def timing(self, step: str, job: str, shards: int = 1, ext: str = "") -> str:
        """The benchmark file of a job (``ext``: the ending of a generation's files, part of its key);
        a sharded job's, one per shard joined by ``+`` (harness/core/timing.py)."""
        if shards == 1:
            return self.path("timing", step=step, job=f"{job}{ext}")
        return "+".join(shard_paths(self.path("timing", step=step, job=f"{job}/{SHARD}{ext}"), shards))

    def upstream_jobs(self, policy: str, model: str, bench: str) -> dict:
        """Stage -> [benchmark TSV(s), output with provenance] of every job behind a metrics file."""
        found = {}
        key = ModelKey.parse(model)
        if key.trained:
            ranker, reg = key.ranker, key.regularizer
            found["sample"] = [
                self.timing("sample", policy, self.cfg["sampling"].get("shards", 1)),
                self.path("completions", policy=policy, file="completions.meta.json"),
            ]
            found["rank"] = [
                self.timing("rank", f"{policy}/{ranker}", self.ranker_shards(ranker)),
                self.path("pairs", policy=policy, ranker=ranker, file="pairs.meta.json"),
            ]
            if self.reference(policy, ranker, reg):
                found["reference"] = [
                    self.timing("reference_logps", f"{policy}/{ranker}"),
                    self.path("ref_logps", policy=policy, ranker=ranker),
                ]
            found["train"] = [
                self.timing("train", f"{policy}/{model}"),
                self.path("training", policy=policy, model=model, file="summary.json"),
            ]
        ext, job = self.ext(bench), f"{policy}/{model}/{bench}"
        found["generate"] = [
            self.timing("generate", job, self.generation_shards(bench), ext),
            self.eval_file(policy, model, bench, f"answers{ext}.meta.json"),
        ]
        found["judge"] = [
            self.timing("judge", job, ext=ext),
            self.eval_file(policy, model, bench, f"judgments{ext}.meta.json"),
        ]
        return found

    def evaluations(self) -> list[tuple[str, str, str]]:
        """(policy, model key, benchmark) of every evaluation a table shows: the main table's, the
        budget sweep's and the baselines table's, each once."""
        c, out = self.cfg, []
        for p in c["policies"]:
            out += [(p, m, b) for m in self.model_keys() for b in self.benchmarks]
        for entries, key in ((c["budget_sweep"], "evaluate"), (c["baselines"], "benchmarks")):
            for e in entries:
                models = [ModelKey.cell(e["ranker"], g, s) for g in e["regularizers"] for s in c["seeds"]]
                out += [(e["policy"], m, b) for m in models for b in cells.benchmarks_of(c, e, key)]
            if key == "benchmarks":
                out += [
                    (p, BASE, b) for p in dict.fromkeys(e["policy"] for e in entries) for b in self.benchmarks
                ]
        return list(dict.fromkeys(out))

    def cost_jobs(self) -> list[dict]:
        """Every evaluation's cell and the jobs behind it (those of a judged benchmark: lm-eval's one
        job is not counted), for step `cost`."""
        out = []
        for p, m, b in self.evaluations():
            if b in self.judged:
                key = ModelKey.parse(m)
                seed = self.cfg["sampling"]["seed"] if key.seed is None else key.seed  # as its metrics' cell
                cell = {"policy": p, "ranker": key.ranker, "regularizer": key.regularizer, "seed": seed}
                out.append({"cell": cell, "jobs": self.upstream_jobs(p, m, b)})
        return out

    def cost_inputs(self) -> list[str]:
        """What step `cost` reads: every evaluation's metrics (so that it runs last) and the outputs whose
        provenance holds each job's GPU count."""
        out = [self.eval_file(p, m, b, "metrics.json") for p, m, b in self.evaluations()]
        out += [prov for j in self.cost_jobs() for _, prov in j["jobs"].values()]
        return sorted(set(out))
