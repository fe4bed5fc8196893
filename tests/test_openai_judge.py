"""The OpenAI-compatible judge backend against a scripted local server (loopback only): retries with
backoff on 429 and 5xx, a clear failure when retries run out, text verdicts parsed and counted."""

import json

import pytest

from harness.backends.openai_compat import Failure, OpenAIBackend, retry_window_s
from harness.core.errors import EndpointError
from harness.ranking.judge import PairwiseJudge, RatingJudge
from harness.ranking.verdicts import parse_rating

from .conftest import ROOT, chat_completion, demo_mt_answers


def _backend(url, monkeypatch, **kw):
    monkeypatch.setenv("TEST_JUDGE_KEY", "secret")
    model = {"source": "judge", "base_url": url, "api_key_env": "TEST_JUDGE_KEY"}
    return OpenAIBackend(model, retry_base_s=0.01, **kw)


def test_retries_429_and_500_then_succeeds(server, monkeypatch):
    url, script = server([(429, "slow down"), (500, "oops"), (200, "A")])
    backend = _backend(url, monkeypatch)
    judge = PairwiseJudge(backend, "pairwise_v1.txt")
    assert judge.prob_a([("Which fruit?", "A banana.", "A stone.")]).tolist() == [1.0]
    assert backend.retries == 2 and len(script.seen) == 3
    assert script.seen[-1]["messages"][0]["role"] == "user" and script.seen[-1]["temperature"] == 0.0


def test_gives_up_with_a_clear_error(server, monkeypatch):
    url, _ = server([(500, "down")])
    backend = _backend(url, monkeypatch, retries=2)
    (got,) = backend.complete(['[{"content": "q", "role": "user"}]'])
    assert isinstance(got, Failure) and str(got) == "gave up after 3 tries; last error: HTTP 500: down"


def test_a_reply_the_server_cut_off_is_asked_again(server, monkeypatch):
    """vLLM answers 200 with finish_reason "abort" for a request it dropped while shutting down: that
    text is no verdict, so the request is retried instead of cached as an unparsable reply."""
    aborted = chat_completion("")
    aborted["choices"][0]["finish_reason"] = "abort"
    url, script = server([(200, aborted), (200, "A")])
    judge = PairwiseJudge(_backend(url, monkeypatch), "pairwise_v1.txt")
    assert judge.prob_a([("q", "a", "b")]).tolist() == [1.0]
    assert len(script.seen) == 2 and judge.stats()["judge_unparsable"] == 0


def test_default_retry_window_outlasts_a_server_restart():
    import inspect

    import yaml

    from harness.workflow.config import SCHEMA

    default = yaml.safe_load(SCHEMA.read_text())["$defs"]["judge"]["properties"]["retries"]["default"]
    assert default == inspect.signature(OpenAIBackend).parameters["retries"].default
    # a 3-minute outage plus a large judge's start-up (minutes of loading weights)
    assert retry_window_s(default) >= 480


def test_a_refused_prompt_fails_alone_and_a_rerun_asks_only_it(server, monkeypatch, tmp_path):
    """A 400 (say, a prompt over the server's context) fails its prompt; the other replies are cached
    as they arrive, the step ends with one line naming the count and the server's message, and a rerun
    sends only the refused prompt."""

    def reply(body):
        text = body["messages"][0]["content"]
        return (400, "prompt too long") if "LONG" in text else (200, "A")

    url, script = server(reply)
    triples = [(f"q{i}", "LONG" if i == 3 else "a", "b") for i in range(6)]
    cache = tmp_path / "cache.jsonl"
    judge = PairwiseJudge(_backend(url, monkeypatch), "pairwise_v1.txt", cache_path=cache)
    with pytest.raises(EndpointError) as e:
        judge.prob_a(triples)
    assert str(e.value).startswith(
        f"judge endpoint {url}: 1 judge prompts failed (max_failures: 0); first: HTTP 400: prompt too long."
    )
    assert "\n" not in str(e.value) and len(script.seen) == 6 and len(cache.read_text().splitlines()) == 5

    again = PairwiseJudge(_backend(url, monkeypatch), "pairwise_v1.txt", cache_path=cache, max_failures=1)
    assert again.prob_a(triples).tolist() == [1.0, 1.0, 1.0, 0.5, 1.0, 1.0]  # the failed one: a tie
    assert len(script.seen) == 7 and again.stats()["judge_failed"] == 1 and again.stats()["judge_calls"] == 1


def test_answers_are_cut_to_fit_max_prompt_tokens_not_the_template(server, monkeypatch):
    """A backend that counts tokens gets prompts within max_prompt_tokens: the answers' ends are cut,
    the template and the instruction stay whole, and each shortened prompt is counted."""
    url, script = server([(200, "B")])
    backend = _backend(url, monkeypatch)
    backend.count_tokens = lambda prompts: [len(p) // 2 for p in prompts]  # a stand-in tokenizer
    judge = PairwiseJudge(backend, "pairwise_v1.txt", max_prompt_tokens=400)
    long, short = "word " * 400, "fine"
    assert judge.prob_a([("Which is right?", long, long), ("Which?", short, short)]).tolist() == [0.0, 0.0]
    sent = [s["messages"][0]["content"] for s in script.seen]
    assert all(len(backend.chat_prompt([{"role": "user", "content": c}])) // 2 <= 400 for c in sent)
    cut = next(c for c in sent if "Which is right?" in c)
    template = judge.template.split("{answer_a}")[0].format(instruction="Which is right?")
    assert cut.startswith(template) and "word word" in cut and judge.truncated == 1


def test_unparsable_verdicts_are_counted_not_dropped(server, monkeypatch):
    url, _ = server([(200, "Both answers have merit.")])
    judge = PairwiseJudge(_backend(url, monkeypatch), "pairwise_v1.txt")
    assert judge.prob_a([("q", "a", "b"), ("q", "b", "a")]).tolist() == [0.5, 0.5]
    assert judge.stats()["judge_unparsable"] == 2


def test_rating_without_verdict_is_asked_once_more(server, monkeypatch):
    prompt = '[{"content": "Rate this answer.", "role": "user"}]'
    url, script = server([(200, "Helpful, I think."), (200, "Helpful and correct. [[8]]")])
    judge = RatingJudge(_backend(url, monkeypatch), None)
    (text,) = judge.judge([prompt])
    assert parse_rating(text) == 8.0 and len(script.seen) == 2
    assert (judge.retried, judge.unparsable) == (1, 0)


def test_rating_still_without_verdict_is_counted(server, monkeypatch):
    url, script = server([(200, "I would rather not say.")])
    judge = RatingJudge(_backend(url, monkeypatch), None)
    (text,) = judge.judge(['[{"content": "Rate this answer.", "role": "user"}]'])
    assert parse_rating(text) is None and len(script.seen) == 2  # one retry, no more
    assert (judge.retried, judge.unparsable) == (1, 1)


def test_missing_api_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ValueError, match=r"environment variable NO_SUCH_KEY_VAR \(the API key\) is not set"):
        OpenAIBackend(
            {"source": "judge", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "NO_SUCH_KEY_VAR"}
        )


def test_logprob_verdicts_from_an_endpoint_reply_first_token(server, monkeypatch, tmp_path):
    """verdict: logprobs asks one token with its top log-probs and reads P(A) from the two labels (as
    alpaca_eval's weighted annotators read theirs); a reply listing neither label is unparsable (a tie),
    a reply without logprobs fails only its prompt; a rerun is served from the cache."""
    import math

    def reply(body):
        q = body["messages"][0]["content"]
        if "q-neither" in q:
            return 200, chat_completion("The", {"The": -0.1, "Both": -2.0})
        if "q-bare" in q:
            return 200, chat_completion("A")  # no logprobs in the reply
        return 200, chat_completion("A", {"A": -0.2, " B": -1.8, "C": -4.0})

    url, script = server(reply)
    backend = _backend(url, monkeypatch, verdict="logprobs", retries=0)
    cache = tmp_path / "cache.jsonl"
    judge = PairwiseJudge(
        backend, "pairwise_v1.txt", cache_path=str(cache), identity={"m": 1}, max_failures=1
    )
    p = judge.prob_a([("q-good", "a", "b"), ("q-neither", "a", "b"), ("q-bare", "a", "b")])
    assert p[0] == pytest.approx(1 / (1 + math.exp(-1.8 + 0.2)))
    assert p[1] == 0.5 and p[2] == 0.5
    stats = judge.stats()
    assert stats["judge_unparsable"] == 1 and stats["judge_failed"] == 1 and stats["judge_calls"] == 3
    body = script.seen[0]
    assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 20
    again = PairwiseJudge(
        _backend(url, monkeypatch, verdict="logprobs"),
        "pairwise_v1.txt",
        cache_path=str(cache),
        identity={"m": 1},
    )
    assert again.prob_a([("q-good", "a", "b"), ("q-neither", "a", "b")]).tolist() == p[:2].tolist()
    assert again.stats()["judge_calls"] == 0 and again.stats()["judge_unparsable"] == 1
    with pytest.raises(ValueError, match="pairwise judges only"):
        RatingJudge.from_config({"backend": "openai", "verdict": "logprobs", "model": {}, "batch_size": 1,
                                 "max_prompt_tokens": 10})  # fmt: skip


def test_keep_tied_never_pairs_by_position_alone(server, monkeypatch, tmp_path):
    """pairs.keep_tied pairs a prompt whose ties were broken by a mean probability; a prompt whose every
    verdict was unparsable, or flipped with the position (0.5 both orders), carries no preference and
    still gets no pair."""
    import json

    from harness.ranking import rank

    monkeypatch.setenv("TEST_JUDGE_KEY", "secret")

    def reply(body):  # prompts about "flip" always answer A (a position flip); the rest say nothing
        return 200, "A" if "flip" in body["messages"][0]["content"] else "I cannot say."

    url, _ = server(reply)
    comps = [{"text": t, "n_tokens": 2, "finish_reason": "stop"} for t in ("One.", "Two.", "Three.")]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"id": q, "prompt": f"{q} question", "completions": comps}) + "\n"
                            for q in ("flip", "mute")))  # fmt: skip
    judge = {"backend": "openai", "model": {"name": "judge", "source": "judge", "revision": None, "base_url": url,
             "api_key_env": "TEST_JUDGE_KEY"}, "template": "pairwise_v1.txt", "batch_size": 8,
             "max_prompt_tokens": 1536, "retries": 0}  # fmt: skip
    job = {"policy": "p", "seed": 0, "ranker": {"name": "ipr", "kind": "ipr", "judge": judge,
           "procedure": "best_worst", "pairs": {"strategy": "best_worst", "keep_tied": True}}}  # fmt: skip
    out, meta = tmp_path / "pairs.jsonl", tmp_path / "m.json"
    rank.run(job, str(path), str(out), str(tmp_path / "j.jsonl"), str(meta))
    m = json.loads(meta.read_text())
    assert m["pairs"] == 0 and m["pairs_from_ties"] == 0 and m["no_pair"]["tied"] == 2


def test_a_malformed_reply_is_a_failed_request_naming_the_server(server, monkeypatch):
    """A 200 whose body is cut off, or that lacks `choices`, is asked again, then counted as a failure of
    its own prompt with the server named; the other prompts get their verdicts (issue 30, case 4)."""

    def reply(body):
        q = body["messages"][0]["content"]
        if "q-cut" in q:
            return 200, b'{"id": "c1", "choices": [{"index": 0, "mess'
        if "q-bare" in q:
            return 200, {"id": "c1", "object": "chat.completion"}
        return 200, "A"

    url, script = server(reply)
    judge = PairwiseJudge(_backend(url, monkeypatch), "pairwise_v1.txt", max_failures=2)  # default retries
    p = judge.prob_a([("q-good", "a", "b"), ("q-cut", "a", "b"), ("q-bare", "a", "b")])
    assert p[0] == 1.0 and judge.stats()["judge_failed"] == 2
    assert "HTTP 200: a reply that is not JSON" in judge.first_failure
    cut = [b for b in script.seen if "q-cut" in b["messages"][0]["content"]]
    bare = [b for b in script.seen if "q-bare" in b["messages"][0]["content"]]
    assert len(cut) == 2 and len(bare) == 2  # each asked again before it counts
    with pytest.raises(EndpointError, match=rf"judge endpoint {url}: 3 judge prompts failed .*HTTP 200"):
        PairwiseJudge(_backend(url, monkeypatch, retries=0), "pairwise_v1.txt").prob_a(
            [("q-cut", "a", "b"), ("q-bare", "a", "b"), ("q-cut", "x", "y")]
        )


def test_a_hung_server_stops_the_step_in_one_line(monkeypatch):
    """A server that accepts connections and never answers (here a socket that listens and never
    accepts) stops the step with one line naming it after one request timeout and two unanswered asks
    for its model list, not after every retry (issue 30, case 5)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # the kernel completes each handshake; nothing ever reads or answers
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    monkeypatch.setenv("TEST_JUDGE_KEY", "secret")
    model = {"source": "judge", "base_url": url, "api_key_env": "TEST_JUDGE_KEY"}
    backend = OpenAIBackend(model, concurrency=2, timeout_s=1)  # default retries: >= 510 s of backoff
    judge = PairwiseJudge(backend, "pairwise_v1.txt")
    try:
        with pytest.raises(EndpointError) as e:
            judge.prob_a([(f"q{i}", "a", "b") for i in range(5)])
    finally:
        sock.close()
    assert backend.retries == 0  # stopped at the first timeout's probe, not after 20 retries (~9 minutes)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(
        f"judge endpoint {url}: accepts connections but answered nothing"
    )
    assert f"2 asks for its model list ({url}/models)" in msg and "0 of 5 replies" in msg


def test_default_settings_notice_a_hung_server_within_minutes():
    import inspect

    import yaml

    from harness.backends import liveness
    from harness.workflow.config import SCHEMA

    default = yaml.safe_load(SCHEMA.read_text())["$defs"]["judge"]["properties"]["timeout_s"]["default"]
    assert default == inspect.signature(OpenAIBackend).parameters["timeout_s"].default
    assert default + liveness.PROBES * min(liveness.PROBE_S, default) <= 240


def test_a_slow_server_that_answers_its_model_list_is_waited_for(server, monkeypatch):
    """A request that outlasts timeout_s on a server that still answers (here /models gets the test
    server's 501, which counts: any reply means alive) is retried as before and the step finishes."""
    import time

    first = set()

    def reply(body):
        q = body["messages"][0]["content"]
        if q not in first:
            first.add(q)
            time.sleep(5)  # over timeout_s: the client has given up on this one
        return 200, "B"

    url, script = server(reply)
    backend = _backend(url, monkeypatch, timeout_s=3)  # the second, immediate reply is far inside it
    judge = PairwiseJudge(backend, "pairwise_v1.txt")
    assert judge.prob_a([("q1", "a", "b"), ("q2", "a", "b")]).tolist() == [0.0, 0.0]
    assert backend.retries == len(first) and judge.stats()["judge_failed"] == 0  # each asked once more


def test_alpaca_eval_annotator_cache_is_exact_and_its_files_strict_json(server, monkeypatch, tmp_path):
    """alpaca_eval's weighted annotator on a scripted endpoint: its rows hold NaN for "no price",
    written as null (strict JSON), and a rerun served from its cache gives the same preferences to the
    last bit (alpaca_eval's own cache kept 10 decimals: a 1e-11 drift; issue 30, case 2)."""
    from harness.evaluation import alpaca

    refs = json.loads((ROOT / "data/demo/alpaca_eval.json").read_text())[:3]
    outs = [
        {"instruction": r["instruction"], "output": f"My answer {i}.", "generator": "tiny"}
        for i, r in enumerate(refs)
    ]
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    (tmp_path / "outs.json").write_text(json.dumps(outs))
    url, script = server([(200, chat_completion("m", {"m": -0.7001234567891234, "M": -0.6998765432109876}))])
    monkeypatch.setenv("TEST_JUDGE_KEY", "secret")
    annotator = {"name": "weighted_alpaca_eval_gpt4_turbo", "model": "judge", "base_url": url,
                 "api_key_env": "TEST_JUDGE_KEY"}  # fmt: skip
    job = {"benchmark": "alpaca_eval", "judge_name": annotator["name"], "annotator": annotator}
    texts = []
    for run in (1, 2):
        out = tmp_path / f"a{run}.json"
        alpaca.judge(job, str(tmp_path / "refs.json"), str(tmp_path / "outs.json"), str(out),
                     str(tmp_path / f"m{run}.json"), str(tmp_path / "cache.jsonl"))  # fmt: skip
        texts.append(out.read_text())
    assert len(script.seen) == 3  # the rerun asked nothing
    first, second = (json.loads(t, parse_constant=pytest.fail) for t in texts)
    prefs = [r["preference"] for r in first]
    assert all(1 < p < 2 for p in prefs)
    assert [r["preference"] for r in second] == prefs
    assert any(r.get("preference_price_per_example", 0) is None for r in first)
    cache = tmp_path / "cache.jsonl.alpaca_eval.json"
    json.loads(cache.read_text(), parse_constant=pytest.fail)


def test_an_mt_bench_rating_off_the_scale_is_kept_and_counted(server, monkeypatch, tmp_path, caplog):
    """A judge reply of [[1000]] is a rating of 1000 by FastChat's rule: the judgments file keeps it, the
    meta counts it (out_of_range) and a warning says the metrics will leave it out (issue 30, case 2)."""
    import logging

    from harness.evaluation import mt_bench

    questions, qids, answers = demo_mt_answers(tmp_path)
    url, _ = server(lambda body: (200, "Fine. Rating: [[1000]]" if "No." in str(body) else "Rating: [[6]]"))
    monkeypatch.setenv("TEST_JUDGE_KEY", "secret")
    judge = {"backend": "openai", "template": None, "batch_size": 8, "max_prompt_tokens": 4096,
             "model": {"name": "j", "source": "judge", "revision": None, "base_url": url, "api_key_env": "TEST_JUDGE_KEY"}}  # fmt: skip
    job = {"benchmark": "mt_bench", "cell": {"policy": "tiny"}, "judge_name": "j",
           "ref_categories": ["math", "reasoning", "coding"], "judge": judge}  # fmt: skip
    out, meta = tmp_path / "j.jsonl", tmp_path / "m.json"
    with caplog.at_level(logging.WARNING, logger="harness.evaluation.mt_bench"):
        mt_bench.judge(job, str(questions), str(answers), str(out), str(meta),
                       str(ROOT / "data/demo/mt_bench_judge_prompts.jsonl"),
                       str(ROOT / "data/demo/mt_bench_reference_answers.jsonl"))  # fmt: skip
    scores = [json.loads(line)["score"] for line in out.read_text().splitlines()]
    assert scores.count(1000.0) == len(qids) and scores.count(6.0) == len(qids)
    assert json.loads(meta.read_text())["out_of_range"] == len(qids)
    assert [r.getMessage() for r in caplog.records] == [
        f"{out}: {len(qids)} ratings outside 1-10 (e.g. 1000), kept as the judge gave them; the metrics "
        "leave them out unless evaluation.mt_bench.ratings is fastchat"
    ]
