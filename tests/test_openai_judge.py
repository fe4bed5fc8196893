"""The OpenAI-compatible judge backend against a scripted local server (loopback only): retries with
backoff on 429 and 5xx, a clear failure when retries run out, text verdicts parsed and counted."""

import pytest

from harness.backends.openai_compat import JudgeEndpointError, OpenAIBackend
from harness.judge import PairwiseJudge, RatingJudge, parse_rating


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
    backend = _backend(url, monkeypatch, max_tries=3)
    with pytest.raises(JudgeEndpointError, match=r"gave up after 3 tries; last error: InternalServerError"):
        backend.complete(["[]"])


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
