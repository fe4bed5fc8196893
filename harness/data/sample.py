"""Step `sample`: K completions per prompt from the policy, in the policy's chat template.

Resumable: prompts are sampled in shards of ``shard_size``, each written atomically to
``<output>.shards/`` as soon as it is done. A killed job, run again with the same config and prompts,
loads the finished shards and samples only the rest; the final file is the same bytes either way,
because every generate batch lies inside one shard and is seeded from its own first prompt.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from harness.core.io import read_jsonl, write_json, write_jsonl
from harness.core.provenance import config_hash, provenance
from harness.core.records import Completion, PromptCompletions, load_prompts
from harness.core.seeding import seed_everything
from harness.core.shards import take

log = logging.getLogger(__name__)


def _shard_dir(output: str, job: dict, prompts) -> Path:
    """The shard directory, emptied unless it was started by this very config and prompt list."""
    shards = Path(f"{output}.shards")
    stamp = {"config": config_hash(job), "prompts": config_hash([p.id for p in prompts])}
    manifest = shards / "manifest.json"
    if shards.exists() and (not manifest.exists() or json.loads(manifest.read_text()) != stamp):
        shutil.rmtree(shards)
    if not shards.exists():
        shards.mkdir(parents=True)
        write_json(manifest, stamp)
    return shards


def run(job: dict, prompts_path: str, output: str, meta: str, shard: str | None = None) -> None:
    """Sample every prompt, or (``shard`` "i/N") the i-th part, cut at multiples of ``shard_size``."""
    from tqdm.auto import tqdm

    from harness.backends import load_backend

    started = time.time()
    s = job["sampling"]
    seed_everything(s["seed"])
    prompts = take(load_prompts(prompts_path), shard, align=s["shard_size"])
    shards = _shard_dir(output, job, prompts)
    size = s["shard_size"]
    backend = None
    outs: list[list[Completion]] = []
    resumed = tokens = 0
    bar = tqdm(total=len(prompts), desc=f"sample {job['policy']}", unit="prompt")
    for n, start in enumerate(range(0, len(prompts), size)):
        part = prompts[start : start + size]
        path = shards / f"shard-{n:05d}.jsonl"
        if path.exists():
            done = [[Completion(**c) for c in rec["completions"]] for _, rec in read_jsonl(path)]
            resumed += 1
            bar.update(len(part))
        else:
            backend = backend or load_backend(s["backend"], job["model"])
            texts = [backend.chat_prompt([{"role": "user", "content": p.prompt}]) for p in part]
            settings = ("temperature", "top_p", "max_new_tokens", "batch_size", "seed")
            done = backend.generate(texts, n=s["k"], bar=bar, **{k: s[k] for k in settings})
            write_jsonl(
                path,
                [PromptCompletions(p.id, p.prompt, c).to_dict() for p, c in zip(part, done, strict=True)],
            )
        outs.extend(done)
        tokens += sum(c.n_tokens for comps in done for c in comps)
        bar.set_postfix(tokens_per_s=f"{tokens / max(bar.format_dict['elapsed'], 1e-9):.0f}")
    bar.close()

    flat = [c for comps in outs for c in comps]
    counts = {
        "prompts": len(prompts),
        "completions": len(flat),
        "empty": sum(not c.text.strip() for c in flat),
        "truncated": sum(c.finish_reason == "length" for c in flat),
        "duplicate": sum(len(comps) - len({c.text for c in comps}) for comps in outs),
        "tokens": tokens,
        "shards": -(-len(prompts) // size),
        "shards_resumed": resumed,
        # prompts cut from the left to fit the context (in the shards sampled by this run)
        "prompts_truncated": getattr(backend, "prompts_truncated", 0),
    }
    log.info("sampled %s", counts)
    # the main output first, its meta after it: a kill between the two leaves no meta beside an
    # older output (the workflow reruns the job: its outputs are incomplete)
    write_jsonl(
        output, [PromptCompletions(p.id, p.prompt, c).to_dict() for p, c in zip(prompts, outs, strict=True)]
    )
    write_json(
        meta,
        {
            "policy": job["policy"],
            "sampling": s,
            **counts,
            "provenance": provenance(job, seed=s["seed"], started=started),
        },
    )
    shutil.rmtree(shards)
