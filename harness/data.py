"""Step `prepare-data`: bring a dataset (prompts, AlpacaEval set, MT-Bench questions) into its local
record format, from a local file, a hub dataset at a pinned revision, or a raw URL at a pinned commit.
The local file is validated record by record; a bad line fails naming file, line and field."""

from __future__ import annotations

import json
import tempfile
import urllib.request
from pathlib import Path

from harness.io import RecordError, write_json, write_jsonl
from harness.records import load_alpaca_instructions, load_mt_questions, load_prompts


def _fetch(source: dict, suffix: str) -> Path:
    """A local path to the raw file behind ``source`` (downloads hub files and URLs)."""
    if "path" in source:
        return Path(source["path"])
    if "url" in source:
        tmp = Path(tempfile.mkdtemp()) / f"download{suffix}"
        urllib.request.urlretrieve(source["url"], tmp)  # noqa: S310 - a pinned raw URL from config
        return tmp
    hub = source["hub"]
    if hub.get("filename"):
        from huggingface_hub import hf_hub_download

        return Path(
            hf_hub_download(hub["repo_id"], hub["filename"], revision=hub["revision"], repo_type="dataset")
        )
    return _hub_split_to_prompts(hub)


def _hub_split_to_prompts(hub: dict) -> Path:
    from datasets import load_dataset

    ds = load_dataset(hub["repo_id"], revision=hub["revision"], split=hub["split"])
    tmp = Path(tempfile.mkdtemp()) / "prompts.jsonl"
    with open(tmp, "w", encoding="utf-8") as f:
        for i, row in enumerate(ds):
            pid = row[hub["id_field"]] if hub.get("id_field") else i
            f.write(json.dumps({"id": str(pid), "prompt": row[hub["field"]]}, ensure_ascii=False) + "\n")
    return tmp


def run(job: dict, output: str) -> int:
    """Write the dataset named by ``job['kind']`` to ``output``; return the number of records."""
    kind, source = job["kind"], job["source"]
    limit = source.get("limit")
    if kind == "prompts":
        rows = [{"id": p.id, "prompt": p.prompt} for p in load_prompts(_fetch(source, ".jsonl"))][:limit]
        write_jsonl(output, rows)
    elif kind == "alpaca_eval":
        rows = load_alpaca_instructions(_fetch(source, ".json"))[:limit]
        write_json(output, rows)
    elif kind == "mt_bench":
        rows = [
            {"question_id": q.question_id, "category": q.category, "turns": list(q.turns)}
            for q in load_mt_questions(_fetch(source, ".jsonl"))
        ][:limit]
        write_jsonl(output, rows)
    else:
        raise RecordError(f"unknown dataset kind '{kind}'; valid: prompts, alpaca_eval, mt_bench")
    return len(rows)
