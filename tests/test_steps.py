"""Each step on tiny inputs, and what bad input gets: an error naming file, line and field."""

import json
import subprocess
import sys

import pytest
import yaml

from harness.core.io import RecordError
from harness.core.records import load_prompts

from .conftest import ROOT, ipr_job, model_ref


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_prompts_malformed_line_names_file_and_line(tmp_path):
    p = _write(tmp_path / "prompts.jsonl", ['{"id": "a", "prompt": "hi"}', '{"id": "b", "prompt": "x"', ""])
    with pytest.raises(RecordError, match=r"prompts.jsonl:2: not valid JSON"):
        load_prompts(p)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"id": "b"}', r":2: missing field 'prompt'"),
        ('{"id": "b", "prompt": 3}', r":2: field 'prompt' should be str, got int"),
        ('{"id": "b", "prompt": "  "}', r":2: field 'prompt' is empty"),
        ('{"id": "a", "prompt": "again"}', r":2: field 'id' repeats 'a' from line 1"),
        ("[1, 2]", r":2: expected a JSON object"),
    ],
)
def test_prompts_bad_records(tmp_path, line, message):
    p = _write(tmp_path / "prompts.jsonl", ['{"id": "a", "prompt": "hi"}', line])
    with pytest.raises(RecordError, match=message):
        load_prompts(p)


def test_prepare_data_cli_fails_cleanly_and_writes_nothing(tmp_path):
    bad = _write(tmp_path / "prompts.jsonl", ['{"id": "a", "prompt": "hi"}', '{"id": "b", "prompt": '])
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"kind": "prompts", "source": {"path": str(bad)}}))
    out = tmp_path / "out" / "prompts.jsonl"
    r = subprocess.run(
        [sys.executable, "-m", "harness", "prepare-data", "--config", str(job), "--output", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode != 0
    assert f"{bad}:2: not valid JSON" in r.stderr
    assert not out.exists()
    assert not (out.parent.exists() and any(out.parent.iterdir()))  # no temp file left either


def test_sample_then_rank_ipr_counts_calls(tiny_models, tmp_path):
    from harness.data import sample
    from harness.ranking import rank

    prompts = _write(
        tmp_path / "p.jsonl",
        [json.dumps({"id": f"q{i}", "prompt": f"Explain what a map is {i}."}) for i in range(5)],
    )
    policy = model_ref(tiny_models / "policy")
    s = {
        "k": 4,
        "seed": 0,
        "backend": "transformers",
        "temperature": 1.0,
        "top_p": 1.0,
        "max_new_tokens": 12,
        "batch_size": 2,
        "shard_size": 2,
    }
    comp, meta = tmp_path / "c.jsonl", tmp_path / "c.meta.json"
    sample.run({"policy": "policy", "model": policy, "sampling": s}, str(prompts), str(comp), str(meta))
    rows = [json.loads(line) for line in comp.read_text().splitlines()]
    assert [len(r["completions"]) for r in rows] == [4] * 5
    first = comp.read_bytes()
    sample.run({"policy": "policy", "model": policy, "sampling": s}, str(prompts), str(comp), str(meta))
    assert comp.read_bytes() == first  # same seed, same bytes

    job = ipr_job(tiny_models / "policy")
    pairs, judgments, rmeta = tmp_path / "pairs.jsonl", tmp_path / "j.jsonl", tmp_path / "m.json"
    rank.run(job, str(comp), str(pairs), str(judgments), str(rmeta))
    m = json.loads(rmeta.read_text())
    sizes = [len({c["text"] for c in r["completions"] if c["text"].strip()}) for r in rows]
    assert m["judge_calls"] == sum(2 * (k - 1) + 2 * (k - 2) for k in sizes if k >= 2)
    assert m["pairs"] + sum(m["no_pair"].values()) == 5
    # a prompt whose every comparison was a tie (the random tiny judge's position flips) makes no pair
    verdicts: dict[str, list[bool]] = {}
    for line in judgments.read_text().splitlines():
        v = json.loads(line)
        verdicts.setdefault(v["prompt_id"], []).append(v["tie"])
    assert m["no_pair"]["tied"] == sum(all(ties) for ties in verdicts.values()) > 0
    assert m["pairs_from_ties"] == 0
    # pairs.keep_tied: those prompts are paired too, by the ties' mean probabilities, and counted
    kept = tmp_path / "kept.jsonl"
    job["ranker"]["pairs"]["keep_tied"] = True
    rank.run(job, str(comp), str(kept), str(judgments), str(rmeta))
    m2 = json.loads(rmeta.read_text())
    assert m2["no_pair"]["tied"] == 0 and m2["pairs_from_ties"] == m["no_pair"]["tied"]
    assert m2["pairs"] == m["pairs"] + m["no_pair"]["tied"]
    for line in pairs.read_text().splitlines():
        pair = json.loads(line)
        assert set(pair) >= {"prompt", "chosen", "rejected"}
        assert pair["prompt"][0]["role"] == "user" and pair["chosen"][0]["role"] == "assistant"


def test_rank_reward_model(tiny_models, tmp_path):
    from harness.ranking import rank

    comp = _write(
        tmp_path / "c.jsonl",
        [
            json.dumps(
                {
                    "id": "q0",
                    "prompt": "Name a fruit.",
                    "completions": [
                        {"text": "A banana.", "n_tokens": 3, "finish_reason": "stop"},
                        {"text": "", "n_tokens": 0, "finish_reason": "stop"},
                        {"text": "A banana.", "n_tokens": 3, "finish_reason": "stop"},
                        {"text": "An apple is a fruit that", "n_tokens": 6, "finish_reason": "length"},
                    ],
                }
            )
        ],
    )
    job = {
        "policy": "p",
        "seed": 0,
        "ranker": {
            "name": "rm",
            "kind": "reward_model",
            "batch_size": 4,
            "model": model_ref(tiny_models / "reward"),
            "pairs": {"strategy": "best_worst", "min_margin": None},
        },
    }
    pairs, meta = tmp_path / "pairs.jsonl", tmp_path / "m.json"
    rank.run(job, str(comp), str(pairs), str(tmp_path / "j.jsonl"), str(meta))
    m = json.loads(meta.read_text())
    assert m["completions_left_out"] == {"empty": 1, "duplicate": 1, "truncated": 1}
    pair = json.loads(pairs.read_text())
    assert {pair["chosen_index"], pair["rejected_index"]} == {0, 3}


def test_train_rejects_empty_answers(tmp_path):
    from harness.core.records import load_pairs

    p = _write(
        tmp_path / "pairs.jsonl",
        [
            json.dumps(
                {
                    "prompt": [{"role": "user", "content": "q"}],
                    "chosen": [{"role": "assistant", "content": " "}],
                    "rejected": [{"role": "assistant", "content": "b"}],
                }
            )
        ],
    )
    with pytest.raises(RecordError, match=r"pairs.jsonl:1: field 'chosen' has an empty answer"):
        load_pairs(p)
    with pytest.raises(RecordError, match="no preference pairs"):
        load_pairs(_write(tmp_path / "empty.jsonl", []))


def test_unknown_backend_lists_valid_ones():
    from harness.backends import get_backend

    with pytest.raises(ValueError, match="valid backends: openai, oracle, transformers, vllm"):
        get_backend("tgi")


def test_vllm_backend_names_the_extra():
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        from harness.backends import load_backend

        with pytest.raises(ImportError, match=r"install the gpu extra"):
            load_backend("vllm", {"source": "x"})
    else:
        pytest.skip("vllm is installed here")


def test_choose_pair_strategies():
    from harness.ranking.rank import choose_pair

    order = [2, 0, 3, 1]
    assert choose_pair(order, None, {"strategy": "best_worst"}, "q", 0) == ((2, 1), None)
    picks = {choose_pair(order, None, {"strategy": "best_random"}, f"q{i}", 0)[0][1] for i in range(40)}
    assert picks == {0, 3, 1}  # any other completion, never the best
    again = choose_pair(order, None, {"strategy": "best_random"}, "q7", 0)
    assert again == choose_pair(order, None, {"strategy": "best_random"}, "q7", 0)  # seeded by prompt id
    scores = {2: 1.0, 0: 0.9, 3: 0.5, 1: 0.95}
    assert choose_pair(order, scores, {"strategy": "best_worst", "min_margin": 0.6}, "q", 0) == (
        None,
        "below_margin",
    )
    assert choose_pair(order, {2: 1.0, 0: 1.0, 3: 1.0, 1: 1.0}, {"strategy": "best_worst"}, "q", 0) == (
        None,
        "tied",
    )
    assert choose_pair([4], None, {"strategy": "best_worst"}, "q", 0) == (None, "too_few_candidates")


def test_remote_code_needs_the_trusted_list(tiny_models, tmp_path):
    import shutil

    from transformers import AutoModelForSequenceClassification

    from harness.backends.hf import load_pretrained

    custom = tmp_path / "custom-rm"
    shutil.copytree(tiny_models / "reward", custom)
    cfg = json.loads((custom / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForSequenceClassification": "modeling_custom.CustomRM"}
    (custom / "config.json").write_text(json.dumps(cfg))
    (custom / "modeling_custom.py").write_text("raise RuntimeError('remote code ran')\n")
    with pytest.raises(
        ValueError, match=r"custom-rm needs to run its own code (.|\n)* `trusted_remote_code`"
    ):
        load_pretrained(AutoModelForSequenceClassification, model_ref(custom))


def test_trusted_list_sets_trust_remote_code():
    from harness.workflow import jobs
    from harness.workflow.config import load_config

    cfg = load_config(ROOT / "config" / "config.yaml")
    paths = {"built_model": "x/{name}", "checkpoint": "y"}
    assert jobs.model_ref(cfg, "armorm", paths)["trust_remote_code"] is True
    assert jobs.model_ref(cfg, "llama3-8b-instruct", paths)["trust_remote_code"] is False


def test_killed_sampling_resumes_from_its_last_shard(tiny_models, tmp_path, monkeypatch):
    from harness.backends.hf import TransformersBackend
    from harness.data import sample

    prompts = _write(
        tmp_path / "p.jsonl", [json.dumps({"id": f"q{i}", "prompt": f"Name a fruit {i}."}) for i in range(7)]
    )
    s = {
        "k": 2,
        "seed": 3,
        "backend": "transformers",
        "temperature": 1.0,
        "top_p": 1.0,
        "max_new_tokens": 8,
        "batch_size": 2,
        "shard_size": 3,
    }
    job = {"policy": "policy", "model": model_ref(tiny_models / "policy"), "sampling": s}
    whole = tmp_path / "whole.jsonl"
    sample.run(job, str(prompts), str(whole), str(tmp_path / "whole.meta.json"))

    original = TransformersBackend.generate
    calls: list[int] = []

    def dying(self, texts, *args, **kwargs):
        if len(calls) == 1:  # the second shard never finishes
            raise KeyboardInterrupt("killed")
        calls.append(len(texts))
        return original(self, texts, *args, **kwargs)

    monkeypatch.setattr(TransformersBackend, "generate", dying)
    out, meta = tmp_path / "c.jsonl", tmp_path / "c.meta.json"
    with pytest.raises(KeyboardInterrupt):
        sample.run(job, str(prompts), str(out), str(meta))
    assert not out.exists() and len(list(tmp_path.glob("c.jsonl.shards/shard-*.jsonl"))) == 1

    calls.clear()
    monkeypatch.setattr(
        TransformersBackend,
        "generate",
        lambda self, texts, *a, **k: calls.append(len(texts)) or original(self, texts, *a, **k),
    )
    sample.run(job, str(prompts), str(out), str(meta))
    assert calls == [3, 1]  # shards 2 and 3 only; shard 1 (3 prompts) came from disk
    assert json.loads(meta.read_text())["shards_resumed"] == 1
    assert out.read_bytes() == whole.read_bytes()
    assert not (tmp_path / "c.jsonl.shards").exists()


def test_preferences_loader_and_hh_transcripts(tmp_path):
    from harness.core.records import load_preferences
    from harness.data.prepare import split_hh_transcript

    good = load_preferences(ROOT / "data/demo/preferences_ood.jsonl")
    assert len(good) == 16 and set(good[0]) == {"id", "prompt", "chosen", "rejected"}
    bad = _write(tmp_path / "p.jsonl", ['{"id": 1, "prompt": "q", "chosen": "a"}'])
    with pytest.raises(RecordError, match=r"p.jsonl:1: missing field 'rejected'"):
        load_preferences(bad)
    text = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How are you?\n\nAssistant: Fine, thanks."
    assert split_hh_transcript(text) == (
        "Human: Hi\n\nAssistant: Hello!\n\nHuman: How are you?",
        "Fine, thanks.",
    )
    with pytest.raises(ValueError, match="not an HH transcript"):
        split_hh_transcript("Human: only a question")


def test_study_metrics_by_hand():
    from harness.ranking.study import _per_ranker, kendall_tau

    assert kendall_tau([0, 1, 2], [0, 1, 2]) == 1.0
    assert kendall_tau([0, 1, 2], [2, 1, 0]) == -1.0
    assert kendall_tau([0, 1, 2], [1, 0, 2]) == pytest.approx(1 / 3)
    cyc = [
        {"i": 0, "j": 1, "winner": 0, "p_i_as_a": 0.9, "p_i_as_b": 0.8, "tie": False},
        {"i": 1, "j": 2, "winner": 1, "p_i_as_a": 0.9, "p_i_as_b": 0.2, "tie": True},
        {"i": 0, "j": 2, "winner": 2, "p_i_as_a": 0.3, "p_i_as_b": 0.4, "tie": False},
    ]
    stats = _per_ranker([{"order": [0, 1, 2], "comparisons": cyc}, {"order": None, "comparisons": []}])
    assert stats == {
        "prompts": 1,
        "round_robin_judge_calls_per_prompt": 6.0,
        "position_flip_rate": pytest.approx(1 / 3),
        "intransitive_triples_per_prompt": 1.0,
    }


def test_training_curves_figure(tmp_path):
    from harness.reporting.figures import likelihood_trajectories

    rows = [
        {
            "policy": "p",
            "ranker": rk,
            "regularizer": rg,
            "seed": sd,
            "step": st,
            "logratio/chosen": -0.1 * st * (rg == "dpo"),
            "logratio/rejected": -0.3 * st,
        }
        for rk in ("rm", "ipr")
        for rg in ("dpo", "bcr")
        for sd in (0, 1)
        for st in range(1, 6)
    ]
    log = _write(tmp_path / "log.jsonl", [json.dumps(r) for r in rows])
    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    likelihood_trajectories([str(log)], str(png), str(pdf))
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="no training-log rows"):
        likelihood_trajectories([str(_write(tmp_path / "empty.jsonl", []))], str(png), str(pdf))


def test_trajectories_leave_out_partial_batches_and_mark_epochs():
    """228 pairs in batches of 16 over 2 epochs: steps 15 and 30 average 4 pairs; they leave the
    curve (their means jump), and step 15 is marked as the end of an epoch (30 ends training)."""
    import pandas as pd

    from harness.reporting.figures import _epoch_ends, _full_batches

    rows, tokens = [], 0
    for step in range(1, 31):
        tokens += 100 if step % 15 == 0 else 400
        rows += [{"policy": "p", "ranker": "rm", "regularizer": "dpo", "seed": s, "step": step,
                  "epoch": step / 15, "num_tokens": tokens} for s in (0, 1)]  # fmt: skip
    df = pd.DataFrame(rows)
    kept = _full_batches(df)
    assert sorted(set(df["step"]) - set(kept["step"])) == [15, 30] and len(kept) == 2 * 28
    assert _epoch_ends(df) == [15]
    assert _full_batches(df.drop(columns="num_tokens")).equals(df.drop(columns="num_tokens"))  # older logs


def test_pairs_longer_than_max_length_are_counted(tiny_models):
    from harness.backends.hf import load_tokenizer
    from harness.training.train import count_over_length

    tok = load_tokenizer(model_ref(tiny_models / "policy"))

    def pair(prompt, chosen, rejected):
        return {
            "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }

    rows = [pair("hi " * 50, "a", "b " * 100), pair("hi", "a", "b"), pair("q", "long " * 80, "x")]
    assert count_over_length(rows, tok, 64) == 2
    assert count_over_length(rows, tok, 100_000) == 0


def test_shard_bounds_cover_every_prompt_once_at_aligned_cuts():
    from harness.core.shards import bounds, parse, take

    for n in (0, 1, 5, 320, 321):
        for count in (1, 2, 3, 7):
            for align in (1, 4, 128):
                spans = [bounds(n, i, count, align) for i in range(1, count + 1)]
                assert [x for a, b in spans for x in range(a, b)] == list(range(n))
                assert all(a % align == 0 or a == n for a, _ in spans)
    assert bounds(320, 3, 3, 128) == (256, 320) and bounds(320, 1, 3, 128) == (0, 128)
    assert take(list(range(10)), "2/3") == [4, 5, 6] and take(list(range(10)), None) == list(range(10))
    with pytest.raises(ValueError, match="expected i/N with 1 <= i <= N"):
        parse("4/3")


def test_ipr_shards_keep_their_own_judge_cache(tiny_models, tmp_path):
    """Two shards of an IPR ranking with a model judge: each caches its calls, a rerun of one shard
    pays none, and the merged pairs are one job's prompts in order."""
    from harness.core import shards
    from harness.ranking import rank

    rows = [
        {"id": f"q{i}", "prompt": f"Name a colour {i}.", "completions": [
            {"text": t, "n_tokens": 2, "finish_reason": "stop"} for t in (f"Red {i}.", f"Blue {i}!", f"Green {i}?")
        ]}
        for i in range(5)
    ]  # fmt: skip
    comp = _write(tmp_path / "c.jsonl", [json.dumps(r) for r in rows])
    job = ipr_job(tiny_models / "policy")
    out = {}
    for i in (1, 2):
        p = {k: tmp_path / f"{i}.{k}" for k in ("pairs", "judgments", "meta", "cache")}
        rank.run(
            job,
            str(comp),
            str(p["pairs"]),
            str(p["judgments"]),
            str(p["meta"]),
            str(p["cache"]),
            shard=f"{i}/2",
        )
        out[i] = p
    metas = [json.loads(out[i]["meta"].read_text()) for i in (1, 2)]
    assert [m["prompts"] for m in metas] == [3, 2]
    assert all(m["judge_calls"] > 0 and m["judge_cache_hits"] == 0 for m in metas)
    p = out[1]
    first = p["judgments"].read_bytes()
    rank.run(
        job, str(comp), str(p["pairs"]), str(p["judgments"]), str(p["meta"]), str(p["cache"]), shard="1/2"
    )
    again = json.loads(p["meta"].read_text())
    assert again["judge_calls"] == 0 and again["judge_cache_hits"] == metas[0]["judge_calls"]
    assert p["judgments"].read_bytes() == first
    merged = tmp_path / "judgments.jsonl"
    shards.merge([str(out[i]["judgments"]) for i in (1, 2)], str(merged))
    ids = [json.loads(line)["prompt_id"] for line in merged.read_text().splitlines()]
    assert list(dict.fromkeys(ids)) == [f"q{i}" for i in range(5)] and ids == sorted(ids)


def test_a_local_judge_with_short_prompts_fits_nothing(tiny_models):
    """Prompts far below max_prompt_tokens: nothing to count or cut (an empty batch once crashed the
    transformers tokenizer), verdicts as they are."""
    from harness.backends.hf import TransformersBackend
    from harness.ranking.judge import PairwiseJudge

    judge = PairwiseJudge(TransformersBackend(model_ref(tiny_models / "policy")), "pairwise_v1.txt",
                          max_prompt_tokens=4096)  # fmt: skip
    p = judge.prob_a([("Name a fruit.", "A banana.", "A stone.")])
    assert len(p) == 1 and 0 < p[0] < 1 and judge.stats()["judge_prompts_truncated"] == 0
