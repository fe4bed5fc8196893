"""Downstream tasks through lm-evaluation-harness: the world's data set, the project's YAML tasks run
by lm-eval's own simple_evaluate on a tiny model (offline), version pins, results files, the table's
change against the base policy."""

import json

import pytest

from harness.core.io import RecordError
from harness.demo import world
from harness.evaluation import downstream
from harness.reporting import report

from .conftest import model_ref

TASKS = [
    {"name": "world_exact", "version": 1.0, "num_fewshot": 0, "metric": "exact_match"},
    {"name": "world_choice", "version": 1.0, "num_fewshot": 0, "metric": "acc"},
]


def _job(model, **kw):
    d = {"tasks": TASKS, "include_path": "harness/evaluation/lm_eval_tasks", "include_defaults": False, "backend": "hf",
         "batch_size": 16, "apply_chat_template": True, "bootstrap_iters": 100, "limit": None, **kw}  # fmt: skip
    return {"step": "downstream", "downstream": d, "model": model_ref(model), "seed": 0,
            "cell": {"policy": "p", "ranker": "base", "regularizer": "—", "seed": 0}}  # fmt: skip


def test_world_set_has_the_answer_among_distinct_choices():
    rows = world.downstream_rows({"n": 30, "seed": 3})
    assert len(rows) == 30 and len({r["prompt"] for r in rows}) == 30
    for r in rows:
        assert r["choices"][r["gold"]] == r["answer"]
        assert len(set(r["choices"])) == len(r["choices"]) >= 2


def test_lm_eval_runs_the_project_tasks_on_a_tiny_model(tmp_path, tiny_models):
    data = tmp_path / "downstream.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in world.downstream_rows({"n": 12, "seed": 3})))
    out, metrics = tmp_path / "results.json", tmp_path / "metrics.json"
    downstream.run(_job(tiny_models / "policy"), str(data), str(out), str(metrics))
    results = json.loads(out.read_text())
    # lm-eval's own results layout, with our provenance added
    assert set(results["results"]) == {"world_exact", "world_choice"}
    assert results["versions"] == {"world_exact": 1.0, "world_choice": 1.0}
    assert results["n-shot"] == {"world_exact": 0, "world_choice": 0}
    assert results["n-samples"]["world_choice"]["effective"] == 12
    assert "provenance" in results
    m = json.loads(metrics.read_text())["metrics"]
    choice = m["tasks"]["world_choice"]
    assert choice["value"] == pytest.approx(100 * results["results"]["world_choice"]["acc,none"])
    assert choice["stderr"] == pytest.approx(100 * results["results"]["world_choice"]["acc_stderr,none"])
    assert 0 <= m["tasks"]["world_exact"]["value"] <= 100

    pinned = _job(tiny_models / "policy", tasks=[{**TASKS[1], "version": 2.0}])
    with pytest.raises(RecordError, match=r"world_choice is version 1.0 in lm-eval .*config pins 2.0"):
        downstream.run(pinned, str(data), str(out), str(metrics))
    unknown = _job(tiny_models / "policy", tasks=[{**TASKS[1], "name": "world_nothing"}])
    with pytest.raises(RecordError, match=r"unknown task\(s\) world_nothing"):
        downstream.run(unknown, str(data), str(out), str(metrics))
    with pytest.raises(RecordError, match="its data file comes from evaluation/downstream/data"):
        downstream.run(_job(tiny_models / "policy"), None, str(out), str(metrics))


def test_main_table_gives_the_change_against_the_base(tmp_path):
    def write(name, ranker, seed, exact, se=2.0):
        cell = {
            "policy": "p",
            "ranker": ranker,
            "regularizer": "—" if ranker == "base" else "bcr",
            "seed": seed,
        }
        path = tmp_path / f"{name}.json"
        tasks = {"world_exact": {"metric": "exact_match", "value": exact, "stderr": se}}
        path.write_text(json.dumps({"benchmark": "downstream", "cell": cell, "metrics": {"tasks": tasks}}))
        return str(path)

    paths = [write("b", "base", 0, 40.0), write("t0", "rm", 0, 35.0), write("t1", "rm", 1, 37.0)]
    table = report.build_table(paths)
    base = table[table["ranker"] == "base"].iloc[0]
    cell = table[table["ranker"] == "rm"].iloc[0]
    assert base["ds_world_exact"] == 40.0
    assert cell["ds_world_exact"] == pytest.approx(-4.0) and cell["ds_world_exact_abs"] == pytest.approx(36.0)
    md = report.to_markdown(table)
    assert "world_exact (Δ)" in md and "| -4.00 ± " in md and "alignment tax" in md
