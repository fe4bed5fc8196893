"""Fidelity against published numbers (../shared/data; each test skips with a reason without it).

AlpacaEval 2: the published ``weighted_alpaca_eval_gpt4_turbo`` annotations of every model in
alpaca_eval/published/ through our metrics step give the official leaderboard's win rate, discrete win
rate, standard error and average length; the joint LC's leave-one-out error against the leaderboard LC
is within the target (benchmarks/lc_joint_loo.py prints the table). MT-Bench: our parse of every
published GPT-4 judgment equals FastChat's recorded score, and our means equal FastChat's
``show_result`` arithmetic on the published scores.
"""

import importlib.util
import json

import numpy as np
import pytest

from harness.evaluation import alpaca_metrics, mt_bench
from harness.ranking.verdicts import parse_rating

from .conftest import ROOT, shared

SUFFIX = "_weighted_alpaca_eval_gpt4_turbo_annotations.json"
CELL = {"policy": "p", "ranker": "base", "regularizer": "—", "seed": 0}


def _published_alpaca():
    folder = shared("alpaca_eval", "published")
    files = sorted(folder.glob(f"*{SUFFIX}"))
    if not files:
        pytest.skip(f"{folder} holds no published annotations")
    return folder, files


def test_alpaca_eval_metrics_equal_the_leaderboard(tmp_path):
    import pandas as pd

    folder, files = _published_alpaca()
    board = pd.read_csv(folder / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv", index_col=0)
    reference = json.loads(shared("alpaca_eval", "gpt4_1106_preview_outputs.json").read_text())
    job = {"cell": CELL, "lc_method": "approximate", "lc_data": None,
           "bootstrap": {"samples": 100, "lc_samples": 20}}  # fmt: skip
    for path in files:
        name = path.name.removesuffix(SUFFIX)
        rows = json.loads(path.read_text())
        # the model's outputs file: alpaca_eval annotates no empty output, so an instruction without
        # an annotation had an empty output (avg_length counts it, as the leaderboard does)
        given = {r["instruction"]: r["output_2"] for r in rows}
        answers = tmp_path / f"{name}.outputs.json"
        answers.write_text(json.dumps([
            {"instruction": r["instruction"], "output": given.get(r["instruction"], ""), "generator": name}
            for r in reference
        ]))  # fmt: skip
        out = tmp_path / f"{name}.json"
        alpaca_metrics.metrics(job, str(path), str(out), answers=str(answers))
        m = json.loads(out.read_text())["metrics"]
        row = board.loc[name]
        assert m["win_rate"] == pytest.approx(row["win_rate"], abs=1e-8), name
        assert m["discrete_win_rate"] == pytest.approx(row["discrete_win_rate"], abs=1e-8), name
        assert m["standard_error"] == pytest.approx(row["standard_error"], abs=1e-8), name
        assert int(m["avg_length"]) == row["avg_length"], name  # the leaderboard truncates
        assert m["n_total"] == row["n_total"], name


@pytest.mark.slow
def test_joint_lc_leave_one_out_error_is_within_target():
    _published_alpaca()
    spec = importlib.util.spec_from_file_location("lc_joint_loo", ROOT / "benchmarks" / "lc_joint_loo.py")
    loo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loo)
    instructions, board, models = loo.load(shared("alpaca_eval"))
    result = loo.loo(instructions, models)
    official = board.loc[list(result), "length_controlled_winrate"].to_numpy()
    joint = np.array([v[0] for v in result.values()])
    approx = np.array([v[1] for v in result.values()])
    joint_err, approx_err = np.abs(joint - official), np.abs(approx - official)
    assert joint_err.mean() <= 1.5, joint_err
    assert joint_err.mean() < approx_err.mean() / 3  # difficulty is most of the gap
    assert joint_err.max() < 4


def _published_mt_bench():
    folder = shared("mt_bench", "published")
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        pytest.skip(f"{folder} holds no published judgments")
    return files


def test_mt_bench_parse_equals_fastchat_on_published_judgments():
    rows = [json.loads(line) for f in _published_mt_bench() for line in f.read_text().splitlines()]
    assert len(rows) >= 480
    mismatched = [
        (r["model"], r["question_id"], r["turn"], r["score"])
        for r in rows
        if (lambda s: -1 if s is None else s)(parse_rating(r["judgment"])) != r["score"]
    ]
    assert not mismatched
    assert any(r["score"] == -1 for r in rows)  # FastChat's no-rating case is among them


def test_mt_bench_means_equal_fastchat_show_result(tmp_path):
    import pandas as pd

    questions = shared("mt_bench", "question.jsonl")
    for f in _published_mt_bench():
        rows = [json.loads(line) for line in f.read_text().splitlines()]
        # FastChat's show_result on the published scores: drop -1, mean per model, per turn
        df = pd.DataFrame(rows)[["model", "score", "turn"]]
        df = df[df["score"] != -1]
        expected = {
            "score": df["score"].mean(),
            "turn_1": df[df["turn"] == 1]["score"].mean(),
            "turn_2": df[df["turn"] == 2]["score"].mean(),
        }
        # ours on the same judgment texts, re-parsed
        ours = [{**r, "score": (lambda s: -1 if s is None else s)(parse_rating(r["judgment"]))} for r in rows]
        path = tmp_path / f.name
        path.write_text("".join(json.dumps(r) + "\n" for r in ours))
        out = tmp_path / f"{f.stem}.metrics.json"
        job = {"cell": CELL, "bootstrap": {"samples": 200}}
        mt_bench.metrics(job, str(questions), str(path), str(out))
        m = json.loads(out.read_text())["metrics"]
        for key, value in expected.items():
            assert m[key] == pytest.approx(value, abs=1e-12), (f.name, key)
        assert m["n_unparsable"] == int((pd.DataFrame(rows)["score"] == -1).sum())
