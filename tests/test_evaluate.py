"""Evaluation: verdict parsing; AlpacaEval metrics against alpaca_eval's own functions (published
annotations, the official LC GLM from a small df_gamed file of our own), bootstrap intervals, the
alpaca_eval annotator path against a scripted endpoint; MT-Bench with FastChat's real files and
templates, retries and counts; bad input."""

import json
import math

import numpy as np
import pytest

from harness.core.io import RecordError
from harness.core.records import MT_TEMPLATES, load_judge_prompts, load_mt_questions, load_reference_answers
from harness.evaluation import alpaca, alpaca_metrics, lc, mt_bench
from harness.ranking.verdicts import load_template, parse_choice, parse_rating

from .conftest import ROOT, chat_completion, shared

CELL = {"policy": "p", "ranker": "base", "regularizer": "—", "seed": 0}


@pytest.mark.parametrize(
    "text, score",
    [
        ("Rating: [[7]]", 7.0),
        ("[[3]] then on reflection [[8]]", 3.0),  # FastChat: the first match
        ("[7] and then [[5]]", 5.0),  # the double bracket wins wherever it is
        ("[[9.5]]", 9.5),
        ("Rating: [4]", 4.0),  # FastChat's fallback pattern
        ("no verdict", None),
        ("[[11]]", 11.0),  # no range check, as in FastChat
        ("[[0]]", 0.0),
        ("[[8.]]", 8.0),
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


def _metrics_job(**kw):
    return {
        "cell": CELL,
        "lc_method": "approximate",
        "lc_data": None,
        "bootstrap": {"samples": 500, "lc_samples": 20},
        **kw,
    }


def test_metrics_equal_alpaca_eval_on_published_annotations(tmp_path):
    import pandas as pd
    from alpaca_eval.metrics import get_winrate

    path = shared("alpaca_eval", "Mistral-7B-Instruct-v0.2_alpaca_eval_gpt4_turbo_fn_annotations.json")
    out = tmp_path / "metrics.json"
    alpaca_metrics.metrics(_metrics_job(), str(path), str(out))
    m = json.loads(out.read_text())["metrics"]
    expected = get_winrate(pd.DataFrame(json.loads(path.read_text())))
    assert m["win_rate"] == pytest.approx(float(expected["win_rate"]), abs=1e-12)
    assert m["discrete_win_rate"] == pytest.approx(float(expected["discrete_win_rate"]), abs=1e-12)
    assert m["n_total"] == 805 and m["win_rate"] == pytest.approx(15.528, abs=1e-3)
    for name in ("win_rate", "discrete_win_rate", "length_controlled_winrate"):
        low, high = m[f"{name}_ci"]
        assert low < m[name] < high and high - low < 10
    assert m["lc_method"].startswith("approximate") and "not comparable" in m["lc_note"]


def test_win_values_match_alpaca_eval_scoring_rules():
    import pandas as pd
    from alpaca_eval.metrics import get_winrate

    prefs = [1.0, 2.0, 1.5, 0.0, 1.3, 1.8, 2.0, float("nan")]
    weighted, discrete = alpaca_metrics.win_values(prefs)
    expected = get_winrate(pd.DataFrame({"preference": prefs}))
    assert np.nanmean(weighted) * 100 == pytest.approx(expected["win_rate"])
    assert np.nanmean(discrete) * 100 == pytest.approx(expected["discrete_win_rate"])


def _gamed_file(path, n, rng):
    """A df_gamed.csv of our own: difficulty per instruction, two length-gamed baselines."""
    import pandas as pd

    rows = []
    for model, shift in (("gamed_concise", -1.0), ("gamed_verbose", 1.0)):
        for i in range(n):
            rows.append(
                {
                    "model": model,
                    "index": i,
                    "instruction_difficulty": float(np.sin(i)),
                    "preference": float(np.clip(1.5 + 0.3 * shift + 0.1 * rng.normal(), 1, 2)),
                    "std_delta_len": shift + 0.2 * rng.normal(),
                    "not_gamed_baseline": False,
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _annotations(n, rng):
    return [
        {
            "instruction": f"q{i}",
            "output_1": "r" * int(50 + 40 * rng.random()),
            "generator_1": "ref",
            "output_2": "m" * int(30 + 90 * rng.random()),
            "generator_2": "model",
            "annotator": "test",
            "preference": float(np.clip(1.2 + 0.6 * rng.random(), 1, 2)),
            "index": i,
        }
        for i in range(n)
    ]


def test_official_lc_of_a_model_judged_against_itself_is_50_as_alpaca_eval_says(tmp_path):
    """reference: base with lc_method official: the base model's answers against themselves (one
    generator, equal lengths) get alpaca_eval's LC of 50, not a GLM fitted on nothing."""
    from unittest import mock

    import alpaca_eval.metrics.glm_winrate as glm
    import pandas as pd

    rng = np.random.default_rng(1)
    gamed = _gamed_file(tmp_path / "df_gamed.csv", 30, rng)
    rows = [dict(r, generator_1="base", generator_2="base", output_2=r["output_1"], preference=1.5)
            for r in _annotations(30, rng)]  # fmt: skip
    ann = tmp_path / "self.json"
    ann.write_text(json.dumps(rows))
    out = tmp_path / "m.json"
    alpaca_metrics.metrics(
        _metrics_job(lc_method="official", lc_data={"path": str(gamed)}), str(ann), str(out)
    )
    m = json.loads(out.read_text())["metrics"]
    with mock.patch.object(glm, "hf_hub_download", lambda *a, **k: str(gamed)):  # alpaca_eval itself
        expected = glm.get_length_controlled_winrate(pd.DataFrame(rows), save_weights_dir=None)
    assert m["length_controlled_winrate"] == expected["length_controlled_winrate"] == 50.0
    assert m["length_controlled_winrate_ci"] == [50.0, 50.0]


def test_official_lc_from_a_local_difficulty_file(tmp_path, monkeypatch):
    from unittest import mock

    import alpaca_eval.metrics.glm_winrate as glm
    import pandas as pd

    rng = np.random.default_rng(0)
    gamed = _gamed_file(tmp_path / "df_gamed.csv", 40, rng)
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(_annotations(40, rng)))
    out = tmp_path / "m.json"
    job = _metrics_job(lc_method="official", lc_data={"path": str(gamed)})
    alpaca_metrics.metrics(job, str(ann), str(out))
    m = json.loads(out.read_text())["metrics"]
    assert m["lc_method"] == f"official length_controlled_v1 (local file {gamed})" and "lc_note" not in m
    with mock.patch.object(glm, "hf_hub_download", lambda *a, **k: str(gamed)):  # alpaca_eval itself
        expected = glm.get_length_controlled_winrate(
            pd.DataFrame(json.loads(ann.read_text())), save_weights_dir=None, is_warn_extreme_changes=False
        )
    assert m["length_controlled_winrate"] == pytest.approx(expected["length_controlled_winrate"], abs=1e-9)
    low, high = m["length_controlled_winrate_ci"]
    assert low <= m["length_controlled_winrate"] <= high

    alpaca_metrics.metrics(_metrics_job(), str(ann), str(tmp_path / "approx.json"))
    approx = json.loads((tmp_path / "approx.json").read_text())["metrics"]["length_controlled_winrate"]
    assert not math.isclose(approx, m["length_controlled_winrate"], abs_tol=1e-6)  # difficulty matters

    bad = tmp_path / "bad.csv"
    bad.write_text("index,instruction_difficulty\n0,0.5\n")
    with pytest.raises(
        RuntimeError, match=r"bad.csv: not alpaca_eval's df_gamed.csv: missing column\(s\) model"
    ):
        alpaca_metrics.metrics(
            _metrics_job(lc_method="official", lc_data={"path": str(bad)}), str(ann), str(out)
        )


def test_auto_lc_offline_falls_back_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(_annotations(30, np.random.default_rng(1))))
    out = tmp_path / "m.json"
    alpaca_metrics.metrics(_metrics_job(lc_method="auto"), str(ann), str(out))
    assert json.loads(out.read_text())["metrics"]["lc_method"].startswith("approximate")
    with pytest.raises(RuntimeError, match="official LC win rate needs alpaca_eval's df_gamed.csv"):
        alpaca_metrics.metrics(_metrics_job(lc_method="official"), str(ann), str(out))


def _alpaca(path, rows):
    path.write_text(json.dumps([{"instruction": i, "output": o, "generator": g} for i, o, g in rows]))
    return path


def test_judge_rejects_outputs_that_do_not_match_the_reference(tmp_path):
    ref = _alpaca(tmp_path / "ref.json", [("a?", "x", "ref"), ("b?", "y", "ref")])
    outs = _alpaca(tmp_path / "out.json", [("a?", "m", "model"), ("c?", "n", "model")])
    with pytest.raises(RecordError, match=r"out.json: 1 reference instructions have no output and 1 outputs"):
        alpaca.judge(
            {"judge": {}}, str(ref), str(outs), str(tmp_path / "ann.json"), str(tmp_path / "meta.json")
        )
    assert not (tmp_path / "ann.json").exists()


def _annotator_job(url, name="weighted_alpaca_eval_gpt4_turbo"):
    annotator = {"name": name, "model": "local-judge", "base_url": url, "api_key_env": "TEST_ANNOTATOR_KEY"}
    return {"benchmark": "alpaca_eval", "cell": CELL, "judge_name": name, "annotator": annotator}


def test_alpaca_eval_annotator_on_an_open_endpoint(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_ANNOTATOR_KEY", "secret")
    # alpaca_eval's weighted annotator reads the first token's top log-probs of "m" and "M"
    url, script = server([(200, chat_completion("m", {"m": math.log(0.8), "M": math.log(0.2)}))])
    ref = _alpaca(
        tmp_path / "ref.json", [(f"q{i}?", f"reference {i}", "gpt4_1106_preview") for i in range(3)]
    )
    outs = _alpaca(tmp_path / "out.json", [(f"q{i}?", f"model answer {i}", "tiny") for i in range(3)])
    ann, meta, cache = tmp_path / "ann.json", tmp_path / "meta.json", tmp_path / "cache.jsonl"
    job = _annotator_job(url)
    alpaca.judge(job, str(ref), str(outs), str(ann), str(meta), str(cache))
    rows = json.loads(ann.read_text())
    assert [r["index"] for r in rows] == [0, 1, 2] and [r["generator_2"] for r in rows] == ["tiny"] * 3
    assert (
        all(1.0 <= r["preference"] <= 2.0 for r in rows)
        and len({round(r["preference"], 6) for r in rows}) <= 2
    )
    assert script.seen[0]["model"] == "local-judge" and script.seen[0]["logprobs"] is True
    assert "secret" not in meta.read_text()
    calls = len(script.seen)
    assert calls == 3
    alpaca.judge(job, str(ref), str(outs), str(tmp_path / "again.json"), str(meta), str(cache))
    assert len(script.seen) == calls  # every annotation came from alpaca_eval's cache


@pytest.mark.parametrize("top", [{"m": 0.0}, {"M": 0.0}, {"x": 0.0}], ids=["sure-1", "sure-2", "unparsed"])
def test_alpaca_eval_annotator_reruns_from_a_cache_of_whole_numbers(server, tmp_path, monkeypatch, top):
    """A fully confident judge (preference 1.0 or 2.0) or one whose verdicts all failed to parse (-1 in
    alpaca_eval's cache) leaves whole numbers in the cache; the rerun reads them without asking again."""
    monkeypatch.setenv("TEST_ANNOTATOR_KEY", "secret")
    url, script = server([(200, chat_completion(next(iter(top)), top))])
    ref = _alpaca(tmp_path / "ref.json", [(f"q{i}?", f"reference {i}", "ref") for i in range(3)])
    outs = _alpaca(tmp_path / "out.json", [(f"q{i}?", f"answer {i}", "tiny") for i in range(3)])
    cache = tmp_path / "sub" / "cache.jsonl"  # a directory that does not exist yet
    for out in ("ann.json", "again.json"):
        alpaca.judge(
            _annotator_job(url), str(ref), str(outs), str(tmp_path / out), str(tmp_path / "m"), str(cache)
        )
    assert len(script.seen) == 3
    first, again = (json.loads((tmp_path / f).read_text()) for f in ("ann.json", "again.json"))
    np.testing.assert_equal([r["preference"] for r in again], [r["preference"] for r in first])


def test_alpaca_eval_annotator_errors(tmp_path, monkeypatch):
    ref = _alpaca(tmp_path / "ref.json", [("a?", "x", "ref")])
    outs = _alpaca(tmp_path / "out.json", [("a?", "m", "model")])
    monkeypatch.delenv("TEST_ANNOTATOR_KEY", raising=False)
    with pytest.raises(
        ValueError, match=r"environment variable TEST_ANNOTATOR_KEY \(the API key\) is not set"
    ):
        alpaca.judge(
            _annotator_job("http://127.0.0.1:9/v1"),
            str(ref),
            str(outs),
            str(tmp_path / "a"),
            str(tmp_path / "m"),
        )
    with pytest.raises(
        ValueError,
        match=r"unknown alpaca_eval annotator 'no_such_judge'; available: .*weighted_alpaca_eval_gpt4_turbo",
    ):
        alpaca.annotator_config({"name": "no_such_judge"}, tmp_path)


# MT-Bench ----------------------------------------------------------------------------------------


def test_mt_bench_real_files():
    qs = load_mt_questions(shared("mt_bench", "question.jsonl"))
    assert len(qs) == 80 and all(len(q.turns) == 2 for q in qs)
    cats = {q.category for q in qs}
    assert len(cats) == 8 and all(sum(q.category == c for q in qs) == 10 for c in cats)
    refs = load_reference_answers(shared("mt_bench", "reference_answer_gpt-4.jsonl"))
    need = [q.question_id for q in qs if q.category in ("math", "reasoning", "coding")]
    assert len(need) == 30 and all(len(refs[qid]) == 2 for qid in need)


def _render_all(prompts, qs, refs, need=("math", "reasoning", "coding")):
    out = []
    for q in qs:
        ref = refs[q.question_id] if q.category in need else None
        for turn in (1, 2):
            out.append((q, turn, mt_bench.render(prompts, q, ["ANSWER-ONE", "ANSWER-TWO"], turn, ref)))
    return out


@pytest.mark.parametrize("where", ["shared", "demo"])
def test_every_judge_template_renders_for_every_question(where):
    import re

    if where == "shared":
        files = [
            shared("mt_bench", f)
            for f in ("judge_prompts.jsonl", "question.jsonl", "reference_answer_gpt-4.jsonl")
        ]
    else:
        files = [
            ROOT / "data/demo" / f
            for f in (
                "mt_bench_judge_prompts.jsonl",
                "mt_bench_questions.jsonl",
                "mt_bench_reference_answers.jsonl",
            )
        ]
    prompts, qs, refs = (
        load_judge_prompts(files[0]),
        load_mt_questions(files[1]),
        load_reference_answers(files[2]),
    )
    used = set()
    for q, turn, (system, user) in _render_all(prompts, qs, refs):
        template = prompts[mt_bench.template_name(turn, q.category in ("math", "reasoning", "coding"))]
        used.add(template["name"])
        assert system["content"] == template["system_prompt"]
        # no placeholder of the template survives, and every answer the turn grades is in the prompt
        assert not set(re.findall(r"\{(\w+)\}", template["prompt_template"])) & set(
            re.findall(r"\{(\w+)\}", user["content"])
        )
        assert q.turns[turn - 1] in user["content"] and ("ANSWER-TWO" in user["content"]) == (turn == 2)
        if q.category in ("math", "reasoning", "coding"):
            assert refs[q.question_id][turn - 1] in user["content"]
    assert used == set(MT_TEMPLATES)


def _mt_files(tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text(
        "\n".join(
            json.dumps({"question_id": i, "category": c, "turns": [f"{c} one?", f"{c} two?"]})
            for i, c in [(1, "math"), (2, "writing")]
        )
    )
    refs = tmp_path / "refs.jsonl"
    refs.write_text(json.dumps({"question_id": 1, "choices": [{"index": 0, "turns": ["4", "8"]}]}) + "\n")
    ans = tmp_path / "answers.jsonl"
    ans.write_text(
        "\n".join(
            json.dumps({"question_id": i, "model_id": "m", "choices": [{"index": 0, "turns": ["a1", "a2"]}]})
            for i in (1, 2)
        )
    )
    return q, refs, ans


def test_mt_bench_judge_retries_counts_and_fastchat_layout(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JUDGE_KEY", "k")
    q, refs, ans = _mt_files(tmp_path)

    def reply(body):  # by what is graded: a second-turn prompt holds both questions
        user = body["messages"][-1]["content"]
        for asked, verdict in (
            ("math two?", "Fine. [[4]]"),
            ("math one?", "Good. [[6]]"),
            ("writing two?", "Great [[9]]"),
        ):
            if asked in user:
                return 200, verdict
        return 200, "No idea."  # writing, first turn: never a rating, so asked twice

    url, script = server(reply)
    job = {
        "benchmark": "mt_bench",
        "cell": CELL,
        "judge_name": "judge",
        "ref_categories": ["math"],
        "judge": {"backend": "openai", "model": {"source": "judge", "base_url": url, "api_key_env": "TEST_JUDGE_KEY"},
                  "batch_size": 1, "max_prompt_tokens": 4096},
    }  # fmt: skip
    out, meta = tmp_path / "j.jsonl", tmp_path / "j.meta.json"
    mt_bench.judge(
        job,
        str(q),
        str(ans),
        str(out),
        str(meta),
        str(ROOT / "data/demo/mt_bench_judge_prompts.jsonl"),
        str(refs),
    )
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["question_id"], r["turn"], r["score"]) for r in rows] == [
        (1, 1, 6),
        (1, 2, 4),
        (2, 1, -1),
        (2, 2, 9),
    ]
    assert [r["judge"][1] for r in rows] == [
        "single-math-v1",
        "single-math-v1-multi-turn",
        "single-v1",
        "single-v1-multi-turn",
    ]
    assert "4" in rows[0]["user_prompt"] and "8" in rows[1]["user_prompt"]  # the references
    assert len(script.seen) == 5 and script.seen[0]["messages"][0]["role"] == "system"
    counts = json.loads(meta.read_text())
    assert (counts["unparsable"], counts["judge_retried_unparsable"], counts["judge_unparsable"]) == (1, 1, 1)

    m_out = tmp_path / "m.json"
    mt_bench.metrics({"cell": CELL, "bootstrap": {"samples": 200}}, str(q), str(out), str(m_out))
    m = json.loads(m_out.read_text())["metrics"]
    assert m["n_unparsable"] == 1 and m["score"] == pytest.approx(19 / 3)
    assert m["turn_1"] == 6 and m["turn_2"] == pytest.approx(6.5)
    assert m["per_category"] == {"math": 5.0, "writing": 9.0}
    assert m["score_ci"][0] <= m["score"] <= m["score_ci"][1]


def test_mt_bench_bad_input(tmp_path):
    q, refs, ans = _mt_files(tmp_path)
    prompts = str(ROOT / "data/demo/mt_bench_judge_prompts.jsonl")
    job = {"ref_categories": ["math", "writing"], "judge": {}}
    with pytest.raises(RecordError, match=r"refs.jsonl: no reference answer for question\(s\) \[2\]"):
        mt_bench.judge(job, str(q), str(ans), str(tmp_path / "j"), str(tmp_path / "m"), prompts, str(refs))
    short = tmp_path / "short.jsonl"
    short.write_text(ans.read_text().splitlines()[0] + "\n")
    with pytest.raises(RecordError, match=r"short.jsonl: answers cover 1 of 2 questions"):
        mt_bench.judge(job, str(q), str(short), str(tmp_path / "j"), str(tmp_path / "m"), prompts, str(refs))
    broken = tmp_path / "prompts.jsonl"
    broken.write_text(
        "\n".join(x for x in open(prompts).read().splitlines() if '"single-v1"' not in x) + "\n"
    )
    with pytest.raises(RecordError, match="no judge prompt named single-v1"):
        load_judge_prompts(broken)
    assert not (tmp_path / "j").exists() and not (tmp_path / "m").exists()


def _judged_world(n_models, n, rng):
    """Annotations of ``n_models`` models on ``n`` instructions with a planted difficulty per instruction."""
    gamma = rng.normal(size=n)
    files = []
    for k in range(n_models):
        skill, scale, length = rng.normal(), 1 + 0.5 * rng.random(), 0.8 * rng.random()
        rows = []
        for i in range(n):
            lm = int(80 + 120 * rng.random())
            lr = int(80 + 120 * rng.random())
            z = skill + scale * gamma[i] + length * np.tanh((lm - lr) / 50)
            rows.append({"instruction": f"q{i}", "output_1": "r" * lr, "output_2": "m" * lm,
                         "generator_1": "ref", "generator_2": f"m{k}", "annotator": "test",
                         "preference": 1 + float(rng.random() < 1 / (1 + np.exp(-z)))})  # fmt: skip
        files.append(rows)
    return gamma, files


def test_joint_difficulty_recovers_a_planted_difficulty_and_feeds_the_lc(tmp_path):
    rng = np.random.default_rng(3)
    gamma, files = _judged_world(10, 120, rng)
    eval_set = _alpaca(tmp_path / "ref.json", [(f"q{i}", "r", "ref") for i in range(120)])
    paths = []
    for k, rows in enumerate(files):
        paths.append(tmp_path / f"m{k}.json")
        paths[-1].write_text(json.dumps(rows))
    job = {"step": "lc_difficulty", "group": "reference", "models": [f"p/m{k}" for k in range(10)],
           "lambdas": [0.1, 1.0], "folds": 5, "seed": 0}  # fmt: skip
    out = tmp_path / "difficulty.json"
    lc.fit_difficulty(job, str(eval_set), [str(p) for p in paths], str(out))
    fitted = json.loads(out.read_text())
    est = np.array([r["difficulty"] for r in fitted["instructions"]])
    assert abs(np.corrcoef(est, gamma)[0, 1]) > 0.8
    assert fitted["lambda"] in (0.1, 1.0) and set(fitted["heldout_loss"]) == {"0.1", "1.0"}
    m_out = tmp_path / "m.json"
    alpaca_metrics.metrics(_metrics_job(lc_method="joint"), str(paths[0]), str(m_out), difficulty=str(out))
    m = json.loads(m_out.read_text())["metrics"]
    assert (
        m["lc_method"] == "joint (length_controlled_v1 formula, instruction difficulty fitted on 10 models)"
    )
    assert "jointly" in m["lc_note"]
    low, high = m["length_controlled_winrate_ci"]
    assert low <= m["length_controlled_winrate"] <= high
    with pytest.raises(RecordError, match="needs the jointly fitted instruction difficulty"):
        alpaca_metrics.metrics(_metrics_job(lc_method="joint"), str(paths[0]), str(m_out))
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{**files[0][0], "instruction": "unseen"}] + files[0][1:]))
    with pytest.raises(RecordError, match=r"difficulty.json: no difficulty for 1 instruction\(s\)"):
        alpaca_metrics.metrics(_metrics_job(lc_method="joint"), str(other), str(m_out), difficulty=str(out))
    with pytest.raises(RecordError, match=r"m1.json: annotation 0: missing field 'preference'"):
        bad = [{k: v for k, v in r.items() if k != "preference"} for r in files[1]]
        paths[1].write_text(json.dumps(bad))
        lc.fit_difficulty(job, str(eval_set), [str(p) for p in paths], str(out))


@pytest.mark.parametrize("method", ["approximate", "joint", "official"])
def test_a_missing_preference_is_left_out_by_every_lc_method(tmp_path, method):
    rng = np.random.default_rng(4)
    rows = _annotations(40, rng)
    rows[3]["preference"] = None  # the judge gave no verdict on one instruction
    rows[7]["preference"] = float("nan")
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(rows))
    extra = {}
    if method == "joint":
        diff = tmp_path / "difficulty.json"
        diff.write_text(json.dumps({"models": ["a", "b"], "instructions": [
            {"index": i, "instruction": f"q{i}", "difficulty": float(np.sin(i))} for i in range(40)]}))  # fmt: skip
        extra["difficulty"] = str(diff)
    lc_data = {"path": str(_gamed_file(tmp_path / "df_gamed.csv", 40, rng))} if method == "official" else None
    out = tmp_path / "m.json"
    alpaca_metrics.metrics(_metrics_job(lc_method=method, lc_data=lc_data), str(ann), str(out), **extra)
    m = json.loads(out.read_text())["metrics"]
    assert m["n_not_preference"] == 2 and np.isfinite(m["length_controlled_winrate"])
    assert m["lc_method"].startswith(method)


def test_mt_bench_bootstrap_uses_the_configured_samples(tmp_path, monkeypatch):
    seen = []
    real = mt_bench.bootstrap_mean_ci
    monkeypatch.setattr(mt_bench, "bootstrap_mean_ci", lambda u, s, n=1000: seen.append(n) or real(u, s, n))
    qs = tmp_path / "q.jsonl"
    qs.write_text(json.dumps({"question_id": 1, "category": "writing", "turns": ["a", "b"]}) + "\n")
    js = tmp_path / "j.jsonl"
    js.write_text("".join(json.dumps({"question_id": 1, "model": "m", "score": s, "turn": t}) + "\n"
                          for s, t in ((7.0, 1), (5.0, 2))))  # fmt: skip
    mt_bench.metrics(
        {"cell": CELL, "bootstrap": {"samples": 123}}, str(qs), str(js), str(tmp_path / "m.json")
    )
    assert seen and set(seen) == {123}


def test_auto_lc_method_resolves_from_what_is_at_hand(tmp_path, monkeypatch):
    import copy

    from harness.workflow.config import load_config

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache
    cfg = load_config(str(ROOT / "config" / "demo.yaml"))
    b = cfg["evaluation"]["alpaca_eval"]
    assert lc.lc_resolved(cfg, "tiny-policy") == "joint"  # as configured
    b["lc_method"] = "auto"
    # 27 main-table cells, 12 of the budget sweep and 6 baselines, all judged on AlpacaEval
    assert len(lc.lc_models(cfg, "tiny-policy")) == 45
    assert lc.lc_resolved(cfg, "tiny-policy") == "joint"  # 45 >= min_models, no df_gamed.csv
    few = copy.deepcopy(cfg)
    few["evaluation"]["alpaca_eval"]["lc_joint"]["min_models"] = 46
    assert lc.lc_resolved(few, "tiny-policy") == "approximate"
    b["lc_data"] = {"path": str(_gamed_file(tmp_path / "df_gamed.csv", 4, np.random.default_rng(0)))}
    assert lc.lc_resolved(cfg, "tiny-policy") == "official"
    b["lc_data"] = {"path": str(tmp_path / "absent.csv")}
    assert lc.lc_resolved(cfg, "tiny-policy") == "joint"
    b["reference"] = "instructions"  # one reference for every policy: the base is judged too
    assert lc.lc_group(cfg, "tiny-policy") == "reference"
    assert len(lc.lc_models(cfg, "reference")) == 46


def test_oracle_grades_world_mt_bench_questions_through_the_fastchat_path(tmp_path):
    from harness.data import prepare as data

    qs, refs = tmp_path / "q.jsonl", tmp_path / "r.jsonl"
    questions = data.world_rows({"n": 6, "seed": 2}, "fastchat_questions")
    keys = data.world_rows({"n": 6, "seed": 2}, "fastchat_references")
    qs.write_text("".join(json.dumps(q) + "\n" for q in questions))
    refs.write_text("".join(json.dumps(r) + "\n" for r in keys))
    answers = tmp_path / "a.jsonl"
    rows = []
    for q, r in zip(questions, keys, strict=True):
        right = r["choices"][0]["turns"]
        turns = [right[0], "wrong"] if q["question_id"] % 2 else right  # odd questions: turn 2 wrong
        rows.append(
            {"question_id": q["question_id"], "model_id": "m", "choices": [{"index": 0, "turns": turns}]}
        )
    answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, meta = tmp_path / "j.jsonl", tmp_path / "j.meta.json"
    job = {"judge": {"backend": "oracle"}, "judge_name": "oracle", "ref_categories": ["numbers"]}
    mt_bench.judge(
        job,
        str(qs),
        str(answers),
        str(out),
        str(meta),
        str(ROOT / "data/demo/mt_bench_judge_prompts.jsonl"),
        str(refs),
    )
    judged = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(judged) == 12
    for j in judged:
        assert j["score"] == parse_rating(j["judgment"])  # the verdict text goes through FastChat's rule
        wrong = j["turn"] == 2 and j["question_id"] % 2
        assert (j["score"] < 10) if wrong else (j["score"] == 10.0)
        numbers = questions[j["question_id"] - 1]["category"] == "numbers"
        assert j["judge"][1].startswith("single-math-v1" if numbers else "single-v1")
    assert json.loads(meta.read_text())["judgments"] == 12


def test_mt_bench_answers_use_each_categorys_temperature():
    from types import SimpleNamespace

    from harness.core.records import MTQuestion
    from harness.evaluation import generate

    calls = []

    class Backend:
        def chat_prompt(self, conv):
            return conv[-1]["content"]

        def generate(self, prompts, temperature, **kw):
            calls.append((temperature, list(prompts)))
            return [[SimpleNamespace(text=f"{p}@{temperature}")] for p in prompts]

    qs = [
        MTQuestion(1, "writing", ("w?", "w2")),
        MTQuestion(2, "math", ("m?", "m2")),
        MTQuestion(3, "other", ("o?", "o2")),
    ]
    convs = [[{"role": "user", "content": q.turns[0]}] for q in qs]
    g = {"temperature": 0.3, "top_p": 1.0, "max_new_tokens": 8, "batch_size": 4}
    temps = {"writing": 0.7, "math": 0.0}
    out = generate._by_temperature(Backend(), convs, qs, temps, g, 0, "t")
    assert [a.text for a in out] == ["w?@0.7", "m?@0.0", "o?@0.3"]  # question order kept
    assert sorted(t for t, _ in calls) == [0.0, 0.3, 0.7]  # one call per temperature


def test_every_lc_method_names_its_measured_error():
    """The measured error table (benchmarks/lc_joint_loo.py) by fit size: a fit between two measured
    sizes takes the smaller's (larger) error; official has none; the default auto threshold is the
    first measured size where joint beats approximate on mean and 90th percentile."""
    from harness.evaluation.lc import APPROXIMATE_ERROR, JOINT_ERROR, expected_error
    from harness.workflow.config import load_config

    assert expected_error("official length_controlled_v1 (local file x)") is None
    assert expected_error("approximate (no difficulty)")["mean_abs"] == APPROXIMATE_ERROR[0]
    five = expected_error("joint (length_controlled_v1 formula, ...)", 5)
    assert (five["mean_abs"], five["measured_with_models"], five["fit_models"]) == (JOINT_ERROR[4][0], 4, 5)
    assert expected_error("joint", 45)["measured_with_models"] == max(JOINT_ERROR)
    means = [JOINT_ERROR[n][0] for n in sorted(JOINT_ERROR)]
    assert means == sorted(means, reverse=True)  # more models, less error
    cfg = load_config(str(ROOT / "config" / "demo.yaml"))
    first = min(
        n for n, (m, p90) in JOINT_ERROR.items() if m < APPROXIMATE_ERROR[0] and p90 < APPROXIMATE_ERROR[1]
    )
    assert cfg["evaluation"]["alpaca_eval"]["lc_joint"]["min_models"] >= first
