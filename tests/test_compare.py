"""Paired comparisons (harness/reporting/paired.py): the interval's coverage and the p-value's size on simulated
cells at the demo's sizes, Holm's correction, and the step on files against a direct computation."""

import json
import re

import numpy as np
import pytest

from harness.core import stats
from harness.reporting import compare, figures, paired

SEEDS, PROMPTS = 3, 96


def _cells(rng, delta, seed_sd, prompt_sd, cell_prompt_sd, noise_sd):
    """Two cells on the same prompts: a shared prompt effect, per cell a seed effect, a cell x prompt
    effect and seed x prompt noise; cell A is ``delta`` above cell B."""
    shared = rng.normal(0, prompt_sd, PROMPTS)
    out = []
    for mu in (delta, 0.0):
        seed = rng.normal(0, seed_sd, (SEEDS, 1))
        own = rng.normal(0, cell_prompt_sd, PROMPTS)
        out.append(stats.mean_cell(mu + seed + shared + own + rng.normal(0, noise_sd, (SEEDS, PROMPTS))))
    return out


# seed-dominated (where a bootstrap of 3 seeds fails) and prompt-dominated
REGIMES = {"seed effects large": (2.0, 2.0, 0.5, 3.0), "prompt effects large": (0.3, 2.0, 1.5, 2.0)}


@pytest.mark.parametrize("regime", REGIMES)
def test_interval_covers_the_true_difference_and_p_is_uniform_under_none(regime):
    rng = np.random.default_rng(7)
    reps, truth = 300, 1.0
    covered = rejected = 0
    for r in range(reps):
        a, b = _cells(rng, truth, *REGIMES[regime])
        res = paired.paired(a, b, PROMPTS, 400, seed=r)
        covered += res["ci"][0] <= truth <= res["ci"][1]
        a, b = _cells(rng, 0.0, *REGIMES[regime])
        rejected += paired.paired(a, b, PROMPTS, 400, seed=r)["p"] < 0.05
    assert 0.92 <= covered / reps <= 0.98, covered / reps
    assert 0.02 <= rejected / reps <= 0.08, rejected / reps


def test_the_point_estimate_is_the_difference_of_seed_means():
    rng = np.random.default_rng(0)
    a, b = _cells(rng, 0.5, *REGIMES["seed effects large"])
    res = paired.paired(a, b, PROMPTS, 200, seed=0, more_seeds=10)
    assert res["diff"] == pytest.approx(a[0].mean(axis=1).mean() - b[0].mean(axis=1).mean())
    assert res["ci"][0] < res["diff"] < res["ci"][1] and res["mde"] > 0
    assert res["mde_more_seeds"] < res["mde"]  # more seeds shrink the seed part


def test_a_cell_against_itself_has_no_spread():
    rng = np.random.default_rng(0)
    a, _ = _cells(rng, 0.0, *REGIMES["seed effects large"])
    res = paired.paired(a, a, PROMPTS, 100, seed=0)
    assert res["diff"] == 0 and res["p"] == 1.0


def test_holm():
    # sorted 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.06, 0.06, 0.5 (step-down, monotone)
    assert paired.holm([0.03, 0.01, 0.5, 0.02]) == pytest.approx([0.06, 0.04, 0.5, 0.06])
    assert paired.holm([0.9, 0.8]) == [1.0, 1.0]


def _annotations(path, preferences):
    rows = [
        {"instruction": f"task {i}", "output_1": "ref", "output_2": "x" * (5 + i % 3), "preference": p}
        for i, p in enumerate(preferences)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return str(path)


def _job(inputs=(), **kw):
    """A comparisons job config; ``inputs``: AlpacaEval judgments at .../eval/<policy>/<model key>/..."""
    files = [[*re.search(r"eval/([^/]+)/(.+)/alpaca_eval/", path).groups(), path] for path in inputs]
    lc = {"p": {"group": "p", "method": "approximate"}}
    return {
        "comparisons": [{"vary": "regularizer", "reference": "dpo"}, {"vary": "model", "reference": "base"}],
        "cells": [["p", "rm", "dpo"], ["p", "rm", "bcr"]],
        "benchmarks": {"alpaca_eval": {"samples": 200, "lc_samples": 5, "lc": lc}},
        "files": {"alpaca_eval": files},
        "seed": 0,
        "more_seeds": None,
        **kw,
    }


def test_the_table_recomputes_from_the_per_prompt_files(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "results/run/eval/p"
    inputs = [_annotations(root / "base/alpaca_eval/judgments.json", [1.5] * 40)]
    prefs = {}
    for reg, shift in (("dpo", 0.0), ("bcr", 0.3)):
        for seed in (0, 1, 2):
            p = np.clip(1.5 + shift * rng.random(40) + rng.normal(0, 0.3, 40), 1, 2).round(2)
            prefs[reg, seed] = p
            inputs.append(_annotations(root / f"rm/{reg}/seed{seed}/alpaca_eval/judgments.json", p.tolist()))
    rows = compare.table(_job(inputs))
    wr = {(r["label"]): r for r in rows if r["metric"] == "AlpacaEval WR (%)"}
    direct = np.mean([100 * (prefs["bcr", s] - 1).mean() for s in range(3)]) - np.mean(
        [100 * (prefs["dpo", s] - 1).mean() for s in range(3)]
    )
    assert wr["rm/bcr − rm/dpo"]["diff"] == pytest.approx(direct, abs=1e-9)
    assert wr["rm/bcr − base"]["diff"] == pytest.approx(
        np.mean([100 * (prefs["bcr", s] - 1).mean() for s in range(3)]) - 50
    )
    assert wr["rm/bcr − rm/dpo"]["files_a"] == str(root / "rm/bcr/seed{0,1,2}/alpaca_eval/judgments.json")
    lc = [r for r in rows if r["metric"] == "AlpacaEval LC (%)"]
    assert len(lc) == 3 and all(r["draws"] == 5 for r in lc)  # LC's own (fewer) resamples, GLM refitted
    assert all(0 <= r["p_holm"] <= 1 and r["p_holm"] >= r["p"] for r in rows)


def test_cells_on_different_prompts_are_refused(tmp_path):
    root = tmp_path / "results/run/eval/p"
    inputs = [_annotations(root / "base/alpaca_eval/judgments.json", [1.5] * 10)]
    inputs += [_annotations(root / f"rm/dpo/seed{s}/alpaca_eval/judgments.json", [1.6] * 10) for s in (0, 1)]
    bad = root / "rm/bcr/seed0/alpaca_eval/judgments.json"
    inputs.append(_annotations(bad, [1.7] * 9))
    with pytest.raises(compare.RecordError, match="judgments.json: its instructions differ"):
        compare.table(_job(inputs))


def test_a_comparison_with_an_unknown_reference_is_refused_in_one_line():
    from harness.core.errors import ConfigError
    from harness.core.io import read_yaml
    from harness.workflow.config import validate

    from .conftest import ROOT

    cfg = read_yaml(ROOT / "config/demo.yaml")
    cfg["comparisons"] = [{"vary": "ranker", "reference": "armorm"}]
    with pytest.raises(ConfigError, match=r"comparisons/0/reference: 'armorm' is not a key of rankers"):
        validate(cfg, "config/demo.yaml")


def test_pairs_are_one_notation_and_never_mirrored():
    job = _job(comparisons=[{"vary": "regularizer", "reference": "dpo"}, {"vary": "regularizer", "reference": "nll"},
                            {"vary": "model", "reference": "base"}],
               cells=[["p", "rm", "dpo"], ["p", "rm", "nll"], ["p", "rm", "bcr"]])  # fmt: skip
    present = {("p", "rm", g) for g in ("dpo", "nll", "bcr")} | {("p", "base", "—")}
    labels = [label for *_, label in compare.pairs(job, present)]
    assert labels == ["rm/nll − rm/dpo", "rm/bcr − rm/dpo", "rm/bcr − rm/nll",
                      "rm/dpo − base", "rm/nll − base", "rm/bcr − base"]  # fmt: skip


def test_identical_scores_are_marked_not_drawn_as_certainty(tmp_path):
    root = tmp_path / "results/run/eval/p"
    inputs = [_annotations(root / "base/alpaca_eval/judgments.json", [1.5] * 20)]
    for reg in ("dpo", "bcr"):
        inputs += [
            _annotations(root / f"rm/{reg}/seed{s}/alpaca_eval/judgments.json", [1.7] * 20) for s in (0, 1)
        ]
    rows = compare.table(_job(inputs))
    same = [r for r in rows if r["label"] == "rm/bcr − rm/dpo" and r["metric"] == "AlpacaEval WR (%)"]
    assert len(same) == 1 and paired.identical(same[0])
    text = compare.to_markdown(rows, _job(inputs))
    assert "| p | rm/bcr − rm/dpo | 0 (identical scores) | — |" in text
    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    figures.comparisons(rows, str(png), str(pdf))
    assert png.stat().st_size > 5_000


def test_one_unit_gives_the_difference_without_an_interval(tmp_path):
    """A benchmark evaluated on one prompt: the difference is reported, the interval and the test are not
    (the prompt part of the variance cannot be estimated from one prompt), and nothing divides by zero."""
    rng = np.random.default_rng(1)
    a = stats.mean_cell(rng.normal(1.0, 0.5, (3, 1)))
    b = stats.mean_cell(rng.normal(0.0, 0.5, (3, 1)))
    res = paired.paired(a, b, 1, 50, seed=0, more_seeds=10)
    assert res["diff"] == pytest.approx(a[0].mean() - b[0].mean())
    assert all(np.isnan(res[k]) for k in ("se", "p", "mde", "mde_more_seeds")) and np.isnan(res["ci"]).all()
    row = {
        "benchmark": "arena_hard",
        "metric": "Arena-Hard score (%)",
        "comparison": "regularizer",
        "policy": "p",
        "label": "rm/bcr − rm/dpo",
        "units": 1,
        "p_holm": res["p"],
        **res,
    }
    text = compare.to_markdown([row], {"more_seeds": 10})
    assert f"| p | rm/bcr − rm/dpo | {compare._fmt(res['diff'])} | — | — | — | — |" in text
    assert "has one unit" in text
    figures.comparisons([row], str(tmp_path / "f.png"), str(tmp_path / "f.pdf"))
