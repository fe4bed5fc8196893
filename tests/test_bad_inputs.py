"""Bad inputs and faults, as a hostile but realistic user meets them.

Every case asserts what the README's "Bad input" section promises: a non-zero exit with exactly one
line, ``error: ...``, that names the place (file and line, key path, field, server, model, path), no
traceback, and no output left that looks complete; or, where the run should go on, a counted outcome.
The step runs in this process (``harness.cli.main``): any exception other than the one-line exit fails
the test with its traceback, which is what the user would have seen. A few cases run as the user runs
them (``python -m harness``, ``snakemake``) and read the real stderr.
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import cli

from .conftest import ROOT, ipr_job, model_ref, pythonpath

PATHS = {
    "built_model": "results/models/tiny/{name}",
    "tuned_model": "results/models/tuned/{name}",
    "checkpoint": "results/checkpoints/{policy}/{ranker}/{regularizer}/seed{seed}",
}


def fails(argv: list[str], *names: str, absent: tuple = ()) -> str:
    """Run ``harness argv``; it must exit with one ``error:`` line containing every one of ``names``,
    and leave none of ``absent`` behind (nor a temp file beside it)."""
    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in argv])
    msg = info.value.code
    assert isinstance(msg, str), f"exit code {msg!r}, not a message"
    assert msg.startswith("error: ") and "\n" not in msg, msg
    for name in names:
        assert str(name) in msg, f"{name!r} not named in: {msg}"
    for path in absent:
        path = Path(path)
        assert not path.exists(), f"{path} left behind"
        if path.parent.exists():
            assert not [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")], (
                "temp file left"
            )
    return msg


def lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def job_file(tmp_path: Path, job: dict, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(job))
    return path


def demo_config() -> dict:
    return yaml.safe_load((ROOT / "config/demo.yaml").read_text())


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # configs name their files relative to the checkout


# ---------------------------------------------------------------- experiment configs (check-config)


def _cfg_case(mutate):
    cfg = demo_config()
    mutate(cfg)
    return cfg


CONFIG_CASES = {
    "misspelled_top_level_key": (lambda c: c.update(seedz=c.pop("seeds")), ["(top level)", "seedz"]),
    "wrong_type_nested": (lambda c: c["sampling"].update(k="four"), ["sampling/k", "'four'"]),
    "negative_count": (lambda c: c["sampling"].update(k=-1), ["sampling/k"]),
    "seed_given_twice": (lambda c: c.update(seeds=[0, 1, 0]), ["seeds", "non-unique"]),
    "unknown_model_reference": (
        lambda c: c.update(policies=["no-such-model"]),
        ["policies/0", "no-such-model"],
    ),
    "unknown_regularizer_in_table": (
        lambda c: c["main_table"].update(regularizers=["dpo", "nope"]),
        ["main_table/regularizers/1", "nope"],
    ),
    "budget_sweep_of_nll": (
        lambda c: c["budget_sweep"][0].update(regularizers=["nll", "bcr"]),
        ["budget_sweep/0/regularizers/0", "nll"],
    ),
    "source_path_missing": (
        lambda c: c.update(prompts={"path": "data/demo/nope.jsonl"}),
        ["prompts/path", "nope.jsonl"],
    ),
    "judge_prompts_missing": (
        lambda c: c["evaluation"]["mt_bench"].update(judge_prompts={"path": "gone.jsonl"}),
        ["evaluation/mt_bench/judge_prompts/path", "gone.jsonl"],
    ),
    "two_sources_at_once": (
        lambda c: c.update(prompts={"path": "data/demo/prompts.jsonl", "world": {"n": 3}}),
        ["prompts"],
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_config_error_names_the_key_path(case, tmp_path, at_root):
    mutate, names = CONFIG_CASES[case]
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_cfg_case(mutate)))
    fails(["check-config", path], str(path), *names)


def test_unknown_judge_template_is_named(tmp_path, at_root):
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg["rankers"]["ipr-llama70b"]["judge"]["template"] = "pairwise_v9.txt"
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    fails(["check-config", path], "rankers/ipr-llama70b/judge/template", "pairwise_v9.txt", "pairwise_v1.txt")


@pytest.mark.parametrize(
    "text, names",
    [
        ("seeds: [0, 1\nsampling: {k: 2}\n", [":2:", "not valid YAML"]),
        ("models:\n  a: 1\n b: 2\n", [":3:2:", "not valid YAML"]),
        ("- a list\n- not a mapping\n", ["expected a mapping"]),
        (b"seeds: [0]\nname: caf\xe9\n", ["not UTF-8"]),
        (
            "seeds: [0]\nsampling: {k: 2}\nsampling: {k: 3}\n",
            [":3:1:", "key 'sampling' repeats the one on line 2"],
        ),
    ],
    ids=["unclosed_flow", "bad_indentation", "top_level_list", "latin1_byte", "key_given_twice"],
)
def test_config_file_errors_name_line_and_column(text, names, tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    fails(["check-config", path], str(path), *names)


def test_missing_config_file(tmp_path):
    fails(["check-config", tmp_path / "none.yaml"], "none.yaml", "no such file")


# ----------------------------------------------------------------------- job configs (any step)


@pytest.mark.parametrize(
    "text, names",
    [
        (None, ["no such file"]),
        ("step: prepare\nsource: {path: [\n", ["not valid YAML"]),
        ("- kind: prompts\n", ["expected a mapping"]),
    ],
    ids=["missing", "broken_yaml", "not_a_job_config"],
)
def test_bad_job_config(text, names, tmp_path):
    path = tmp_path / "job.yaml"
    if text is not None:
        path.write_text(text)
    out = tmp_path / "out.jsonl"
    fails(["prepare-data", "--config", path, "--output", out], str(path), *names, absent=[out])


# -------------------------------------------------------------- data records (prepare-data)

GOOD_PROMPT = {"id": "a", "prompt": "Count the letters."}
MT_Q = {"question_id": 81, "category": "writing", "turns": ["Write a haiku.", "Now a limerick."]}
ALPACA = {"instruction": "Say hi.", "output": "Hi.", "generator": "ref"}
PREF = {"id": "p", "prompt": "Q?", "chosen": "good", "rejected": "bad"}

DATA_CASES = {
    # kind, file content (rows or raw bytes), suffix, what the line must name
    "prompts_duplicate_id": ("prompts", [GOOD_PROMPT, GOOD_PROMPT], ":2:", "'id' repeats 'a' from line 1"),
    "prompts_empty_text": ("prompts", [GOOD_PROMPT, {"id": "b", "prompt": "  "}], ":2:", "'prompt' is empty"),
    "prompts_missing_field": ("prompts", [{"id": "c", "text": "hi"}], ":1:", "missing field 'prompt'"),
    "prompts_wrong_type": ("prompts", [{"id": "c", "prompt": ["hi"]}], ":1:", "'prompt' should be str"),
    "prompts_not_json": ("prompts", [GOOD_PROMPT, '{"id": "b", "prompt": '], ":2:", "not valid JSON"),
    "prompts_not_an_object": ("prompts", [GOOD_PROMPT, "[1, 2]"], ":2:", "expected a JSON object"),
    "prompts_not_utf8": (
        "prompts",
        b'{"id": "a", "prompt": "ok"}\n{"id": "b", "prompt": "caf\xe9"}\n',
        ":2:",
        "not UTF-8",
    ),
    "prompts_empty_file": ("prompts", [], "", "no prompts"),
    "mt_bench_one_turn": (
        "fastchat_questions",
        [{**MT_Q, "turns": ["Only one."]}],
        ":1:",
        "'turns' must be a list of 2",
    ),
    "mt_bench_three_turns": (
        "fastchat_questions",
        [{**MT_Q, "turns": ["a", "b", "c"]}],
        ":1:",
        "got 3 items",
    ),
    "mt_bench_empty_turn": ("fastchat_questions", [{**MT_Q, "turns": ["a", ""]}], ":1:", "non-empty strings"),
    "mt_bench_duplicate_id": ("fastchat_questions", [MT_Q, MT_Q], ":2:", "'question_id' repeats 81"),
    "mt_bench_id_not_int": (
        "fastchat_questions",
        [{**MT_Q, "question_id": "81"}],
        ":1:",
        "'question_id' should be int",
    ),
    "alpaca_not_a_list": ("alpaca_instructions", b'{"instruction": "x"}', "", "non-empty JSON list"),
    "alpaca_duplicate_instruction": (
        "alpaca_instructions",
        json.dumps([ALPACA, ALPACA]).encode(),
        ": record 1",
        "repeats",
    ),
    "alpaca_empty_instruction": (
        "alpaca_instructions",
        json.dumps([{**ALPACA, "instruction": " "}]).encode(),
        ": record 0",
        "empty",
    ),
    "alpaca_missing_generator": (
        "alpaca_instructions",
        json.dumps([{"instruction": "x", "output": "y"}]).encode(),
        ": record 0",
        "'generator'",
    ),
    "preferences_empty_chosen": ("preferences", [{**PREF, "chosen": ""}], ":1:", "'chosen' is empty"),
    "preferences_same_texts": ("preferences", [{**PREF, "rejected": "good"}], ":1:", "are the same text"),
    "demonstrations_duplicate_id": (
        "demonstrations",
        [{"id": 1, "prompt": "q", "completion": "a"}, {"id": 1, "prompt": "r", "completion": "b"}],
        ":2:",
        "'id' repeats '1'",
    ),
    "judge_prompt_unknown_field": (
        "fastchat_judge_prompts",
        [
            {
                "name": n,
                "type": "single",
                "system_prompt": "s",
                "prompt_template": t,
                "output_format": "[[r]]",
            }
            for n, t in [
                ("single-v1", "Q {question} A {answer} {rubric}"),
                ("single-v1-multi-turn", "{question_1}"),
                ("single-math-v1", "{question}"),
                ("single-math-v1-multi-turn", "{question_1}"),
            ]
        ],
        "",
        "'single-v1': prompt_template has a field MT-Bench judging does not fill ('rubric')",
    ),
    "references_without_turns": (
        "fastchat_references",
        [{"question_id": 1, "choices": [{}]}],
        ":1:",
        "'choices'",
    ),
    "judge_prompts_incomplete": (
        "fastchat_judge_prompts",
        [
            {
                "name": "single-v1",
                "type": "single",
                "system_prompt": "s",
                "prompt_template": "t",
                "output_format": "[[r]]",
            }
        ],
        "",
        "no judge prompt named single-v1-multi-turn",
    ),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_record_names_file_line_and_field(case, tmp_path):
    kind, content, where, what = DATA_CASES[case]
    src = tmp_path / ("data.json" if kind == "alpaca_eval" else "data.jsonl")
    if isinstance(content, bytes):
        src.write_bytes(content)
    else:
        lines(src, content)
    out = tmp_path / "out" / src.name
    job = job_file(tmp_path, {"step": "prepare_data", "kind": kind, "source": {"path": str(src)}})
    fails(["prepare-data", "--config", job, "--output", out], f"{src}{where}", what, absent=[out])


def test_source_directory_instead_of_file(tmp_path):
    job = job_file(tmp_path, {"step": "prepare_data", "kind": "prompts", "source": {"path": str(tmp_path)}})
    fails(
        ["prepare-data", "--config", job, "--output", tmp_path / "o.jsonl"], str(tmp_path), "is a directory"
    )


def test_source_changed_after_planning(tmp_path):
    """The job config carries the source's hash (harness/workflow/jobs.py): a file edited after the workflow
    planned the job is refused, not read as if it were the planned one."""
    from harness.core.io import file_sha256

    src = lines(tmp_path / "p.jsonl", [GOOD_PROMPT])
    sha = file_sha256(str(src))
    lines(src, [GOOD_PROMPT, {"id": "b", "prompt": "More."}])
    out = tmp_path / "o.jsonl"
    job = job_file(
        tmp_path,
        {"step": "prepare_data", "kind": "prompts", "source": {"path": str(src)}, "source_sha256": sha},
    )
    fails(["prepare-data", "--config", job, "--output", out], str(src), "changed since", absent=[out])


def test_prepare_job_config_follows_the_source_content(tmp_path, monkeypatch):
    """A changed source is a changed job config, so Snakemake reruns prepare_data."""
    from harness.workflow import jobs

    monkeypatch.chdir(tmp_path)
    src = lines(tmp_path / "p.jsonl", [GOOD_PROMPT])
    cfg = {"prompts": {"path": "p.jsonl"}}
    first = jobs.resolve(cfg, "prepare_data", "prompts.jsonl", PATHS)
    lines(src, [GOOD_PROMPT, {"id": "b", "prompt": "More."}])
    os.utime(src, ns=(1, 1))
    second = jobs.resolve(cfg, "prepare_data", "prompts.jsonl", PATHS)
    assert first["source_sha256"] != second["source_sha256"]


# ------------------------------------------------------------- step inputs (between steps)


def _completions(tmp_path, rows):
    return lines(tmp_path / "completions.jsonl", rows)


COMPLETION = {
    "id": "a",
    "prompt": "q",
    "completions": [{"text": "x", "n_tokens": 1, "finish_reason": "stop"}],
}


@pytest.mark.parametrize(
    "rows, where, what",
    [
        ([COMPLETION, COMPLETION], ":2:", "'id' repeats 'a'"),
        (
            [{**COMPLETION, "completions": [{"text": "x", "n_tokens": 1, "finish_reason": "eos"}]}],
            ":1:",
            "finish_reason",
        ),
        ([{**COMPLETION, "completions": [{"text": "x"}]}], ":1: completions[0]", "missing field 'n_tokens'"),
        ([{**COMPLETION, "prompt": ""}], ":1:", "'prompt' is empty"),
    ],
    ids=["duplicate_id", "unknown_finish_reason", "completion_missing_field", "empty_prompt"],
)
def test_rank_refuses_bad_completions(rows, where, what, tmp_path):
    src = _completions(tmp_path, rows)
    job = job_file(tmp_path, {"step": "rank", **ipr_job(tmp_path / "no-model")})
    out = tmp_path / "pairs.jsonl"
    meta = tmp_path / "pairs.meta.json"
    argv = ["rank", "--config", job, "--completions", src, "--output", out]
    argv += ["--judgments", tmp_path / "j.jsonl", "--meta", meta]
    fails(argv, f"{src}{where}", what, absent=[out, meta])


MT_ANSWER = {"question_id": 81, "model_id": "m", "choices": [{"index": 0, "turns": ["a1", "a2"]}]}


@pytest.mark.parametrize(
    "answers, where, what",
    [
        ([{**MT_ANSWER, "choices": [{"turns": ["only one"]}]}], ":1: choices[0]", "list of 2"),
        ([MT_ANSWER, MT_ANSWER], ":2:", "'question_id' repeats 81"),
        ([{k: v for k, v in MT_ANSWER.items() if k != "model_id"}], ":1:", "missing field 'model_id'"),
    ],
    ids=["answer_with_one_turn", "answer_twice", "answer_without_model"],
)
def test_mt_bench_judge_refuses_bad_answers(answers, where, what, tmp_path):
    questions = lines(tmp_path / "q.jsonl", [MT_Q])
    src = lines(tmp_path / "answers.jsonl", answers)
    job = job_file(
        tmp_path,
        {"step": "judge", "benchmark": "mt_bench", "ref_categories": [], "judge": {"backend": "oracle"}},
    )
    out = tmp_path / "judgments.jsonl"
    argv = ["judge", "--config", job, "--eval-set", questions, "--answers", src, "--output", out]
    argv += ["--meta", tmp_path / "m.json", "--judge-prompts", src, "--references", src]
    fails(argv, f"{src}{where}", what, absent=[out])


JUDGMENT = {"question_id": 81, "model": "m", "turn": 1, "score": 7.0, "judgment": "[[7]]"}


@pytest.mark.parametrize(
    "rows, where, what",
    [
        ([{**JUDGMENT, "turn": 3}], ":1:", "'turn' must be 1 or 2"),
        (
            ['{"question_id": 81, "model": "m", "turn": 1, "score": NaN}'],
            ":1:",
            "'score' is nan, not a finite rating",
        ),
        ([{**JUDGMENT, "score": "7"}], ":1:", "'score' should be int/float"),
        ([JUDGMENT, JUDGMENT], ":2:", "repeats"),
    ],
    ids=["turn_3", "nan_score", "score_as_text", "judged_twice"],
)
def test_mt_bench_metrics_refuses_bad_judgments(rows, where, what, tmp_path):
    questions = lines(tmp_path / "q.jsonl", [MT_Q])
    src = lines(tmp_path / "judgments.jsonl", rows)
    job = job_file(
        tmp_path, {"step": "metrics", "benchmark": "mt_bench", "cell": {}, "bootstrap": {"samples": 10}}
    )
    out = tmp_path / "metrics.json"
    fails(
        ["metrics", "--config", job, "--eval-set", questions, "--judgments", src, "--output", out],
        f"{src}{where}",
        what,
        absent=[out],
    )


ANNOTATION = {"instruction": "x", "output_1": "a", "output_2": "b", "preference": 1.2}


@pytest.mark.parametrize(
    "rows, where, what",
    [
        (
            [{**ANNOTATION, "preference": 3}],
            "annotation 0",
            "'preference' must be a number in [1, 2], 0 (a draw)",
        ),
        ([{**ANNOTATION, "preference": "2"}], "annotation 0", "'preference'"),
        (
            [{k: v for k, v in ANNOTATION.items() if k != "preference"}],
            "annotation 0",
            "missing field 'preference'",
        ),
        ([], "", "non-empty JSON list"),
    ],
    ids=["preference_out_of_range", "preference_as_text", "preference_missing", "no_annotations"],
)
def test_alpaca_metrics_refuses_bad_annotations(rows, where, what, tmp_path):
    src = tmp_path / "annotations.json"
    src.write_text(json.dumps(rows))
    job = job_file(
        tmp_path, {"step": "metrics", "benchmark": "alpaca_eval", "cell": {}, "lc_method": "approximate"}
    )
    out = tmp_path / "metrics.json"
    fails(
        ["metrics", "--config", job, "--judgments", src, "--output", out], f"{src}", where, what, absent=[out]
    )


@pytest.mark.parametrize(
    "prompt, chosen, what",
    [("q", " ", "'chosen' has an empty answer"), ("q", "r", "'chosen' and 'rejected' are the same answer"),
     ("", "c", "'prompt' has no text"), (" \n", "c", "'prompt' has no text")],
    ids=["empty_answer", "same_answers", "empty_prompt", "blank_prompt"],
)  # fmt: skip
def test_train_refuses_a_pair_it_cannot_learn_from(prompt, chosen, what, tmp_path):
    from harness.workflow.config import section_defaults

    pair = {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
    }
    pair["rejected"] = [{"role": "assistant", "content": "r"}]
    src = lines(tmp_path / "pairs.jsonl", [pair])
    job = {"step": "train", "seed": 0, "regularizer": {"name": "dpo", "kind": "none"}}
    job.update(training=section_defaults("training"), model=model_ref(tmp_path / "none"), cell={})
    out = tmp_path / "ckpt"
    argv = ["train", "--config", job_file(tmp_path, job), "--pairs", src, "--output", out]
    argv += ["--log", tmp_path / "log.jsonl", "--summary", tmp_path / "summary.json"]
    fails(argv, f"{src}:1:", what, absent=[out, tmp_path / "summary.json"])


def test_reference_logps_refuses_a_pair_without_a_prompt(tmp_path):
    """Issue 30 case 7: reference-logps wrote log-probs for pairs whose prompt was empty."""
    from harness.workflow.config import section_defaults

    pair = {"prompt": [{"role": "user", "content": ""}], "chosen": [{"role": "assistant", "content": "c"}],
            "rejected": [{"role": "assistant", "content": "r"}]}  # fmt: skip
    src = lines(tmp_path / "pairs.jsonl", [pair])
    job = {
        "step": "reference_logps",
        "seed": 0,
        "training": section_defaults("training"),
        "model": model_ref(tmp_path / "none"),
    }
    out = tmp_path / "ref.json"
    fails(["reference-logps", "--config", job_file(tmp_path, job), "--pairs", src, "--output", out],
          f"{src}:1:", "'prompt' has no text", absent=[out])  # fmt: skip


# ------------------------------------------------------------------ judges and endpoints


def _alpaca_judge_job(url: str, max_failures: int = 0) -> dict:
    judge = {
        "backend": "openai",
        "model": {
            "name": "j",
            "source": "judge-model",
            "revision": None,
            "base_url": url,
            "api_key_env": "TEST_JUDGE_KEY",
        },
        "template": "pairwise_v1.txt",
        "batch_size": 4,
        "max_prompt_tokens": 4096,
        "retries": 0,
        "timeout_s": 5,
        "concurrency": 2,
        "max_failures": max_failures,
    }
    return {"step": "judge", "benchmark": "alpaca_eval", "judge_name": "j", "judge": judge}


def _alpaca_inputs(tmp_path, n=3):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps([{**ALPACA, "instruction": f"Say hi {i}."} for i in range(n)]))
    ans = tmp_path / "answers.json"
    ans.write_text(
        json.dumps([{**ALPACA, "instruction": f"Say hi {i}.", "generator": "m"} for i in range(n)])
    )
    return ref, ans


def test_endpoint_that_fails_names_server_and_message(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JUDGE_KEY", "k")
    url, _ = server([(500, "model is overloaded")])
    ref, ans = _alpaca_inputs(tmp_path)
    out = tmp_path / "annotations.json"
    argv = ["judge", "--config", job_file(tmp_path, _alpaca_judge_job(url)), "--eval-set", ref]
    argv += [
        "--answers",
        ans,
        "--output",
        out,
        "--meta",
        tmp_path / "m.json",
        "--cache",
        tmp_path / "c.jsonl",
    ]
    fails(argv, url, "model is overloaded", "3 judge prompts failed", absent=[out])


def test_endpoint_unreachable_names_server(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JUDGE_KEY", "k")
    url = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    ref, ans = _alpaca_inputs(tmp_path, 1)
    out = tmp_path / "annotations.json"
    argv = ["judge", "--config", job_file(tmp_path, _alpaca_judge_job(url)), "--eval-set", ref]
    argv += ["--answers", ans, "--output", out, "--meta", tmp_path / "m.json"]
    fails(argv, url, absent=[out])


def test_missing_api_key_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_JUDGE_KEY", raising=False)
    ref, ans = _alpaca_inputs(tmp_path, 1)
    argv = [
        "judge",
        "--config",
        job_file(tmp_path, _alpaca_judge_job("http://127.0.0.1:9/v1")),
        "--eval-set",
        ref,
    ]
    argv += ["--answers", ans, "--output", tmp_path / "a.json", "--meta", tmp_path / "m.json"]
    fails(argv, "TEST_JUDGE_KEY")


def test_unparsable_replies_are_cached_counted_and_reasked_on_request(server, tmp_path, monkeypatch):
    """A run goes on past replies that name no verdict: each is a tie, counted, and cached; a rerun
    asks nothing; with ``reask_unparsable`` the cached ones are asked again and the new replies kept."""
    monkeypatch.setenv("TEST_JUDGE_KEY", "k")
    url, script = server([(200, "I cannot decide.")])
    ref, ans = _alpaca_inputs(tmp_path)
    job = _alpaca_judge_job(url)
    cache = tmp_path / "c.jsonl"

    def run(job):
        argv = ["judge", "--config", job_file(tmp_path, job), "--eval-set", ref, "--answers", ans]
        cli.main(
            [
                str(a)
                for a in [
                    *argv,
                    "--output",
                    tmp_path / "a.json",
                    "--meta",
                    tmp_path / "m.json",
                    "--cache",
                    cache,
                ]
            ]
        )
        return json.loads((tmp_path / "m.json").read_text())

    first = run(job)
    assert first["judge_unparsable"] == 3 and first["judge_calls"] == 3
    again = run(job)
    assert again["judge_calls"] == 0 and again["judge_unparsable"] == 3 and len(script.seen) == 3
    script.replies = [(200, "A")]
    reasked = run({**job, "judge": {**job["judge"], "reask_unparsable": True}})
    assert reasked["judge_reasked_unparsable"] == 3 and reasked["judge_calls"] == 3
    assert reasked["judge_unparsable"] == 0
    assert run(job)["judge_calls"] == 0  # the new replies replaced the old ones in the cache


# --------------------------------------------------------------------------------- caches


def _judge(tmp_path, backend, identity=None, template="pairwise_v1.txt"):
    from harness.ranking.judge import PairwiseJudge

    return PairwiseJudge(backend, template, cache_path=str(tmp_path / "cache.jsonl"), identity=identity)


class _Replies:
    """A text backend answering "A" to everything, counting what it was asked."""

    supports_label_logprobs = False

    def __init__(self):
        self.asked = 0

    def chat_prompt(self, messages):
        return json.dumps(messages)

    def complete(self, prompts, max_tokens=16, desc="", on_reply=None):
        self.asked += len(prompts)
        for i in range(len(prompts)):
            on_reply and on_reply(i, "A")
        return ["A"] * len(prompts)


TRIPLES = [("q1", "a", "b"), ("q2", "c", "d")]


def test_torn_last_cache_line_is_cut_and_asked_again(tmp_path):
    backend = _Replies()
    _judge(tmp_path, backend).prob_a(TRIPLES)
    cache = tmp_path / "cache.jsonl"
    text = cache.read_text()
    cache.write_text(text[: len(text) - 20])  # a kill in the middle of the second record
    judge = _judge(tmp_path, backend)
    judge.prob_a(TRIPLES)
    assert backend.asked == 3 and judge.stats()["judge_cache_bad_lines"] == 1
    rows = [json.loads(line) for line in cache.read_text().splitlines()]  # every line whole again
    assert len(rows) == 2


@pytest.mark.parametrize(
    "change",
    ["base_url", "revision", "local_weights", "template_text"],
)
def test_cache_key_covers_what_a_verdict_depends_on(change, tmp_path, monkeypatch):
    """Changing the endpoint, the revision, the bytes of a local judge model or the template's text
    makes every cached verdict a miss."""
    from harness.ranking import judge as judge_mod

    model_dir = tmp_path / "judge-model"
    model_dir.mkdir()
    (model_dir / "model.safetensors").write_bytes(b"weights v1")
    jcfg = {
        "backend": "transformers",
        "model": {"source": str(model_dir), "revision": None, "base_url": None},
    }
    backend = _Replies()
    _judge(tmp_path, backend, judge_mod.judge_identity(jcfg)).prob_a(TRIPLES)
    judge_mod.local_model_digest.cache_clear()
    jcfg = copy.deepcopy(jcfg)
    template = "pairwise_v1.txt"
    if change == "base_url":
        jcfg["model"]["base_url"] = "http://other:8000/v1"
    elif change == "revision":
        jcfg["model"]["revision"] = "abc123"
    elif change == "local_weights":
        (model_dir / "model.safetensors").write_bytes(b"weights v2")
    else:
        real = judge_mod.load_template("pairwise_v1.txt")
        monkeypatch.setattr(judge_mod, "load_template", lambda name: real + "\nBe brief.")
    again = _judge(tmp_path, backend, judge_mod.judge_identity(jcfg), template)
    again.prob_a(TRIPLES)
    assert backend.asked == 4 and again.stats()["judge_cache_hits"] == 0
    same = _judge(tmp_path, backend, judge_mod.judge_identity(jcfg), template)
    same.prob_a(TRIPLES)
    assert backend.asked == 4 and same.stats()["judge_cache_hits"] == 2


# ------------------------------------------------------------------------------ models


def _rm_job(model_dir: Path) -> dict:
    """The demo's reward-model rank job, scoring with the model in ``model_dir``."""
    from harness.workflow import jobs
    from harness.workflow.config import load_config

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        job = jobs.resolve(load_config("config/demo.yaml"), "rank", "tiny-policy/rm", PATHS)
    finally:
        os.chdir(cwd)
    job["ranker"]["model"] = model_ref(model_dir)
    return job


def _sampled(tmp_path) -> Path:
    comps = [
        {
            "id": f"p{i}",
            "prompt": f"Count to {i}.",
            "completions": [{"text": t, "n_tokens": 2, "finish_reason": "stop"} for t in ("1 2", "one", "3")],
        }
        for i in range(4)
    ]
    return lines(tmp_path / "completions.jsonl", comps)


def _rank_argv(tmp_path, job):
    out = tmp_path / "pairs.jsonl"
    argv = ["rank", "--config", job_file(tmp_path, job), "--completions", _sampled(tmp_path), "--output", out]
    return argv + ["--judgments", tmp_path / "judgments.jsonl", "--meta", tmp_path / "pairs.meta.json"]


def test_reward_model_without_its_head_is_refused(tiny_models, tmp_path):
    """A causal LM as a ranker's reward model loads with a newly initialised score head: refused."""
    argv = _rank_argv(tmp_path, _rm_job(tiny_models / "policy"))
    fails(
        argv,
        "reward model",
        str(tiny_models / "policy"),
        "score.weight",
        "initialised at random",
        absent=[tmp_path / "pairs.jsonl"],
    )


# ------------------------------------------------------------------------------ faults


def test_full_disk_names_the_path_and_leaves_nothing(tmp_path, monkeypatch):
    src = lines(tmp_path / "p.jsonl", [GOOD_PROMPT])
    job = job_file(tmp_path, {"step": "prepare_data", "kind": "prompts", "source": {"path": str(src)}})
    out = tmp_path / "data" / "prompts.jsonl"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    fails(
        ["prepare-data", "--config", job, "--output", out],
        str(out),
        "No space left",
        "free space",
        absent=[out],
    )


def test_output_under_a_file_names_the_path(tmp_path):
    src = lines(tmp_path / "p.jsonl", [GOOD_PROMPT])
    job = job_file(tmp_path, {"step": "prepare_data", "kind": "prompts", "source": {"path": str(src)}})
    out = src / "prompts.jsonl"  # its "directory" is a file
    fails(["prepare-data", "--config", job, "--output", out], str(out), f"{src} is a file, not a directory")


def test_interrupt_is_one_line(tmp_path, monkeypatch):
    from harness.data import prepare as data

    def stop(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "run", stop)
    job = job_file(tmp_path, {"step": "prepare_data", "kind": "prompts", "source": {"path": "x"}})
    fails(["prepare-data", "--config", job, "--output", tmp_path / "o"], "prepare-data", "interrupted")


def test_job_config_lacking_a_setting_is_named(tmp_path):
    """A hand-made job config without a setting the step reads: named, not a KeyError traceback."""
    job = job_file(tmp_path, {"step": "metrics", "benchmark": "mt_bench", "cell": {}})
    questions = lines(tmp_path / "q.jsonl", [MT_Q])
    judgments = lines(tmp_path / "j.jsonl", [JUDGMENT, {**JUDGMENT, "turn": 2}])  # both turns judged
    argv = [
        "metrics",
        "--config",
        job,
        "--eval-set",
        questions,
        "--judgments",
        judgments,
        "--output",
        tmp_path / "m.json",
    ]
    fails(argv, str(job), "no setting 'bootstrap'", absent=[tmp_path / "m.json"])


@pytest.mark.parametrize("kind", ["gpu", "host"])
def test_out_of_memory_is_one_line_with_what_to_do(kind, tmp_path, monkeypatch):
    import torch

    from harness.data import prepare as data

    def oom(*args):
        raise (
            torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            if kind == "gpu"
            else MemoryError()
        )

    monkeypatch.setattr(data, "run", oom)
    job = job_file(tmp_path, {"step": "prepare_data", "kind": "prompts", "source": {"path": "x"}})
    fails(
        ["prepare-data", "--config", job, "--output", tmp_path / "o"],
        f"out of {kind.upper() if kind == 'gpu' else kind} memory",
        "batch size",
    )


def test_debug_keeps_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DEBUG", "1")
    from harness.core.errors import ConfigError

    with pytest.raises(ConfigError):
        cli.main(["prepare-data", "--config", str(tmp_path / "none.yaml"), "--output", str(tmp_path / "o")])


def test_kill_between_pairs_and_meta(tiny_models, tmp_path, monkeypatch):
    """rank writes its pairs before the meta: killed between the two, it leaves the new pairs and no
    meta (Snakemake marks the job incomplete and reruns it); the rerun writes both, the same pairs."""
    from harness.ranking import rank

    (tmp_path / "pairs.meta.json").write_text('{"from": "an older run"}')
    argv = _rank_argv(tmp_path, _rm_job(tiny_models / "reward"))
    real = rank.write_json

    def killed(path, obj):
        raise KeyboardInterrupt

    monkeypatch.setattr(rank, "write_json", killed)
    os.unlink(tmp_path / "pairs.meta.json")
    fails(argv, "interrupted")
    pairs = (tmp_path / "pairs.jsonl").read_text()
    assert pairs and not (tmp_path / "pairs.meta.json").exists()
    monkeypatch.setattr(rank, "write_json", real)
    cli.main([str(a) for a in argv])
    assert (tmp_path / "pairs.jsonl").read_text() == pairs
    assert json.loads((tmp_path / "pairs.meta.json").read_text())["pairs"] == len(pairs.splitlines())


# ------------------------------------------------------------------ as the user runs it


def _stderr_one_error(proc) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_cli_process_prints_one_line(tmp_path):
    src = lines(tmp_path / "q.jsonl", [{**MT_Q, "turns": ["one turn only"]}])
    job = job_file(tmp_path, {"step": "prepare_data", "kind": "mt_bench", "source": {"path": str(src)}})
    env = {**os.environ, "PYTHONPATH": pythonpath()}
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "prepare-data",
        "--config",
        str(job),
        "--output",
        str(tmp_path / "o.jsonl"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert f"{src}:1:" in _stderr_one_error(proc)


def _snakemake(args, cwd=ROOT, env=None):
    exe = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.parametrize(
    "mutate, extra, names",
    [
        (lambda c: c.update(seedz=c.pop("seeds")), [], ["seedz", "(top level)"]),
        (lambda c: c.update(prompts={"path": "nope.jsonl"}), [], ["prompts/path", "nope.jsonl"]),
        (lambda c: None, ["--config", "sampling={'k': 'many'}"], ["sampling/k", "with --config overrides"]),
    ],
    ids=["misspelled_key", "missing_source", "bad_override"],
)
def test_snakemake_config_errors_are_one_line(mutate, extra, names, tmp_path):
    cfg = demo_config()
    mutate(cfg)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = _snakemake(["-n", "--configfile", str(path), *extra])
    line = _stderr_one_error(proc)
    assert len(proc.stderr.splitlines()) <= 3, proc.stderr  # no schema, no config dump
    for name in names:
        assert name in line, line


def test_snakemake_refuses_a_key_given_twice(tmp_path):
    """Snakemake's own reading of a --configfile keeps the last of two equal keys; the workflow reads
    the file again and refuses it."""
    path = tmp_path / "exp.yaml"
    text = (ROOT / "config/demo.yaml").read_text()
    path.write_text(text + "\nseeds: [7]\n")
    line = _stderr_one_error(_snakemake(["-n", "--configfile", str(path)]))
    assert str(path) in line and "key 'seeds' repeats" in line, line


@pytest.mark.slow
def test_checkout_path_with_space_and_semicolon(tmp_path):
    """Every path reaching a shell is quoted: a demo target runs from a checkout at
    ``.../a b;touch INJECTED/`` and nothing but the target is made."""
    home = tmp_path / "a b;touch INJECTED"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for name in files.stdout.splitlines():
        if (ROOT / name).is_file():
            dest = home / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest)
    proc = _snakemake(
        ["--cores", "1", "--configfile", "config/demo.yaml", "--", "results/demo/data/prompts.jsonl"],
        cwd=home,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (home / "results/demo/data/prompts.jsonl").stat().st_size > 0
    assert not list(tmp_path.rglob("INJECTED")) and not (home / "INJECTED").exists()


def test_prompt_past_the_context_is_cut_and_counted(tiny_models):
    """A prompt that leaves no room for max_new_tokens in the model's context (512 tokens here) is cut
    from its left end and counted, never run past the positions the model was trained on."""
    from harness.backends.hf import TransformersBackend

    backend = TransformersBackend(model_ref(tiny_models / "policy"))
    long = backend.chat_prompt([{"role": "user", "content": "count the words " * 400}])
    short = backend.chat_prompt([{"role": "user", "content": "count the words"}])
    out = backend.generate([long, short], max_new_tokens=8, batch_size=2)
    assert len(out) == 2 and backend.prompts_truncated == 1
    with pytest.raises(ValueError, match="max_new_tokens=600 leaves no room"):
        backend.generate([short], max_new_tokens=600)


def _sample_argv(tmp_path, model_dir):
    prompts = lines(tmp_path / "prompts.jsonl", [GOOD_PROMPT])
    sampling = {"k": 2, "seed": 0, "backend": "transformers", "temperature": 0.7, "top_p": 1.0}
    sampling.update(max_new_tokens=4, batch_size=2, shard_size=8)
    job = {"step": "sample", "policy": "p", "model": model_ref(model_dir), "sampling": sampling}
    out = tmp_path / "completions.jsonl"
    argv = ["sample", "--config", job_file(tmp_path, job), "--prompts", prompts, "--output", out]
    return argv + ["--meta", tmp_path / "meta.json"], out


def test_policy_without_its_language_model_head_is_refused(tiny_models, tmp_path):
    """A reward model named as a policy would sample through a head it was never trained for: refused."""
    argv, out = _sample_argv(tmp_path, tiny_models / "reward")
    names = ["causal LM", str(tiny_models / "reward"), "LlamaForSequenceClassification"]
    fails(argv, *names, absent=[out])


def test_missing_model_directory_is_named(tmp_path):
    argv, out = _sample_argv(tmp_path, tmp_path / "gone")
    fails(argv, str(tmp_path / "gone"), "no such model directory", absent=[out])


def test_annotations_without_a_verdict_are_counted(tmp_path):
    """alpaca_eval's encodings pass: 0 and 1.5 are draws; -1, null and NaN are no verdict, counted in
    n_not_preference and left out of the win rate, never dropped unseen."""
    prefs = [1.2, 2.0, 0, None, -1, 1.5, 1.0, 1.9, float("nan"), 1.1, 2.0, 1.0]
    rows = [
        {
            **ANNOTATION,
            "instruction": f"q{i}",
            "output_2": "b" * (i + 1),
            "generator_1": "ref",
            "generator_2": "m",
            "preference": p,
        }
        for i, p in enumerate(prefs)
    ]
    src = tmp_path / "annotations.json"
    src.write_text(json.dumps(rows))
    job = {
        "step": "metrics",
        "benchmark": "alpaca_eval",
        "cell": {},
        "lc_method": "approximate",
        "bootstrap": {"samples": 20, "lc_samples": 5},
    }
    out = tmp_path / "metrics.json"
    cli.main(
        [
            str(a)
            for a in ["metrics", "--config", job_file(tmp_path, job), "--judgments", src, "--output", out]
        ]
    )
    m = json.loads(out.read_text())["metrics"]
    assert m["n_not_preference"] == 3
    valid = [0.2, 1.0, 0.5, 0.5, 0.0, 0.9, 0.1, 1.0, 0.0]
    assert m["win_rate"] == pytest.approx(100 * sum(valid) / len(valid))


def test_conversation_past_the_scorer_context_is_cut_and_counted(tiny_models):
    from harness.ranking.rank import score_reward_model

    long = [{"role": "user", "content": "count " * 700}, {"role": "assistant", "content": "1 2"}]
    short = [{"role": "user", "content": "count"}, {"role": "assistant", "content": "1 2"}]
    counts: dict = {}
    scores = score_reward_model(model_ref(tiny_models / "reward"), [long, short], 2, counts=counts)
    assert len(scores) == 2 and counts["truncated"] == 1


@pytest.mark.parametrize(
    "change, what",
    [
        (lambda r: r.update(chosen=r["chosen"][:1]), "one log-prob per pair"),
        (lambda r: r["rejected"].__setitem__(1, None), "[1] is None"),
        (lambda r: r.pop("pairs_sha256"), "not a reference log-probs file"),
    ],
    ids=["too_few", "not_a_number", "not_a_reference_file"],
)
def test_bad_reference_logps_are_named(change, what, tmp_path):
    from harness.core.io import RecordError
    from harness.core.io import file_sha256 as _sha256
    from harness.training.train import load_reference

    pairs = lines(tmp_path / "pairs.jsonl", ['{"a": 1}', '{"a": 2}'])
    ref = {"pairs": 2, "pairs_sha256": _sha256(str(pairs)), "chosen": [-1.0, -2.0], "rejected": [-3.0, -4.0]}
    change(ref)
    path = tmp_path / "ref_logps.json"
    path.write_text(json.dumps(ref))
    with pytest.raises(RecordError, match=re.escape(what)) as info:
        load_reference(str(path), str(pairs))
    assert str(path) in str(info.value)


def test_hub_pairs_with_equal_answers_are_left_out_and_counted(tmp_path):
    """A hub preference set (HH, RewardBench) has a few pairs whose answers are the same text: left
    out and counted when it is prepared; a local file with one is refused (the case above)."""
    from harness.core.records import load_preferences

    src = lines(tmp_path / "prefs.jsonl", [PREF, {**PREF, "id": "q", "rejected": "good"}])
    identical: list = []
    assert [r["id"] for r in load_preferences(src, identical)] == ["p"] and identical == ["q"]


KEY = "sk-PLANTED-7f3a9c0e1b2d4f6a"


@pytest.mark.parametrize(
    "judge, where",
    [
        (
            {"api_key_env": KEY},
            "rankers/ipr-judge/judge/api_key_env: not the name of an environment variable",
        ),
        (
            {"base_url": f"https://user:{KEY}@judge.example/v1"},
            "rankers/ipr-judge/judge/base_url: the URL carries credentials",
        ),
        (
            {"base_url": f"https://judge.example/v1?api_key={KEY}"},
            "rankers/ipr-judge/judge/base_url: the URL carries credentials",
        ),
    ],
)
def test_a_key_in_a_config_is_refused_and_written_nowhere(judge, where, tmp_path):
    """A key pasted into api_key_env, or carried in base_url's user-info or query, stops the dry run and
    check-config with one line that does not show it; no file the run wrote holds it."""
    from harness.core.io import read_yaml

    from .workflow import copy_workflow, snakemake

    (tmp_path / "wf").mkdir()
    wf = copy_workflow(tmp_path / "wf")
    cfg = read_yaml(wf / "config/demo.yaml")
    cfg["rankers"]["ipr-judge"]["judge"] = {"backend": "openai", "model": "judge-model", **judge}
    (wf / "config/keyed.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(["-n", "--configfile", "config/keyed.yaml"], wf)
    lines = [x for x in (r.stdout + r.stderr).splitlines() if x.startswith("error:")]
    assert r.returncode != 0 and len(lines) == 1 and where in lines[0], r.stderr[-2000:]
    assert KEY not in r.stdout + r.stderr
    msg = fails(["check-config", wf / "config/keyed.yaml"], where)
    assert KEY not in msg
    written = [
        p for p in wf.rglob("*") if p.is_file() and p.name != "keyed.yaml" and KEY.encode() in p.read_bytes()
    ]
    assert written == []


def test_plain_http_to_another_host_is_warned_once(monkeypatch, caplog):
    from harness.backends import openai_compat

    monkeypatch.setenv("TEST_JUDGE_KEY", "secret")
    for url in (
        "http://judge.example/v1",
        "http://judge.example/v1",
        "http://127.0.0.1:8000/v1",
        "https://judge.example/v1",
    ):
        openai_compat.OpenAIBackend({"source": "m", "base_url": url, "api_key_env": "TEST_JUDGE_KEY"})
    warned = [r.getMessage() for r in caplog.records if "unencrypted" in r.getMessage()]
    assert warned == [
        "judge endpoint http://judge.example/v1: plain http to another host: the API key travels unencrypted"
    ]


def test_a_yte_config_is_refused_before_any_job_is_planned(tmp_path):
    """A config file is code to Snakemake: with `__use_yte__: true` it evaluates the file's expressions
    as it reads it. The workflow then refuses it in one line, before planning any job."""
    from .workflow import copy_workflow, snakemake

    (tmp_path / "wf").mkdir()
    wf = copy_workflow(tmp_path / "wf")
    text = (wf / "config/demo.yaml").read_text()
    (wf / "config/yte.yaml").write_text("__use_yte__: true\n" + text)
    r = snakemake(["-n", "--configfile", "config/yte.yaml"], wf)
    lines = [x for x in (r.stdout + r.stderr).splitlines() if x.startswith("error:")]
    assert (
        r.returncode != 0
        and len(lines) == 1
        and lines[0].endswith(
            "config/yte.yaml: __use_yte__: a YTE template runs Python when Snakemake reads it (Snakemake "
            "has read it by now); the harness takes plain YAML configs only"
        )
    ), r.stderr[-2000:]
    assert "Job stats" not in r.stdout and not (wf / "results").exists()


def test_metrics_of_incomplete_judgments_stop_naming_what_is_missing(tmp_path):
    """Judgments covering part of the evaluation set give a number for another set: AlpacaEval, MT-Bench
    and Arena-Hard metrics stop with one line saying how much is judged, writing nothing."""
    out = tmp_path / "metrics.json"
    # AlpacaEval: 2 of 4 instructions annotated
    refs = tmp_path / "alpaca.json"
    refs.write_text(json.dumps([{**ALPACA, "instruction": f"Say hi {i}."} for i in range(4)]))
    ann = tmp_path / "annotations.json"
    ann.write_text(json.dumps([{**ANNOTATION, "instruction": f"Say hi {i}."} for i in range(2)]))
    job = job_file(tmp_path, {"step": "metrics", "benchmark": "alpaca_eval", "cell": {}, "lc_method": "approximate",
                              "bootstrap": {"samples": 10, "lc_samples": 20}})  # fmt: skip
    argv = ["metrics", "--config", job, "--eval-set", refs, "--judgments", ann, "--output", out]
    fails(argv, f"{ann}: covers 2 of the 4 instructions of {refs}", "missing e.g. 'Say hi 2.'", absent=[out])
    # MT-Bench: one of two questions judged, both its turns
    questions = lines(tmp_path / "q.jsonl", [MT_Q, {**MT_Q, "question_id": 82}])
    judged = lines(tmp_path / "j.jsonl", [JUDGMENT, {**JUDGMENT, "turn": 2}])
    job = job_file(
        tmp_path, {"step": "metrics", "benchmark": "mt_bench", "cell": {}, "bootstrap": {"samples": 10}}
    )
    argv = ["metrics", "--config", job, "--eval-set", questions, "--judgments", judged, "--output", out]
    fails(argv, f"{judged}: covers 2 of the 4 question turns of {questions}", "(82, 1)", absent=[out])
    # Arena-Hard: 2 of 3 questions judged
    qs = lines(tmp_path / "ah.jsonl", [{"uid": f"u{i}", "category": "c", "prompt": "p"} for i in range(3)])
    records = [{"uid": f"u{i}", "games": [{"score": "A>B"}, {"score": "B>A"}]} for i in range(2)]
    ahj = lines(tmp_path / "ah_judgments.jsonl", records)
    job = job_file(tmp_path, {"step": "metrics", "benchmark": "arena_hard", "cell": {"seed": 0}, "weight": 3,
                              "style_control": [], "token_count": "words", "bootstrap": {"samples": 10}})  # fmt: skip
    argv = ["metrics", "--config", job, "--eval-set", qs, "--judgments", ahj, "--answers", qs, "--baseline", qs,
            "--output", out]  # fmt: skip
    fails(argv, f"{ahj}: covers 2 of the 3 questions of {qs}", "'u2'", absent=[out])


@pytest.mark.parametrize(
    "bad, said",
    [
        (float("nan"), "field 'oracle_score_2' must be a number in [0, 1], got nan"),
        (float("inf"), "field 'oracle_score_2' must be a number in [0, 1], got inf"),
        (None, "missing field 'oracle_score_2'"),
    ],
    ids=["nan", "infinity", "missing"],
)
def test_a_non_finite_oracle_score_is_named(bad, said, tmp_path):
    """An oracle score that is NaN, Infinity or missing in one AlpacaEval row stops the metrics with one
    line naming the row, instead of an oracle_score of NaN written as a bare NaN token (issue 30, case 2)."""
    rows = [
        {**ANNOTATION, "instruction": f"q{i}", "oracle_score_1": 0.5, "oracle_score_2": 0.75}
        for i in range(3)
    ]
    if bad is None:
        del rows[1]["oracle_score_2"]
    else:
        rows[1]["oracle_score_2"] = bad
    ann = tmp_path / "annotations.json"
    ann.write_text(json.dumps(rows))
    out = tmp_path / "metrics.json"
    job = job_file(tmp_path, {"step": "metrics", "benchmark": "alpaca_eval", "cell": {}, "lc_method": "approximate",
                              "bootstrap": {"samples": 10, "lc_samples": 20}})  # fmt: skip
    fails(["metrics", "--config", job, "--judgments", ann, "--output", out], f"{ann}: annotation 1: {said}",
          absent=[out])  # fmt: skip


def test_mt_bench_ratings_outside_the_scale_are_counted_and_left_out(tmp_path):
    """A rating of Infinity is refused naming its line; ratings of 11 and 1000 (FastChat takes any
    number in [[n]]) are counted and left out of the means by default, and averaged as FastChat does
    with ``ratings: fastchat``; the table's note names them (issue 30, case 2)."""
    from harness.reporting import report

    questions = lines(tmp_path / "q.jsonl", [MT_Q, {**MT_Q, "question_id": 82}])
    scores = {(81, 1): 7.0, (81, 2): 11.0, (82, 1): 5.0, (82, 2): 1000.0}
    judged = lines(tmp_path / "j.jsonl", [{**JUDGMENT, "question_id": q, "turn": t, "score": s}
                                         for (q, t), s in scores.items()])  # fmt: skip
    out = tmp_path / "metrics.json"
    base = {"step": "metrics", "benchmark": "mt_bench", "bootstrap": {"samples": 10},
            "cell": {"policy": "p", "ranker": "r", "regularizer": "g", "seed": 0}}  # fmt: skip
    argv = ["metrics", "--config", job_file(tmp_path, base), "--eval-set", questions, "--judgments", judged,
            "--output", out]  # fmt: skip
    cli.main([str(a) for a in argv])
    m = json.loads(out.read_text())["metrics"]
    assert m["score"] == 6.0 and m["n_out_of_range"] == 2 and m["ratings"] == "in_range"
    assert m["turn_2"] is None and m["per_category"] == {"writing": 6.0}
    other = tmp_path / "summary.json"  # a row without MT-Bench beside it (the baselines table has them)
    other.write_text(json.dumps({"cell": {**base["cell"], "ranker": "q"}, "final_chosen_logratio": 1.0,
                                 "final_rejected_logratio": -1.0}))  # fmt: skip
    note = report.to_markdown(report.build_table([str(out), str(other)]))
    assert "MT-Bench ratings outside 1-10 (p/r/g 2) are left out of the means" in note
    job = job_file(tmp_path, {**base, "ratings": "fastchat"}, "fastchat.yaml")
    cli.main([str(a) for a in ["metrics", "--config", job, *argv[3:]]])
    assert json.loads(out.read_text())["metrics"]["score"] == (7 + 11 + 5 + 1000) / 4
    text = judged.read_text().replace("1000.0", "Infinity")
    judged.write_text(text)
    fails(argv, f"{judged}:4: field 'score' is inf, not a finite rating", absent=[])


def test_json_the_harness_writes_has_no_nan_token(tmp_path, caplog):
    """A non-finite number in anything written through harness.core.io is null, never the NaN or
    Infinity token strict readers refuse, and a warning names the file and the first such field."""
    from harness.core.io import write_json, write_jsonl

    with caplog.at_level(logging.WARNING, logger="harness.core.io"):
        write_json(tmp_path / "a.json", {"m": {"score": float("nan"), "ci": [1.0, float("inf")]}})
        write_jsonl(tmp_path / "b.jsonl", [{"x": 1.0}, {"x": float("-inf")}])
    assert json.loads((tmp_path / "a.json").read_text(), parse_constant=pytest.fail) == {
        "m": {"ci": [1.0, None], "score": None}
    }
    assert (tmp_path / "b.jsonl").read_text() == '{"x": 1.0}\n{"x": null}\n'
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'a.json'}: 2 non-finite numbers written as null (the first at m.score)",
        f"{tmp_path / 'b.jsonl'}: 1 non-finite numbers written as null (the first at line 2, x)",
    ]
