"""Shared fixtures: the repository root, tiny models built once per session, offline hubs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """A policy, a reward model and a judge as in config/demo.yaml, built from code."""
    from harness import tiny

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
