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


def test_a_line_torn_by_another_writer_is_cut_before_the_next_store(tmp_path):
    """Two runs share a cache file (results/shared/): one is killed mid-line while the other has the file
    open. The other's next record starts a line of its own, not the end of the torn one."""
    path = tmp_path / "c.jsonl"
    mine = JudgeCache(path, {"model": "m"})
    mine.store(["p1"], [[-1.0]])
    with open(path, "a") as f:
        f.write('{"key": "abc", "val')  # the other process, killed mid-write
    mine.store(["p2"], [[-2.0]])
    again = JudgeCache(path, {"model": "m"})
    assert again.lookup(["p1", "p2"]) == [[-1.0], [-2.0]] and again.bad_lines == []


def test_two_processes_storing_at_once_leave_every_line_whole(tmp_path):
    """Two jobs of two runs append to one cache file at the same time, in batches larger than a write
    buffer: every record of both is on a line of its own and reads back. (A guard of the one-write,
    locked path: on a local file system the unlocked, buffered appends of before did not interleave
    here either.)"""
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "c.jsonl"
    code = (
        "import os, sys, time\n"
        "from harness.core.cache import JudgeCache\n"
        "c = JudgeCache(sys.argv[1], {'model': 'm'})\n"
        "open(sys.argv[1] + '.' + sys.argv[2], 'w').close()\n"
        "given_up = time.monotonic() + 120\n"
        "while not os.path.exists(sys.argv[1] + '.go'):\n"  # both start storing together
        "    if time.monotonic() > given_up:\n"
        "        sys.exit(3)\n"
        "for b in range(400):\n"
        "    prompts = [f'{sys.argv[2]} {b} {i}' for i in range(40)]\n"
        "    c.store(prompts, [[float(i)] * 40 for i in range(40)], sync=False)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), name]) for name in ("a", "b")]
    try:
        while not all(Path(f"{path}.{name}").exists() for name in ("a", "b")):
            assert all(p.poll() is None for p in procs), "a writer ended before it began"
        Path(f"{path}.go").touch()
        assert [p.wait(timeout=300) for p in procs] == [0, 0]
    finally:
        for p in procs:
            p.kill()
    back = JudgeCache(path, {"model": "m"})
    assert back.bad_lines == [] and len(back.entries) == 2 * 400 * 40
    assert back.lookup(["a 399 39", "b 0 7"]) == [[39.0] * 40, [7.0] * 40]


def test_a_file_system_without_locks_still_caches(tmp_path, monkeypatch, caplog):
    """Lustre mounted without flock refuses file locks (ENOSYS): the cache works as it did without them,
    and says so once."""
    import errno
    import fcntl

    def refuse(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", refuse)
    path = tmp_path / "c.jsonl"
    c = JudgeCache(path, {"model": "m"})
    c.store(["p1"], [[-1.0]])
    c.store(["p2"], [[-2.0]])
    assert JudgeCache(path, {"model": "m"}).lookup(["p1", "p2"]) == [[-1.0], [-2.0]]
    said = [r.getMessage() for r in caplog.records if "refuses file locks" in r.getMessage()]
    assert len(said) == 1 and str(tmp_path) in said[0], said


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
