"""`harness prefetch`: what it would download (offline: listed, not fetched), and the one line a step
gives offline when an asset is missing from the cache. The download itself needs the hub, which this
machine cannot reach (README says so)."""

import json
import re
import subprocess
import sys

import yaml

from harness.core.hub import url_cache
from harness.workflow import prefetch
from harness.workflow.config import load_config

from .conftest import ROOT


def test_lists_every_hub_model_dataset_and_url_of_the_paper_config():
    cfg = load_config(ROOT / "config/config.yaml")
    got = [prefetch.describe(a) for a in prefetch.assets(cfg)]
    assert got[:4] == [
        "model meta-llama/Meta-Llama-3-8B-Instruct@339ce92d052f002cdbac4a4bd551d1c61dd8345e",
        "model mistralai/Mistral-7B-Instruct-v0.2@63a8b081895390a26e140280378bc85ec8bce07a",
        "model RLHFlow/ArmoRM-Llama3-8B-v0.1@main",
        "model meta-llama/Meta-Llama-3-70B-Instruct@main",
    ]
    assert "dataset HuggingFaceH4/ultrafeedback_binarized@main split train_prefs" in got
    assert "dataset tatsu-lab/alpaca_eval@main df_gamed.csv" in got
    assert (
        sum(g.startswith("url https://raw.githubusercontent.com/lm-sys/FastChat/0e6d3e4b/") for g in got) == 3
    )
    # Arena-Hard-Auto at its pinned commit: questions, the baseline's answers, and the judge settings'
    # files (judge_utils.py and the two version configs), and tiktoken's gpt-4o encoding for its style
    arena = "url https://raw.githubusercontent.com/lmarena/arena-hard-auto/196f6b826783b3da7310e361a805fa36f0be83f3/"
    assert sorted(g.removeprefix(arena) for g in got if g.startswith(arena)) == [
        "config/arena-hard-v0.1.yaml",
        "config/arena-hard-v2.0.yaml",
        "data/arena-hard-v0.1/model_answer/gpt-4-0314.jsonl",
        "data/arena-hard-v0.1/question.jsonl",
        "utils/judge_utils.py",
    ]
    assert "tiktoken encoding o200k_base" in got
    assert len(got) == len(set(got)) == 12 + 6 + 62  # the two RewardBench subsets share one split
    # and the lm-eval tasks' datasets: ARC, HellaSwag, 57 MMLU subjects, TruthfulQA, WinoGrande, GSM8K


def test_demo_needs_nothing_from_the_hub():
    out = subprocess.run(
        [sys.executable, "-m", "harness", "prefetch", "--list", "--configfile", "config/demo.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("nothing to fetch")


def _offline_env(tmp_path):
    import os

    return dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "empty-hf-home"), PYTHONPATH=str(ROOT))


def _step(tmp_path, job, *args):
    cfg = tmp_path / "job.yaml"
    cfg.write_text(yaml.safe_dump(job))
    return subprocess.run(
        [sys.executable, "-m", "harness", *args[:1], "--config", str(cfg), *args[1:]],
        cwd=tmp_path,
        env=_offline_env(tmp_path),
        capture_output=True,
        text=True,
    )


def _prepare(tmp_path, kind, source, output):
    return _step(
        tmp_path, {"step": "prepare_data", "kind": kind, "source": source}, "prepare-data", "--output", output
    )


def test_offline_dataset_missing_from_the_cache_names_it_and_the_command(tmp_path):
    hub = {"repo_id": "HuggingFaceH4/ultrafeedback_binarized", "revision": "main", "split": "train_prefs",
           "field": "prompt", "id_field": "prompt_id"}  # fmt: skip
    r = _prepare(tmp_path, "prompts", {"hub": hub}, "p.jsonl")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: dataset HuggingFaceH4/ultrafeedback_binarized@main split train_prefs is not in the local cache"
    )
    assert "python -m harness prefetch --configfile" in last and "Traceback" not in r.stderr
    assert not (tmp_path / "p.jsonl").exists()


def test_offline_url_missing_from_the_cache(tmp_path):
    url = "https://raw.githubusercontent.com/lm-sys/FastChat/0e6d3e4b/fastchat/llm_judge/data/mt_bench/question.jsonl"
    r = _prepare(tmp_path, "mt_bench", {"url": url}, "q.jsonl")
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: url {url} is not in the local cache")


def test_offline_url_found_in_the_cache_is_used(tmp_path, monkeypatch):
    url = "https://example.org/pinned/question.jsonl"
    env = _offline_env(tmp_path)
    monkeypatch.setenv("HF_HOME", env["HF_HOME"])
    cached = url_cache(url)
    cached.parent.mkdir(parents=True)
    q = {"question_id": 81, "category": "writing", "turns": ["Write a haiku.", "Now a limerick."]}
    cached.write_text(json.dumps(q) + "\n")
    r = _prepare(tmp_path, "mt_bench", {"url": url}, "q.jsonl")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "q.jsonl").read_text().splitlines()[0])["question_id"] == 81


def test_offline_model_missing_from_the_cache(tmp_path):
    code = (
        "from harness.backends.hf import load_tokenizer\n"
        "load_tokenizer({'source': 'meta-llama/Meta-Llama-3-8B-Instruct', 'revision': '339ce92d'})"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=_offline_env(tmp_path), capture_output=True, text=True
    )
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "harness.core.hub.MissingAsset: model meta-llama/Meta-Llama-3-8B-Instruct@339ce92d is not in the local cache"
    )


def test_the_lm_eval_task_datasets_are_listed_at_their_pins():
    """The paper's lm-eval tasks name their hub datasets (read from lm-eval's task files; a group such as
    mmlu names each of its tasks' configs), at the task's dataset_revision where the config pins one."""
    from harness.workflow import prefetch
    from harness.workflow.config import load_config

    cfg = load_config(ROOT / "config/config.yaml")
    found = [a for a in prefetch.assets(cfg) if a["kind"] == "lm_eval"]
    by_task = {}
    for a in found:
        by_task.setdefault(a["used_by"].rsplit(".", 1)[1], set()).add((a["id"], a["name"]))
    assert by_task["arc_challenge"] == {("allenai/ai2_arc", "ARC-Challenge")}
    assert by_task["gsm8k"] == {("openai/gsm8k", "main")}
    assert len(by_task["mmlu"]) == 57 and {i for i, _ in by_task["mmlu"]} == {"cais/mmlu"}
    assert set(by_task) == {t["name"] for t in cfg["evaluation"]["downstream"]["tasks"]}
    # the paper pins each task's dataset at a 40-hex hub commit
    assert all(
        re.fullmatch(r"[0-9a-f]{40}", a["revision"]) and "unpinned" not in prefetch.describe(a) for a in found
    )
    assert {a["revision"] for a in found if a["id"] == "cais/mmlu"} == {
        "c30699e8356da336a370243923dbaf21066bb9fe"
    }
    del cfg["evaluation"]["downstream"]["tasks"][0]["dataset_revision"]
    unpinned = [a for a in prefetch.assets(cfg) if a["kind"] == "lm_eval" and a["id"] == "allenai/ai2_arc"]
    assert [a["revision"] for a in unpinned] == ["main"] and "unpinned" in prefetch.describe(unpinned[0])


def test_arena_hards_tokenizer_is_an_asset():
    """Arena-Hard's style metadata counts tokens with tiktoken's o200k_base, which tiktoken downloads on
    first use: prefetch lists (and fetches) it; counting words needs nothing."""
    from harness.core.io import read_yaml
    from harness.workflow import prefetch
    from harness.workflow.config import validate

    from .conftest import ROOT

    cfg = validate(read_yaml(ROOT / "config/demo.yaml"), "config/demo.yaml")
    assert not [a for a in prefetch.assets(cfg) if a["kind"] == "tiktoken"]
    cfg["evaluation"]["arena_hard"]["token_count"] = "o200k_base"
    (asset,) = [a for a in prefetch.assets(cfg) if a["kind"] == "tiktoken"]
    assert asset["id"] == "o200k_base" and prefetch.describe(asset) == "tiktoken encoding o200k_base"
