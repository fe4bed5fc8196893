"""Arena-Hard-Auto's scoring rules (harness/evaluation/arena_hard.py) against the rules as its tool
applies them (lmarena/arena-hard-auto at 196f6b82: gen_judgment.get_score, show_result,
utils/add_markdown_info, utils/math_utils), on hand-made judgments and the published answers in
../shared/data/arena_hard.

Tolerances: verdicts, battles, markdown counts and the score without style control are exact; the
style-controlled point score is the maximum-likelihood fit, equal to the tool's model and loss
optimised to convergence within 0.01 points (the tool's own 50 float32 LBFGS iterations stop up to
0.15 points short of it on these data); bootstrap intervals are not compared (the tool's resamples
are unseeded)."""

import json

import numpy as np
import pytest

from harness.evaluation import arena_hard as ah

from .conftest import ROOT

DATA = ROOT.parent / "shared/data/arena_hard"
PATTERNS = [r"\[\[([AB<>=]+)\]\]", r"\[([AB<>=]+)\]"]  # v0.1's and v2.0's, as judge_settings.json has them


def _shared(path):
    if not (DATA / path).exists():
        pytest.skip(f"{DATA / path} is absent (../shared/data, see its README)")
    return DATA / path


def test_the_verdict_patterns_are_the_published_ones():
    settings = json.loads(_shared("judge_settings.json").read_text())
    assert all(b["regex_patterns"] == PATTERNS for b in settings["benchmarks"].values())


@pytest.mark.parametrize(
    "text, label",
    [
        ("My final verdict is tie: [[A=B]]", "A=B"),
        ("first [[A>>B]], then on reflection [[B>A]]", "B>A"),  # the last match
        ("lower case [[b>>a]]", "B>>A"),  # read upper-cased
        ("only single brackets [A>B]", "A>B"),  # the second pattern
        ("[[A>B]] and later [B>>A]", "A>B"),  # the first pattern that matches wins
        ("no verdict here", None),
        ("[[AB]]", None),  # matched, but not a verdict: the question is left out
    ],
)
def test_a_verdict_is_the_last_match_of_the_first_pattern_that_matches(text, label):
    assert ah.verdict(text, PATTERNS) == label


def _record(uid, game1, game2):
    return {"uid": uid, "games": [{"score": game1}, {"score": game2}]}


def test_games_become_battles_from_the_models_side():
    # game 1: the baseline is A; game 2: the model is A
    records = [
        _record("q1", "A>B", "A>B"),  # the baseline better, then the model better: 0 and 1
        _record("q2", "B>>A", "A=B"),  # the model much better as B: 3 wins; a tie
        _record("q3", "A>>B", None),  # no verdict in game 2: left out, both games
        _record("q4", "B<A", "A<<B"),  # B<A is A>B: a baseline win; A<<B: the model much worse
    ]
    out, left_out = ah.battles(records)
    by = {}
    for uid, o in out:
        by.setdefault(uid, []).append(o)
    assert sorted(by["q1"]) == [0.0, 1.0]
    assert sorted(by["q2"]) == [0.5, 1.0, 1.0, 1.0]
    assert sorted(by["q4"]) == [0.0, 0.0, 0.0, 0.0]
    assert left_out == ["q3"] and "q3" not in by
    s = ah.score([o for _, o in out], seed=0)
    assert s["score"] == pytest.approx(100 * 4.5 / 10)  # 10 battles, 4.5 won
    assert s["ci"][0] <= s["score"] <= s["ci"][1]
    assert ah.battles(records, weight=1)[0].count(("q2", 1.0)) == 1  # the weight is a setting


def test_markdown_counts_equal_the_published_style_metadata():
    """Every one of the v2.0 baseline's 750 answers: headers per level, ordered and unordered list
    items, bold spans, counted after fenced code blocks are removed, as its metadata records them."""
    rows = [json.loads(line) for line in _shared("v2.0/model_answer/o3-mini-2025-01-31.jsonl").open()]
    assert len(rows) == 750
    for r in rows:
        meta = ah.style_metadata(r["messages"][-1]["content"]["answer"], r["metadata"]["token_len"])
        assert meta == r["metadata"], r["uid"]


def _tool_fit(outcomes, covariates, iterations=50, dtype="float32"):
    """The style-controlled win rate as the tool fits it (written here from its rules): a one-hot of
    the model (+1) and the baseline (-1) beside the covariates, every coefficient starting at 0.5,
    binary cross-entropy summed, torch's LBFGS (lr 0.1, tolerance 1e-9; the tool: 50 iterations in
    float32); the win probability exp(c_model) / (exp(c_model) + exp(c_baseline))."""
    import torch

    n, dtype = len(outcomes), getattr(torch, dtype)
    x = torch.tensor(np.column_stack([-np.ones(n), np.ones(n), covariates]), dtype=dtype)
    y = torch.tensor(outcomes, dtype=dtype)
    w = torch.nn.Parameter(torch.full((x.shape[1],), 0.5, dtype=dtype))
    opt = torch.optim.LBFGS([w], lr=0.1, max_iter=iterations, tolerance_grad=1e-9, tolerance_change=1e-9)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w, y, reduction="sum")
        loss.backward()
        return loss

    opt.step(closure)
    c = w.detach().numpy()
    return 100 * np.exp(c[1]) / (np.exp(c[1]) + np.exp(c[0]))


def _answers(path):
    return {r["uid"]: r["messages"][-1]["content"]["answer"] for r in map(json.loads, _shared(path).open())}


@pytest.mark.parametrize("control", [("length",), ("markdown",), ("length", "markdown")])
def test_style_controlled_score_equals_the_tools_fit(control):
    """Real answer pairs (v0.1: gpt-4-0613 against the baseline gpt-4-0314), battles drawn so that the
    longer answer tends to win; token counts by whitespace (the fit, not the tokenizer, is tested)."""
    model, base = (
        _answers("v0.1/model_answer/gpt-4-0613.jsonl"),
        _answers("v0.1/model_answer/gpt-4-0314.jsonl"),
    )
    uids = sorted(set(model) & set(base))
    assert len(uids) == 500
    rng = np.random.default_rng(7)
    meta_m, meta_b, outcomes = [], [], []
    for uid in uids:
        mm = ah.style_metadata(model[uid], len(model[uid].split()))
        mb = ah.style_metadata(base[uid], len(base[uid].split()))
        p = 1 / (
            1
            + np.exp(
                -(-0.6 + 2.0 * (mm["token_len"] - mb["token_len"]) / (mm["token_len"] + mb["token_len"] + 1))
            )
        )
        label = rng.choice(
            ["A>>B", "A>B", "A=B", "B>A", "B>>A"], p=[(1 - p) / 2, (1 - p) / 2, 0.0, p / 2, p / 2]
        )
        for o in ah.game_battles(label, model_is_a=False):
            meta_m.append(mm), meta_b.append(mb), outcomes.append(o)
    x = ah.style_covariates(meta_m, meta_b)
    cols = ([0] if "length" in control else []) + ([1, 2, 3] if "markdown" in control else [])
    ours = ah.style_controlled(outcomes, x, control, rounds=20, seed=0)
    y = np.array(outcomes)
    # the tool's model and loss, its optimizer run to convergence: the same maximum
    assert ours["score"] == pytest.approx(_tool_fit(y, x[:, cols], 500, "float64"), abs=0.01)
    # the tool's own 50 float32 iterations stop a little short of it (up to 0.15 points here)
    assert ours["score"] == pytest.approx(_tool_fit(y, x[:, cols]), abs=0.15)
    plain = ah.score(outcomes)["score"]
    if "length" in control:  # the model's answers are longer and length wins: control lowers its score
        assert ours["score"] < plain
    assert ours["ci"][0] < ours["score"] < ours["ci"][1]


def _files(tmp_path, n=6):
    """Questions, baseline and model answers (with style metadata), and judge settings, hand-made."""
    from harness.core.arena import answer_record

    qs = [{"uid": f"q{i}", "category": "hard", "prompt": f"question {i}"} for i in range(n)]
    base = [ah.style_metadata(f"base answer {i}", 3) for i in range(n)]
    texts = [f"my answer {i} " + "more words " * i + ("\n# Title\n" if i % 2 else "") for i in range(n)]
    paths = {
        "questions": tmp_path / "q.jsonl",
        "baseline": tmp_path / "base.jsonl",
        "answers": tmp_path / "mine.jsonl",
    }
    paths["questions"].write_text("".join(json.dumps(q) + "\n" for q in qs))
    paths["baseline"].write_text("".join(
        json.dumps(answer_record(q["uid"], "base-model", q["prompt"], f"base answer {i}", base[i])) + "\n"
        for i, q in enumerate(qs)
    ))  # fmt: skip
    paths["answers"].write_text("".join(
        json.dumps(answer_record(q["uid"], "p/rm/bcr/seed0", q["prompt"], t, ah.style_metadata(t, len(t.split())))) + "\n"
        for q, t in zip(qs, texts, strict=True)
    ))  # fmt: skip
    settings = {
        "settings_by_category": {"hard": {"baseline": "base-model", "system_prompt": "Judge fairly."}},
        "benchmarks": {
            "v0.1": {
                "regex_patterns": PATTERNS,
                "prompt_template": "Q: {QUESTION}\nA: {ANSWER_A}\nB: {ANSWER_B}",
            }
        },
    }
    paths["settings"] = tmp_path / "settings.json"
    paths["settings"].write_text(json.dumps(settings))
    return {k: str(v) for k, v in paths.items()}


def test_judgments_have_the_tools_layout_and_game_order(server, monkeypatch, tmp_path):
    """Every field of the tool's model_judgment records; game 1 shows the baseline as A, game 2 the model;
    a game without a verdict leaves its question out of the score, counted."""
    from harness.evaluation import arena_hard_judge

    def reply(body):
        user = body["messages"][-1]["content"]
        if "question 5" in user:
            return 200, "I cannot decide."
        if "A: base answer" in user:  # game 1: the model is B
            return 200, "The second is better. [[B>A]]"
        return 200, "Mine is much better: [[A>>B]]" if "question 0" in user else "[[B>A]]"

    url, script = server(reply)
    monkeypatch.setenv("TEST_JUDGE_KEY", "secret")
    judge = {"backend": "openai", "batch_size": 4, "max_prompt_tokens": 4096,
             "model": {"name": "judge", "source": "judge", "revision": None, "base_url": url, "api_key_env": "TEST_JUDGE_KEY"}}  # fmt: skip
    job = {"step": "judge", "benchmark": "arena_hard", "version": "v0.1", "oracle_strong_gap": 0.5, "judge_name": "judge", "judge": judge,
           "cell": {"policy": "p", "ranker": "rm", "regularizer": "bcr", "seed": 0}}  # fmt: skip
    f = _files(tmp_path)
    out, meta = tmp_path / "judgments.jsonl", tmp_path / "judgments.meta.json"
    arena_hard_judge.judge(
        job, f["questions"], f["answers"], str(out), str(meta), f["baseline"], f["settings"]
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["uid"] for r in rows] == [f"q{i}" for i in range(6)]
    for r in rows:
        assert set(r) == {"uid", "category", "judge", "model", "baseline", "games"}
        assert (r["category"], r["judge"], r["model"], r["baseline"]) == (
            "hard",
            "judge",
            "p/rm/bcr/seed0",
            "base-model",
        )
        g1, g2 = r["games"]
        for g in (g1, g2):
            assert set(g) == {"score", "judgment", "prompt"} and set(g["judgment"]) == {"answer"}
            assert [m["role"] for m in g["prompt"]] == ["system", "user"] and g["prompt"][0][
                "content"
            ] == "Judge fairly."
        assert "A: base answer" in g1["prompt"][1]["content"] and "B: my answer" in g1["prompt"][1]["content"]
        assert "A: my answer" in g2["prompt"][1]["content"] and "B: base answer" in g2["prompt"][1]["content"]
    assert [r["games"][0]["score"] for r in rows] == ["B>A"] * 5 + [None]
    assert [r["games"][1]["score"] for r in rows] == ["A>>B", "B>A", "B>A", "B>A", "B>A", None]
    assert json.loads(meta.read_text())["left_out"] == 1 and len(script.seen) == 12

    metrics_job = {"cell": job["cell"], "weight": 3, "bootstrap": {"samples": 50}, "token_count": "words",
                   "style_control": [["length"], ["markdown"], ["length", "markdown"]]}  # fmt: skip
    m_out = tmp_path / "metrics.json"
    ah.metrics(metrics_job, str(out), f["answers"], f["baseline"], str(m_out))
    m = json.loads(m_out.read_text())["metrics"]
    # q0: a win as B and a strong win as A (4 battles won); q1-q4: a win, then a loss; q5 left out
    assert (m["n_questions"], m["n_left_out"], m["n_battles"]) == (6, 1, 4 + 4 * 2)
    assert m["score"] == pytest.approx(100 * (4 + 4) / 12)
    sc = m["style_controlled"]
    assert set(sc) == {"length", "markdown", "length+markdown"}
    assert "lists" in sc["markdown"]["left_out"] and "bold" in sc["markdown"]["left_out"]  # no answer has any
    assert ah.table_values(m)["arena_hard"] == m["score"]


def test_the_worlds_questions_and_baseline_answers_pair_up(tmp_path):
    """The demo world's questions and its baseline model's answers come from the same held-out prompts,
    uid for uid; the baseline errs the task's habitual way at its noise level."""
    from harness.core.io import RecordError
    from harness.data import prepare
    from harness.demo import world

    qs = prepare.world_rows({"n": 20, "seed": 4}, "arena_hard_questions")
    base = prepare.world_rows({"n": 20, "seed": 4, "noise": 0.5}, "arena_hard_answers")
    assert [q["uid"] for q in qs] == [b["uid"] for b in base] and len({q["uid"] for q in qs}) == 20
    assert all(world.split_of(q["prompt"]) == "eval" and q["category"] == "arena-hard-v0.1" for q in qs)
    quality = [
        world.score_text(q["prompt"], b["messages"][-1]["content"]["answer"])
        for q, b in zip(qs, base, strict=True)
    ]
    assert 0 < sum(s == 1.0 for s in quality) < 20  # right and wrong answers both
    bad = tmp_path / "settings.json"
    bad.write_text(
        json.dumps(
            {
                "settings_by_category": {},
                "benchmarks": {"v0.1": {"regex_patterns": [], "prompt_template": "{QUESTION} {ANSWER_A}"}},
            }
        )
    )
    job = {"kind": "arena_hard_judge_settings", "source": {"path": str(bad)}}
    with pytest.raises(RecordError, match=r"settings.json: benchmarks/v0.1/prompt_template: needs"):
        prepare.run(job, str(tmp_path / "out.json"))


def _checkout(root, settings_py: str):
    """A directory in Arena-Hard-Auto's layout: utils/judge_utils.py and a version's config."""
    (root / "utils").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "utils/judge_utils.py").write_text(settings_py)
    (root / "config/arena-hard-v0.1.yaml").write_text(
        "judge_model: judge-x\ntemperature: 0.0\nmax_tokens: 4096\nbench_name: arena-hard-v0.1\n"
        "regex_patterns:\n  - \\[\\[([AB<>=]+)\\]\\]\n  - \\[([AB<>=]+)\\]\n"
        'prompt_template: "Q: {QUESTION}\\nA: {ANSWER_A}\\nB: {ANSWER_B}"\nmodel_list:\n  - m\n'
    )
    return root


UPSTREAM_PY = """import os
PROMPT = "Judge the two answers; end with [[A>B]] or another verdict."
os.system("touch ran")  # never run: the file is read, not executed
JUDGE_SETTINGS = {
    "arena-hard-v0.1": {"baseline": "base-model", "system_prompt": PROMPT},
    "creative_writing": {"baseline": "other", "system_prompt": "Judge the stories."},
}
"""


def test_judge_settings_from_the_tools_own_files(tmp_path, monkeypatch):
    """The paper config reads the judge settings from Arena-Hard-Auto's own files at its pinned commit
    (a checkout directory, or its raw tree: a URL ending in /): JUDGE_SETTINGS from judge_utils.py,
    read without running it, and each version's config YAML. (Built so from the tool's files at
    196f6b82, they equal ../shared's judge_settings.json, which was checked by hand.)"""
    from harness.core.hub import url_cache
    from harness.core.io import RecordError
    from harness.data import prepare

    monkeypatch.chdir(tmp_path)
    root = _checkout(tmp_path / "arena-hard-auto", UPSTREAM_PY)
    out = tmp_path / "settings.json"
    prepare.run({"kind": "arena_hard_judge_settings", "source": {"path": str(root)}}, str(out))
    got = json.loads(out.read_text())
    assert got["settings_by_category"]["arena-hard-v0.1"] == {
        "baseline": "base-model",
        "system_prompt": "Judge the two answers; end with [[A>B]] or another verdict.",
    }
    assert got["benchmarks"] == {"v0.1": {
        "judge_model": "judge-x", "temperature": 0.0, "max_tokens": 4096,
        "regex_patterns": ["\\[\\[([AB<>=]+)\\]\\]", "\\[([AB<>=]+)\\]"],
        "prompt_template": "Q: {QUESTION}\nA: {ANSWER_A}\nB: {ANSWER_B}"}}  # fmt: skip
    assert not (tmp_path / "ran").exists()
    # the same from its raw files at a commit, as `harness prefetch` caches them
    monkeypatch.setenv("HARNESS_URL_CACHE", str(tmp_path / "urls"))
    base = "https://raw.githubusercontent.com/lmarena/arena-hard-auto/abc123/"
    for name in ("utils/judge_utils.py", "config/arena-hard-v0.1.yaml", "config/arena-hard-v2.0.yaml"):
        dest = url_cache(base + name)
        dest.parent.mkdir(parents=True)
        v01 = (root / "config/arena-hard-v0.1.yaml").read_text()
        dest.write_text((root / name).read_text() if (root / name).exists() else v01.replace("v0.1", "v2.0"))
    prepare.run({"kind": "arena_hard_judge_settings", "source": {"url": base}}, str(out))
    fetched = json.loads(out.read_text())
    assert fetched["settings_by_category"] == got["settings_by_category"] and set(fetched["benchmarks"]) == {
        "v0.1",
        "v2.0",
    }
    # a settings dict that names something other than a string constant is refused, naming it
    bad = _checkout(tmp_path / "bad", UPSTREAM_PY.replace('"Judge the stories."', "make_prompt()"))
    with pytest.raises(RecordError, match=r"bad/: JUDGE_SETTINGS is not a literal of strings"):
        prepare.run({"kind": "arena_hard_judge_settings", "source": {"path": str(bad)}}, str(out))


def test_style_figure_and_table_show_what_style_control_changes(tmp_path):
    """Step arena-hard-style: per cell the score, the style-controlled score and their difference, seeds
    aggregated as in the main table (one run: its 90% interval), and the figure drawn from them."""
    from harness.reporting import style

    def metrics(cell, score, sc):
        path = tmp_path / f"{cell['ranker']}-{cell['seed']}.json"
        ci = None if sc is None else [sc + 1, sc + 3]  # the full fit outside its bootstrap interval
        m = {"score": score, "score_ci": [score - 2, score + 2],
             "style_controlled": {"length+markdown": {"score": sc, "ci": ci}}}  # fmt: skip
        path.write_text(json.dumps({"benchmark": "arena_hard", "cell": cell, "metrics": m}))
        return str(path)

    cell = {"policy": "p", "regularizer": "dpo"}
    inputs = [
        metrics({**cell, "ranker": "base", "regularizer": "base", "seed": 0}, 50.0, 50.0),
        metrics({**cell, "ranker": "rm", "seed": 0}, 60.0, 54.0),
        metrics({**cell, "ranker": "rm", "seed": 1}, 62.0, 55.0),
        metrics({**cell, "ranker": "ipr", "seed": 0}, 58.0, 58.5),
        metrics({**cell, "ranker": "sc-failed", "seed": 0}, 40.0, None),  # no style-controlled score
    ]
    out = {k: tmp_path / f"style.{k}" for k in ("csv", "md", "png", "pdf")}
    style.run({"cell": {}}, inputs, str(out["csv"]), str(out["md"]), str(out["png"]), str(out["pdf"]))
    md = out["md"].read_text()
    assert "| p | base | base | 1 | 50.00 [48.00, 52.00] | 50.00 [51.00, 53.00] | +0.00 |" in md
    assert "| p | rm | dpo | 2 | 61.00 ± " in md and "| 54.50 ± " in md and "| -6.50 |" in md
    assert "| p | ipr | dpo | 1 | 58.00 [56.00, 60.00] | 58.50 [59.50, 61.50] | +0.50 |" in md
    assert "| p | sc-failed | dpo | 1 | 40.00 [38.00, 42.00] | — | — |" in md
    assert (
        out["png"].stat().st_size > 10_000
        and out["pdf"].exists()
        and "style_change" in out["csv"].read_text()
    )


def test_a_baseline_other_than_the_settings_name_is_refused(tmp_path):
    """The judge settings name each category's baseline (v2.0 judges creative writing against another
    model than the hard prompts): answers of another model are refused in one line, not judged."""
    from harness.core.io import RecordError
    from harness.evaluation import arena_hard_judge

    f = _files(tmp_path)
    path = tmp_path / "settings.json"
    settings = json.loads(path.read_text())
    settings["settings_by_category"]["hard"]["baseline"] = "gemini-2.0-flash-001"
    path.write_text(json.dumps(settings))
    job = {"step": "judge", "benchmark": "arena_hard", "version": "v0.1", "judge": {"backend": "oracle"}}
    with pytest.raises(RecordError, match=r"base.jsonl: no answers of gemini-2.0-flash-001, the baseline the judge "
                       r"settings name for category 'hard' \(6 of 6 questions; the baseline answers are base-model's\)"):  # fmt: skip
        arena_hard_judge.judge(job, f["questions"], f["answers"], str(tmp_path / "j.jsonl"),
                               str(tmp_path / "m.json"), f["baseline"], f["settings"])  # fmt: skip


def test_v2_judges_each_category_against_its_own_baseline(server, monkeypatch, tmp_path):
    """v2.0's layout: hard prompts against one baseline, creative writing against another. The baseline
    files are prepared into one; each question is judged against its category's baseline; the metrics
    give each category's score apart (the tool's per-category leaderboards) beside the overall one."""
    from harness.core.arena import answer_record
    from harness.core.io import RecordError
    from harness.data import prepare
    from harness.evaluation import arena_hard_judge

    f = _files(tmp_path)  # six "hard" questions against base-model
    extra = [{"uid": f"c{i}", "category": "creative", "prompt": f"story {i}"} for i in range(4)]
    with open(f["questions"], "a") as fh:
        fh.writelines(json.dumps(q) + "\n" for q in extra)
    with open(f["answers"], "a") as fh:
        fh.writelines(json.dumps(answer_record(q["uid"], "p/rm/bcr/seed0", q["prompt"], f"my story {i}",
                                               ah.style_metadata(f"my story {i}", 3))) + "\n"
                      for i, q in enumerate(extra))  # fmt: skip
    other = tmp_path / "other.jsonl"
    other.write_text("".join(
        json.dumps(answer_record(q["uid"], "other-model", q["prompt"], f"other story {i} " + "x " * i,
                                 ah.style_metadata("", 0))) + "\n" for i, q in enumerate(extra)
    ))  # fmt: skip
    settings = json.loads(open(f["settings"]).read())
    settings["settings_by_category"]["creative"] = {
        "baseline": "other-model",
        "system_prompt": "Judge stories.",
    }
    open(f["settings"], "w").write(json.dumps(settings))
    both = str(tmp_path / "baselines.jsonl")
    sources = [{"path": f["baseline"]}, {"path": str(other)}]
    assert prepare.run({"kind": "arena_hard_baseline", "source": sources}, both) == 10
    with pytest.raises(
        RecordError, match=r"other.jsonl: answers of other-model, which .*other.jsonl has given"
    ):
        prepare.run({"kind": "arena_hard_baseline", "source": [*sources, {"path": str(other)}]}, both + ".x")

    url, script = server(
        lambda body: (200, "no verdict" if "story 3" in body["messages"][-1]["content"] else "[[A>B]]")
    )
    monkeypatch.setenv("TEST_JUDGE_KEY", "secret")
    judge = {"backend": "openai", "batch_size": 4, "max_prompt_tokens": 4096,
             "model": {"name": "judge", "source": "judge", "revision": None, "base_url": url, "api_key_env": "TEST_JUDGE_KEY"}}  # fmt: skip
    job = {"step": "judge", "benchmark": "arena_hard", "version": "v0.1", "judge_name": "judge", "judge": judge,
           "cell": {"policy": "p", "ranker": "rm", "regularizer": "bcr", "seed": 0}}  # fmt: skip
    out = tmp_path / "judgments.jsonl"
    arena_hard_judge.judge(
        job, f["questions"], f["answers"], str(out), str(tmp_path / "m.json"), both, f["settings"]
    )
    rows = {r["uid"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert {u: r["baseline"] for u, r in rows.items()} == {**{f"q{i}": "base-model" for i in range(6)},
                                                         **{f"c{i}": "other-model" for i in range(4)}}  # fmt: skip
    assert "A: other story 2" in rows["c2"]["games"][0]["prompt"][1]["content"]
    assert rows["c2"]["games"][0]["prompt"][0]["content"] == "Judge stories."
    assert "B: base answer 3" in rows["q3"]["games"][1]["prompt"][1]["content"]

    metrics_job = {"cell": job["cell"], "weight": 3, "bootstrap": {"samples": 50}, "token_count": "words",
                   "style_control": [["length"]]}  # fmt: skip
    ah.metrics(metrics_job, str(out), f["answers"], both, str(tmp_path / "metrics.json"), f["questions"])
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    # assistant A wins every game it has a verdict for: one game each way; c3 has none, left out
    assert m["score"] == pytest.approx(50.0) and (m["n_questions"], m["n_left_out"]) == (10, 1)
    cats = m["categories"]
    assert {c: (v["baseline"], v["n_questions"], v["n_left_out"], v["n_battles"]) for c, v in cats.items()} == {
        "creative": ("other-model", 4, 1, 6), "hard": ("base-model", 6, 0, 12)}  # fmt: skip
    assert cats["creative"]["score"] == pytest.approx(50.0) and "length" in cats["hard"]["style_controlled"]

    # the style table gives each category its own row under the cell's overall one, the CSV its columns
    from harness.reporting import style

    metrics_job["style_control"] = [["length", "markdown"]]
    ah.metrics(metrics_job, str(out), f["answers"], both, str(tmp_path / "metrics.json"), f["questions"])
    tables = {k: tmp_path / f"style.{k}" for k in ("csv", "md", "png", "pdf")}
    style.run(
        {"cell": {}}, [str(tmp_path / "metrics.json")], *(str(tables[k]) for k in ("csv", "md", "png", "pdf"))
    )
    md = tables["md"].read_text().splitlines()
    assert md[0].startswith("| policy | ranker | regularizer | seeds | category | Arena-Hard (%) |")
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]

    def shown(v):
        return f"{v['score']:.2f} [{v['score_ci'][0]:.2f}, {v['score_ci'][1]:.2f}]"

    rows = [line.split(" | ")[4:6] for line in md[2:5]]
    assert rows == [["all", shown(m)], *([c, shown(m["categories"][c])] for c in ("creative", "hard"))]
    header = tables["csv"].read_text().splitlines()[0].split(",")
    assert {"arena_hard/creative", "arena_hard_sc/hard", "style_change/creative"} <= set(header)

    # two seeds: a category's mean over them, its spread not taken for a category of its own
    second = json.loads((tmp_path / "metrics.json").read_text())
    second["cell"]["seed"] = 1
    second["metrics"]["categories"]["hard"]["score"] = 40.0
    (tmp_path / "seed1.json").write_text(json.dumps(second))
    style.run({"cell": {}}, [str(tmp_path / "metrics.json"), str(tmp_path / "seed1.json")],
              *(str(tables[k]) for k in ("csv", "md", "png", "pdf")))  # fmt: skip
    md = tables["md"].read_text().splitlines()
    rows = [line.split(" | ")[3:5] for line in md[2:5]]
    assert rows == [["2", "all"], ["2", "creative"], ["2", "hard"]] and md[5] == ""  # no "hard_std" row
    assert md[4].split(" | ")[5].startswith(f"{(m['categories']['hard']['score'] + 40) / 2:.2f} ± ")


def test_a_sparse_covariate_that_separates_the_outcomes_is_left_out_not_run_off():
    """A covariate only a few battles carry (answers with a header are rare), whose battles all went one
    way, has no maximum-likelihood coefficient: Newton's method would run it and the intercept off (a
    bootstrap interval reaching down to a few percent). It is left out of that fit, and said."""
    rng = np.random.default_rng(5)
    n = 240
    length = rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-0.4 + 0.8 * length)))).astype(float)
    headers = np.zeros(n)
    headers[:4] = 1.0  # four battles with a header, all won
    y[:4] = 1.0
    x = np.column_stack([length, (headers - headers.mean()) / headers.std(ddof=1), np.zeros((n, 2))])
    x[:, 2:] = rng.normal(0, 1, (n, 2))
    out = ah.style_controlled(y, x, ("length", "markdown"), rounds=100, seed=0)
    assert "headers" in out["left_out"] and "headers" not in out["style_coefficients"]
    assert out["ci"][0] < out["score"] < out["ci"][1] and out["ci"][1] - out["ci"][0] < 20, out
