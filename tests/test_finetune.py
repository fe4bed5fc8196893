"""Step `finetune`: SFT of a base policy and a Bradley-Terry reward model, on the demo world's data."""

from __future__ import annotations

import json

import pytest

from harness.core.io import RecordError, read_json
from harness.core.records import load_demonstrations
from harness.data import prepare as data
from harness.demo import world
from harness.training import finetune

from .conftest import model_ref


def _job(models, name, kind, **over):
    return {
        "step": "finetune",
        "name": name,
        "model": model_ref(models / name),
        "finetune": {
            "kind": kind,
            "data": {},
            "epochs": 1,
            "learning_rate": 1e-3,
            "batch_size": 8,
            "max_length": 64,
            "seed": 0,
            "lr_scheduler_type": "cosine",  # the schema's defaults
            "warmup_ratio": 0.05,
            "logging_steps": 5,
            **over,
        },
    }


def test_sft_fits_the_demonstrations_and_saves_a_loadable_policy(tiny_models, tmp_path):
    from transformers import AutoModelForCausalLM

    demos = tmp_path / "demos.jsonl"
    data.run({"kind": "demonstrations", "source": {"world": {"n": 48, "noise": 0.5}}}, str(demos))
    out, summary = tmp_path / "policy", tmp_path / "summary.json"
    finetune.run(_job(tiny_models, "policy", "sft", epochs=3), str(demos), str(out), str(summary))
    s = read_json(summary)
    assert s["kind"] == "sft" and s["examples"] == 48 and s["steps"] == 18
    losses = [e["loss"] for e in s["log"]]
    assert losses[-1] < losses[0]  # it learns
    assert AutoModelForCausalLM.from_pretrained(out) is not None
    assert (out / "tokenizer.json").exists() and not (tmp_path / "policy.partial").exists()


def test_reward_training_separates_chosen_from_rejected(tiny_models, tmp_path):
    from harness.ranking.rank import score_reward_model

    prefs = tmp_path / "prefs.jsonl"
    spec = {"world": {"n": 96, "seed": 3, "groups": ["numbers"]}}
    data.run({"kind": "preferences", "source": spec}, str(prefs))
    out, summary = tmp_path / "reward", tmp_path / "summary.json"
    finetune.run(
        _job(tiny_models, "reward", "reward", epochs=4, learning_rate=3e-3),
        str(prefs),
        str(out),
        str(summary),
    )
    s = read_json(summary)
    assert s["kind"] == "reward" and s["final_train_accuracy"] > 0.6
    rows = [r for r in data.world_rows({**spec["world"], "seed": 4}, "preferences")]
    convs = [
        [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r[k]}]
        for r in rows
        for k in ("chosen", "rejected")
    ]
    scores = score_reward_model(model_ref(out), convs, 32)
    accuracy = sum(c > r for c, r in zip(scores[::2], scores[1::2], strict=True)) / len(rows)
    assert accuracy > 0.6  # better than chance on new pairs of the same group


def test_bad_demonstrations_fail_naming_file_and_line(tmp_path):
    path = tmp_path / "demos.jsonl"
    path.write_text(
        '{"id": 1, "prompt": "Count from 1 to 3.", "completion": "1 2 3"}\n{"id": 2, "prompt": "x"}\n'
    )
    with pytest.raises(RecordError, match=r"demos.jsonl:2.*completion"):
        load_demonstrations(path)


def test_world_sources_give_each_dataset_kind(tmp_path):
    prompts = data.world_rows({"n": 12}, "prompts")
    assert len({r["prompt"] for r in prompts}) == 12 and all(
        world.split_of(r["prompt"]) == "train" for r in prompts
    )
    evals = data.world_rows({"n": 12, "seed": 1}, "alpaca_instructions")
    assert all(world.split_of(r["instruction"]) == "eval" for r in evals)
    assert all(world.score_text(r["instruction"], r["output"]) == 1.0 for r in evals)
    with pytest.raises(RecordError, match="makes no 'fastchat_judge_prompts' records"):
        data.world_rows({"n": 2}, "fastchat_judge_prompts")
    # MT-Bench: two-turn eval questions (the same task on other arguments), task groups as categories,
    # and the answer key as reference answers for the same questions
    questions = data.world_rows({"n": 9, "seed": 2}, "fastchat_questions")
    refs = data.world_rows({"n": 9, "seed": 2}, "fastchat_references")
    assert [q["question_id"] for q in questions] == [r["question_id"] for r in refs] == list(range(1, 10))
    assert {q["category"] for q in questions} == set(world.GROUPS)
    for q, r in zip(questions, refs, strict=True):
        first, second = q["turns"]
        assert first != second and world.parse(first)[0] is world.parse(second)[0]
        assert all(world.split_of(t) == "eval" for t in q["turns"])
        assert [
            world.score_text(t, a) for t, a in zip(q["turns"], r["choices"][0]["turns"], strict=True)
        ] == [1.0, 1.0]
    with pytest.raises(RecordError, match="eval split only"):
        data.world_rows({"n": 2, "split": "train"}, "fastchat_questions")


def test_a_source_window_skips_then_limits_and_prompts_read_alpaca_eval_files(tmp_path):
    """``skip`` + ``limit`` cut a window of a file (training prompts apart from the evaluation prompts of
    the same AlpacaEval file); prompts read from an AlpacaEval JSON list keep their place as id."""
    src = tmp_path / "alpaca.json"
    src.write_text(json.dumps([{"instruction": f"Question {i}?", "output": f"A{i}", "generator": "g"}
                               for i in range(10)]))  # fmt: skip
    out = tmp_path / "prompts.jsonl"
    assert data.run({"kind": "prompts", "source": {"path": str(src), "skip": 6, "limit": 3}}, str(out)) == 3
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows == [{"id": f"alpaca_eval/{i}", "prompt": f"Question {i}?"} for i in (6, 7, 8)]
    evals = tmp_path / "alpaca_eval.json"
    data.run({"kind": "alpaca_instructions", "source": {"path": str(src), "limit": 4}}, str(evals))
    held_out = {r["instruction"] for r in json.loads(evals.read_text())}
    assert held_out == {f"Question {i}?" for i in range(4)} and not held_out & {r["prompt"] for r in rows}
    data.run({"kind": "prompts", "source": {"path": str(src), "skip": 8}}, str(out))  # to the end
    assert len(out.read_text().splitlines()) == 2
