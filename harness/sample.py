"""Step `sample`: K completions per prompt from the policy, in the policy's chat template."""

from __future__ import annotations

import logging
import time

from harness.io import write_json, write_jsonl
from harness.provenance import provenance
from harness.records import PromptCompletions, load_prompts
from harness.seeding import seed_everything

log = logging.getLogger(__name__)


def run(job: dict, prompts_path: str, output: str, meta: str) -> None:
    from harness.backends import load_backend

    started = time.time()
    s = job["sampling"]
    seed_everything(s["seed"])
    prompts = load_prompts(prompts_path)
    backend = load_backend(s["backend"], job["model"])
    texts = [backend.chat_prompt([{"role": "user", "content": p.prompt}]) for p in prompts]
    outs = backend.generate(
        texts,
        n=s["k"],
        temperature=s["temperature"],
        top_p=s["top_p"],
        max_new_tokens=s["max_new_tokens"],
        batch_size=s["batch_size"],
        seed=s["seed"],
        desc=f"sample {job['policy']}",
    )
    rows = [
        PromptCompletions(p.id, p.prompt, comps).to_dict() for p, comps in zip(prompts, outs, strict=True)
    ]
    flat = [c for comps in outs for c in comps]
    counts = {
        "prompts": len(prompts),
        "completions": len(flat),
        "empty": sum(not c.text.strip() for c in flat),
        "truncated": sum(c.finish_reason == "length" for c in flat),
        "duplicate": sum(len(comps) - len({c.text for c in comps}) for comps in outs),
        "tokens": sum(c.n_tokens for c in flat),
    }
    log.info("sampled %s", counts)
    write_json(
        meta,
        {
            "policy": job["policy"],
            "sampling": s,
            **counts,
            "provenance": provenance(job, seed=s["seed"], started=started),
        },
    )
    write_jsonl(output, rows)
