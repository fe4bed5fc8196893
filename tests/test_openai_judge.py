"""The OpenAI-compatible judge backend against a scripted local server (loopback only): retries with
backoff on 429 and 5xx, a clear failure when retries run out, text verdicts parsed and counted."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.backends.openai_compat import JudgeEndpointError, OpenAIBackend
from harness.judge import PairwiseJudge, RatingJudge, parse_rating


class Script:
    """Replies in order; the last one repeats."""

    def __init__(self, replies):
        self.replies, self.lock, self.seen = list(replies), threading.Lock(), []

    def next(self, body):
        with self.lock:
            self.seen.append(body)
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


def _completion(text):
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "judge",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
    }


@pytest.fixture
def server():
    holder = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, text = holder["script"].next(body)
            payload = json.dumps(
                _completion(text) if status == 200 else {"error": {"message": text}}
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def start(replies):
        holder["script"] = Script(replies)
        return f"http://127.0.0.1:{httpd.server_address[1]}/v1", holder["script"]

    yield start
    httpd.shutdown()


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


def test_rating_from_text(server, monkeypatch):
    url, _ = server([(200, "Helpful and correct. [[8]]")])
    judge = RatingJudge(_backend(url, monkeypatch), "mt_bench_single_v1.txt")
    (text,) = judge.judge([judge.render([("What is 2+2?", "4")])])
    assert parse_rating(text) == 8.0 and judge.unparsable == 0


def test_missing_api_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ValueError, match=r"environment variable NO_SUCH_KEY_VAR \(the API key\) is not set"):
        OpenAIBackend(
            {"source": "judge", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "NO_SUCH_KEY_VAR"}
        )
