"""Split a step's prompts over several jobs, and merge their outputs into the unsharded file.

A stage with ``shards: N`` in config (``sampling.shards``, ``rankers.<name>.shards``,
``evaluation.<benchmark>.generation.shards``) runs as N jobs, shard ``i`` of ``N`` taking one
contiguous range of the prompts; a merge job concatenates their record files in shard order and sums
their meta counts. Each range starts at a multiple of the step's ``align`` (sampling: its
checkpoint ``shard_size``; reward-model scoring: its scoring chunk), so every batch a sharded job forms
is a batch the unsharded job forms too: the merged records are the same bytes as one job's.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.core.io import read_json, write_json, write_text

SPEC = re.compile(r"^(\d+)/(\d+)$")


def parse(spec: str | None) -> tuple[int, int]:
    """``"2/3"`` -> (2, 3); None -> (1, 1). Shards count from 1."""
    if spec is None:
        return 1, 1
    m = SPEC.match(spec)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ValueError(f"--shard '{spec}': expected i/N with 1 <= i <= N")
    return int(m.group(1)), int(m.group(2))


def bounds(n_items: int, index: int, count: int, align: int = 1) -> tuple[int, int]:
    """The [start, end) range of shard ``index`` of ``count`` over ``n_items``, in blocks of ``align``.

    Blocks are dealt out contiguously and as evenly as whole blocks allow; a shard may be empty when
    there are fewer blocks than shards.
    """
    blocks = -(-n_items // align)
    per, extra = divmod(blocks, count)
    first = (index - 1) * per + min(index - 1, extra)
    last = first + per + (index <= extra)
    return min(first * align, n_items), min(last * align, n_items)


def take(items: list, spec: str | None, align: int = 1) -> list:
    index, count = parse(spec)
    start, end = bounds(len(items), index, count, align)
    return items[start:end]


def _sum(values: list):
    """Counts add up; nested counts add up key by key; anything else is the first shard's."""
    first = values[0]
    if isinstance(first, bool) or not isinstance(first, (int, float, dict)):
        return first
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for v in values for k in v))
        return {k: _sum([v[k] for v in values if k in v]) for k in keys}
    return sum(values)


def merge_meta(metas: list[dict]) -> dict:
    """One meta file from the shards': counts summed, settings and provenance from the first shard
    (with the CPU seconds of all shards where they ran warm: harness/workflow/warm.py, harness/core/timing.py)."""
    merged = {
        k: (metas[0][k] if k == "provenance" else _sum([m[k] for m in metas if k in m])) for k in metas[0]
    }
    provs = [m.get("provenance") or {} for m in metas]
    if provs[0].get("warm_start") and all("cpu_s" in p for p in provs):
        merged["provenance"] = {**provs[0], "cpu_s": round(sum(p["cpu_s"] for p in provs), 2)}
    merged["merged_shards"] = len(metas)
    return merged


def merge(inputs: list[str], output: str, metas: list[str] = (), meta: str | None = None) -> None:
    """Concatenate the shard record files in order into ``output`` (meta first, output last): JSONL
    line by line, a ``.json`` list (AlpacaEval answers) element by element, written as one job would."""
    if meta:
        write_json(meta, merge_meta([read_json(m) for m in metas]))
    if output.endswith(".json"):
        write_json(output, [row for p in inputs for row in read_json(p)])
    else:
        write_text(output, "".join(Path(p).read_text(encoding="utf-8") for p in inputs))
