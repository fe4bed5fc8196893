"""The judge-call cache: a crash in the middle of ranking, then a rerun, repeats no judge call."""

import json

import pytest

from harness.core.cache import JudgeCache

from .conftest import ipr_job


def test_cache_roundtrip_and_torn_tail(tmp_path):
    path = tmp_path / "c.jsonl"
    c = JudgeCache(path, {"model": "m", "revision": "r"})
    c.store(["p1", "p2"], [[-1.0, -2.0], [-3.0, -0.5]])
    with open(path, "a") as f:
        f.write('{"key": "abc", "val')  # a write cut short by a kill
    again = JudgeCache(path, {"model": "m", "revision": "r"})
    assert again.lookup(["p2", "p1", "p3"]) == [[-3.0, -0.5], [-1.0, -2.0], None]
    assert (again.hits, again.misses) == (2, 1)
    other = JudgeCache(path, {"model": "m", "revision": "r2"})  # another revision: nothing shared
    assert other.lookup(["p1"]) == [None]
    again.store(["p3"], [[-0.1, -0.2]])  # appended on a line of its own, not onto the torn one
    third = JudgeCache(path, {"model": "m", "revision": "r"})
    assert third.lookup(["p1", "p2", "p3"]) == [[-1.0, -2.0], [-3.0, -0.5], [-0.1, -0.2]]


def test_killed_ranking_resumes_without_repeated_calls(tiny_models, tmp_path, monkeypatch):
    from harness.backends.hf import TransformersBackend
    from harness.ranking import rank

    rows = []
    for i in range(6):
        comps = [
            {"text": f"Answer {i} number {j} about maps.", "n_tokens": 6, "finish_reason": "stop"}
            for j in range(4)
        ]
        rows.append(json.dumps({"id": f"q{i}", "prompt": f"What is a map {i}?", "completions": comps}))
    comp = tmp_path / "c.jsonl"
    comp.write_text("\n".join(rows) + "\n")
    job = ipr_job(tiny_models / "policy", batch_size=64)
    out = {k: str(tmp_path / f"{k}.json") for k in ("pairs", "judgments", "meta")}
    cache = str(tmp_path / "cache.jsonl")

    sent: list[str] = []
    original = TransformersBackend.option_logprobs
    rounds = {"n": 0, "die_at": 2}

    def recording(self, prompts, *args, **kwargs):
        if rounds["n"] == rounds["die_at"]:  # this round of judge calls never returns
            raise KeyboardInterrupt("killed")
        rounds["n"] += 1
        sent.extend(prompts)
        return original(self, prompts, *args, **kwargs)

    monkeypatch.setattr(TransformersBackend, "option_logprobs", recording)
    with pytest.raises(KeyboardInterrupt):
        rank.run(job, str(comp), out["pairs"], out["judgments"], out["meta"], cache)
    first = len(sent)
    assert first == 2 * 6 * 2  # two rounds, 6 prompts, both orders

    rounds["die_at"] = None
    rank.run(job, str(comp), out["pairs"], out["judgments"], out["meta"], cache)
    meta = json.loads(open(out["meta"]).read())
    total = 6 * (2 * 3 + 2 * 2)  # K = 4: 2(K-1) + 2(K-2) judge prompts per prompt
    assert meta["judge_prompts"] == total
    assert meta["judge_calls"] + meta["judge_cache_hits"] == total
    assert meta["judge_cache_hits"] >= first  # a comparison met again in the worst pass is free too
    assert len(sent) == len(set(sent))  # across the kill and the rerun, no prompt was sent twice

    rank.run(job, str(comp), out["pairs"], out["judgments"], out["meta"], cache)
    meta = json.loads(open(out["meta"]).read())
    assert meta["judge_calls"] == 0 and meta["judge_cache_hits"] == total


def test_a_cached_value_of_the_wrong_kind_is_asked_again_not_a_traceback(tmp_path, caplog):
    """A cache line with the right key and a value this judge cannot use (an edited file, another
    version's) is asked again and counted, the cache named once; no IndexError."""
    import numpy as np

    from harness.ranking.judge import PairwiseJudge

    class Labels:  # a local model scoring the two labels
        supports_label_logprobs, label_in_prompt = True, True

        def chat_prompt(self, messages):
            return messages[-1]["content"]

        def option_logprobs(self, prompts, labels, batch_size, max_tokens, desc=""):
            return np.log(np.tile([0.7, 0.3], (len(prompts), 1))), 0

    path = tmp_path / "judge.jsonl"
    first = PairwiseJudge(Labels(), "pairwise_v1.txt", cache_path=str(path), identity={"model": "m"})
    prompts = [first.render("q", "a", "b"), first.render("q", "b", "a")]
    first._ask(prompts, "judge")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    path.write_text(json.dumps({"key": lines[0]["key"], "value": {"odd": 1}}) + "\n"
                    + json.dumps({"key": lines[1]["key"], "value": [-0.1]}) + "\n")  # fmt: skip
    again = PairwiseJudge(Labels(), "pairwise_v1.txt", cache_path=str(path), identity={"model": "m"})
    answers = again._ask(prompts, "judge")
    assert all(len(a) == 2 for a in answers) and again.calls == 2
    assert again.stats()["judge_cache_wrong_values"] == 2
    assert [r.getMessage() for r in caplog.records if "wrong kind" in r.getMessage()] == [
        f"{path}: cached value(s) of the wrong kind for this judge; asked again"
    ]
