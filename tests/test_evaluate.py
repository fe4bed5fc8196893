"""Evaluation: verdict parsing, metrics against alpaca_eval's own functions on published annotations,
MT-Bench files, and bad answer files."""

import json

import pytest

from harness import evaluate
from harness.io import RecordError
from harness.judge import load_template, parse_choice, parse_rating
from harness.records import load_mt_questions

from .conftest import shared


@pytest.mark.parametrize(
    "text, score",
    [
        ("Rating: [[7]]", 7.0),
        ("[[3]] then on reflection [[8]]", 8.0),
        ("[[9.5]]", 9.5),
        ("no verdict", None),
        ("[[11]]", None),
        ("[[0]]", None),
        ("[ [5] ]", None),
    ],
)
def test_parse_rating(text, score):
    assert parse_rating(text) == score


def test_parse_choice():
    assert parse_choice(" A") == "A" and parse_choice("B is better") == "B"
    assert parse_choice("Both are fine") is None and parse_choice("") is None


def test_unknown_template_lists_available():
    with pytest.raises(ValueError, match=r"available: .*pairwise_v1.txt"):
        load_template("pairwise_v9.txt")


def test_metrics_equal_alpaca_eval_on_published_annotations(tmp_path):
    import pandas as pd
    from alpaca_eval.metrics import get_winrate

    path = shared("alpaca_eval", "Mistral-7B-Instruct-v0.2_alpaca_eval_gpt4_turbo_fn_annotations.json")
    out = tmp_path / "metrics.json"
    cell = {"policy": "mistral", "ranker": "base", "regularizer": "—", "seed": 0}
    evaluate.metrics_alpaca_eval({"lc_method": "approximate", "cell": cell}, str(path), str(out))
    m = json.loads(out.read_text())["metrics"]
    expected = get_winrate(pd.DataFrame(json.loads(path.read_text())))
    assert m["win_rate"] == pytest.approx(float(expected["win_rate"]), abs=1e-12)
    assert m["discrete_win_rate"] == pytest.approx(float(expected["discrete_win_rate"]), abs=1e-12)
    assert m["n_total"] == 805 and m["win_rate"] == pytest.approx(15.528, abs=1e-3)
    assert m["lc_method"].startswith("approximate") and 0 < m["length_controlled_winrate"] < 100


def test_mt_bench_questions_file():
    qs = load_mt_questions(shared("mt_bench", "question.jsonl"))
    assert len(qs) == 80 and all(len(q.turns) == 2 for q in qs)
    assert len({q.category for q in qs}) == 8


def _alpaca(path, rows):
    path.write_text(json.dumps([{"instruction": i, "output": o, "generator": g} for i, o, g in rows]))
    return path


def test_judge_rejects_outputs_that_do_not_match_the_reference(tmp_path):
    ref = _alpaca(tmp_path / "ref.json", [("a?", "x", "ref"), ("b?", "y", "ref")])
    outs = _alpaca(tmp_path / "out.json", [("a?", "m", "model"), ("c?", "n", "model")])
    with pytest.raises(RecordError, match=r"out.json: 1 reference instructions have no output and 1 outputs"):
        evaluate.judge_alpaca_eval({"judge": {}}, str(ref), str(outs), str(tmp_path / "ann.json"))
    assert not (tmp_path / "ann.json").exists()


def test_mt_bench_metrics_count_unparsable(tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text(
        "\n".join(
            json.dumps({"question_id": i, "category": c, "turns": ["t1", "t2"]})
            for i, c in [(1, "math"), (2, "writing")]
        )
    )
    j = tmp_path / "j.jsonl"
    rows = [(1, 1, 6), (1, 2, 4), (2, 1, -1), (2, 2, 9)]
    j.write_text("\n".join(json.dumps({"question_id": a, "turn": t, "score": s}) for a, t, s in rows))
    out = tmp_path / "m.json"
    evaluate.metrics_mt_bench({"cell": {"seed": 0}}, str(q), str(j), str(out))
    m = json.loads(out.read_text())["metrics"]
    assert m["n_unparsable"] == 1 and m["score"] == pytest.approx(19 / 3)
    assert m["turn_1"] == 6 and m["turn_2"] == pytest.approx(6.5)
    assert m["per_category"] == {"math": 5.0, "writing": 9.0}
