"""Language-model backends, looked up by name and imported only when chosen.

A backend loads one model and offers two calls:
- ``generate(prompts, n, temperature, top_p, max_new_tokens, batch_size, seed)``: ``n`` completions
  for each chat-formatted prompt;
- ``option_logprobs(prompts, options, batch_size, max_prompt_tokens)``: the log-probability of each
  option string as the continuation of each prompt (judges read verdicts from these).
A backend without label log-probabilities (``supports_label_logprobs = False``, the OpenAI-compatible
one) offers ``complete(prompts, max_tokens)`` instead, and judges parse its text.
"""

from __future__ import annotations

import importlib

REGISTRY = {
    "transformers": ("harness.backends.hf", "TransformersBackend"),
    "vllm": ("harness.backends.vllm", "VLLMBackend"),
    "openai": ("harness.backends.openai_compat", "OpenAIBackend"),
}


def get_backend(name: str):
    """Return the backend class registered as ``name``; unknown names list the valid ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend '{name}'; valid backends: {', '.join(sorted(REGISTRY))}")
    module, cls = REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def load_backend(name: str, model: dict, **kwargs):
    """Instantiate backend ``name`` for a model reference ``{source, revision, dtype, trust_remote_code}``."""
    return get_backend(name)(model, **kwargs)
