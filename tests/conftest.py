"""Shared fixtures: the repository root, tiny models built once per session, offline hubs."""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# `.venv/bin/pytest` without the venv on PATH: snakemake, ruff and the workflow's `python` are the
# interpreter's own neighbours (the venv's bin directory), as under `make test`
_BIN = str(Path(sys.executable).parent)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """A policy, a reward model and a judge as in config/demo.yaml, built from code."""
    from harness.demo import tiny

    out = tmp_path_factory.mktemp("models") / "tiny"
    job = {
        "tokenizer": {
            "vocab_size": 640,
            "corpus": [str(ROOT / "data/demo/prompts.jsonl"), str(ROOT / "data/demo/alpaca_eval.json")],
        },
        "models": {
            "policy": {
                "kind": "causal_lm",
                "hidden_size": 32,
                "num_layers": 1,
                "num_heads": 2,
                "max_position_embeddings": 512,
                "seed": 1,
            },
            "reward": {
                "kind": "reward_model",
                "hidden_size": 32,
                "num_layers": 1,
                "num_heads": 2,
                "max_position_embeddings": 512,
                "seed": 2,
            },
        },
    }
    tiny.run(job, str(out))
    return out


def pythonpath() -> str:
    """This checkout first, then whatever PYTHONPATH the caller had (a machine may add packages that way)."""
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


def model_ref(path: Path) -> dict:
    return {
        "name": path.name,
        "source": str(path),
        "revision": None,
        "dtype": "float32",
        "trust_remote_code": False,
    }


def ipr_job(judge_model: Path, batch_size: int = 16) -> dict:
    """A rank job: IPR (best and worst) with a tiny model as the pairwise judge."""
    judge = {
        "backend": "transformers",
        "model": model_ref(judge_model),
        "template": "pairwise_v1.txt",
        "batch_size": batch_size,
        "max_prompt_tokens": 256,
    }
    ranker = {
        "name": "ipr",
        "kind": "ipr",
        "judge": judge,
        "procedure": "best_worst",
        "pairs": {"strategy": "best_worst"},
    }
    return {"policy": "policy", "seed": 0, "ranker": ranker}


def shared(*parts: str) -> Path:
    """A file under ../shared/data, or a skip naming what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (reference data lives in ../shared/data beside the checkout)")
    return path


class Script:
    """A scripted OpenAI-compatible server's replies: a list, in order (the last one repeats), or a
    function of the request body. A reply is ``(status, text)`` (a chat completion with that text) or
    ``(status, dict)`` (sent as it is)."""

    def __init__(self, replies):
        self.replies = replies if callable(replies) else list(replies)
        self.lock, self.seen = threading.Lock(), []

    def next(self, body):
        with self.lock:
            self.seen.append(body)
            if not callable(self.replies):
                return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return self.replies(body)  # outside the lock: a slow reply holds up only its own request


def chat_completion(text: str, logprobs: dict | None = None) -> dict:
    """A chat completion reply; ``logprobs`` maps candidate first tokens to log-probabilities."""
    choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
    if logprobs is not None:
        top = [{"token": t, "logprob": lp, "bytes": None} for t, lp in logprobs.items()]
        choice["logprobs"] = {
            "content": [{"token": text, "logprob": top[0]["logprob"], "bytes": None, "top_logprobs": top}]
        }
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "judge",
        "choices": [choice],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
    }


@pytest.fixture
def server():
    """Start a scripted OpenAI-compatible server on loopback: ``url, script = server(replies)``."""
    holder = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, reply = holder["script"].next(body)
            if status != 200:
                reply = {"error": {"message": reply}}
            elif isinstance(reply, str):
                reply = chat_completion(reply)
            payload = reply if isinstance(reply, bytes) else json.dumps(reply).encode()  # bytes: sent raw
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


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory) -> Path:
    """The real SmolLM2-135M-Instruct, converted from its GGUF file by the convert-gguf step (once a session)."""
    from . import real_model

    real_model.require_package()
    return real_model.convert(tmp_path_factory.mktemp("real") / "smollm2")


@pytest.fixture(scope="session")
def smollm2_bos(smollm2, tmp_path_factory) -> Path:
    """SmolLM2 whose tokenizer and chat template both add a BOS token, as Llama-3's and Gemma's do."""
    from . import real_model

    return real_model.bos_variant(smollm2, tmp_path_factory.mktemp("real") / "smollm2-bos")


def demo_mt_answers(tmp_path: Path) -> tuple[Path, list[int], Path]:
    """The demo's MT-Bench questions, their ids and a model's answers to them ("Yes.", then "No.")."""
    questions = ROOT / "data/demo/mt_bench_questions.jsonl"
    qids = [json.loads(line)["question_id"] for line in questions.read_text().splitlines()]
    answers = tmp_path / "answers.jsonl"
    turns = {"index": 0, "turns": ["Yes.", "No."]}
    answers.write_text(
        "".join(json.dumps({"question_id": q, "model_id": "tiny", "choices": [turns]}) + "\n" for q in qids)
    )
    return questions, qids, answers
