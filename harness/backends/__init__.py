"""Language-model backends, looked up by name and imported only when chosen.

A backend loads one model and offers two calls:
- ``generate(prompts, n, temperature, top_p, max_new_tokens, batch_size, seed)``: ``n`` completions
  for each chat-formatted prompt;
- ``option_logprobs(prompts, options, batch_size, max_prompt_tokens)``: the log-probability of each
  option string as the continuation of each prompt (judges read verdicts from these).
A backend without label log-probabilities (``supports_label_logprobs = False``, the OpenAI-compatible
one) offers ``complete(prompts, max_tokens)`` instead, and judges parse its text. ``oracle`` is the
demo world's ground-truth judge (harness/demo/oracle.py), registered here so that code asks what a
backend is (``spec(name)``) instead of testing its name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    module: str
    cls: str
    loads_weights: (
        bool  # loads a model of `models` here (its revision and files are part of a judge's identity)
    )
    endpoint: bool = False  # an API: `model` is the endpoint's model name, the work is billed, not GPU time
    ground_truth: bool = False  # the demo world's oracle: judges from the answer key; no model, no template


REGISTRY = {
    "transformers": Backend("harness.backends.hf", "TransformersBackend", loads_weights=True),
    "vllm": Backend("harness.backends.vllm", "VLLMBackend", loads_weights=True),
    "openai": Backend("harness.backends.openai_compat", "OpenAIBackend", loads_weights=False, endpoint=True),
    # the demo world's oracle (or a simulated judge with its errors): a pairwise judge, not a language model
    "oracle": Backend("harness.demo.oracle", "OracleJudge", loads_weights=False, ground_truth=True),
}


def spec(name: str) -> Backend:
    """What kind of backend ``name`` is; unknown names list the valid ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend '{name}'; valid backends: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def loads_model(jcfg: dict) -> bool:
    """Whether a judge runs a model of ``models`` here (not an API endpoint, not the demo's oracle)."""
    return spec(jcfg["backend"]).loads_weights


def get_backend(name: str):
    """Return the backend class registered as ``name``; unknown names list the valid ones."""
    b = spec(name)
    return getattr(importlib.import_module(b.module), b.cls)


def load_backend(name: str, model: dict, **kwargs):
    """Instantiate backend ``name`` for a model reference ``{source, revision, dtype, trust_remote_code}``."""
    return get_backend(name)(model, **kwargs)
