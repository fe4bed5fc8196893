"""Which cells a config trains and evaluates (standard library only): the main table's grid, the
budget sweep's partial grids and the baselines table, each cell once. jobs, plan and the LC (evaluation/lc.py)
read it, so none of them imports another for it."""

from __future__ import annotations

import re
from typing import NamedTuple

BASE = "base"
EVALUATED = "evaluated"  # the model key of a model evaluated without training: evaluated/<name>


class ModelKey(NamedTuple):
    """What a model key of the eval/ and generations/ paths names: ``base`` (ranker ``base``,
    regularizer '—'), a trained cell ``<ranker>/<regularizer>/seed<N>``, or a model evaluated without
    training ``evaluated/<name>`` (ranker ``evaluated``, regularizer its name)."""

    ranker: str
    regularizer: str
    seed: int | None

    @classmethod
    def parse(cls, key: str) -> ModelKey:
        if key == BASE:
            return cls(BASE, "—", None)
        if key.startswith(f"{EVALUATED}/") and key.count("/") == 1:
            return cls(EVALUATED, key.split("/")[1], None)
        m = re.fullmatch(r"([^/]+)/([^/]+)/seed(\d+)", key)
        if not m:
            raise ValueError(
                f"model key '{key}' is neither 'base', '<ranker>/<regularizer>/seed<N>' nor 'evaluated/<name>'"
            )
        return cls(m.group(1), m.group(2), int(m.group(3)))

    @property
    def trained(self) -> bool:
        return self.ranker not in (BASE, EVALUATED)

    def __str__(self) -> str:
        if self.ranker == BASE:
            return BASE
        if self.ranker == EVALUATED:
            return f"{EVALUATED}/{self.regularizer}"
        return f"{self.ranker}/{self.regularizer}/seed{self.seed}"

    @classmethod
    def cell(cls, ranker: str, regularizer: str, seed: int) -> str:
        """The model key of a trained cell."""
        return str(cls(ranker, regularizer, seed))


def evaluated_models(cfg: dict, benchmark: str | None = None) -> list[tuple[str, str]]:
    """(policy, model key) of every model the config evaluates (on ``benchmark``, where given): each
    policy's base, every main-table cell, every budget-sweep cell it evaluates and every
    baselines-table cell."""
    out = [(p, BASE) for p in cfg["policies"]]
    out += [(p, f"{r}/{g}/seed{s}") for p, r, g, s in cells(cfg, benchmark)[1]]
    return list(dict.fromkeys(out))


def evaluated_only(cfg: dict) -> list[tuple[str, str]]:
    """(policy, model key ``evaluated/<name>``) of every model of ``evaluate`` (evaluated, not trained)."""
    return [
        (e.get("policy") or cfg["policies"][0], f"{EVALUATED}/{n}")
        for n, e in cfg.get("evaluate", {}).items()
    ]


def benchmarks_of(cfg: dict, entry: dict, key: str) -> list[str]:
    """The benchmarks a budget-sweep (``evaluate``) or baselines (``benchmarks``) entry evaluates on:
    all of ``evaluation`` for true or null, none for false, else the ones it lists."""
    chosen = entry.get(key)
    if chosen is True or (chosen is None and key == "benchmarks"):
        return list(cfg["evaluation"])
    return list(chosen or [])


def main_cells(cfg: dict) -> list[tuple[str, str, str]]:
    """(policy, ranker, regularizer) of the main table: every policy x ranker x its regularizers."""
    regs = cfg["main_table"]["regularizers"] or list(cfg["regularizers"])
    return [(p, r, g) for p in cfg["policies"] for r in cfg["rankers"] for g in regs]


def cells(cfg: dict, benchmark: str | None = None) -> tuple[list[tuple], list[tuple]]:
    """(trained cells, evaluated cells) as (policy, ranker, regularizer, seed), each once; with
    ``benchmark``, the evaluated cells are those evaluated on it."""

    def on(entry, key):
        names = benchmarks_of(cfg, entry, key)
        return bool(names) if benchmark is None else benchmark in names

    main = [(p, r, g, s) for p, r, g in main_cells(cfg) for s in cfg["seeds"]]
    sweep = [(c["policy"], c["ranker"], g, s, on(c, "evaluate")) for c in cfg["budget_sweep"] for g in c["regularizers"] for s in cfg["seeds"]]  # fmt: skip
    base = [(c["policy"], c["ranker"], g, s, on(c, "benchmarks")) for c in cfg.get("baselines", []) for g in c["regularizers"] for s in cfg["seeds"]]  # fmt: skip
    trained = list(dict.fromkeys(main + [x[:4] for x in sweep + base]))
    evaluated = list(dict.fromkeys(main + [x[:4] for x in sweep + base if x[4]]))
    return trained, evaluated
