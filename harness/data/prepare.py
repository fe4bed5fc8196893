"""Step `prepare-data`: bring a dataset (prompts, AlpacaEval set, MT-Bench questions) into its local
record format, from a local file, a hub dataset at a pinned revision, or a raw URL at a pinned commit.
The local file is validated record by record; a bad line fails naming file, line and field."""

from __future__ import annotations

import json
import logging
import tempfile
import urllib.request
from pathlib import Path

from harness.core.arena import (
    answer_record,
    check_judge_settings,
    is_checkout,
    load_baselines,
    load_questions,
)
from harness.core.benchmarks import data_format, data_stems
from harness.core.hub import hub_asset, missing, offline, url_cache
from harness.core.io import RecordError, read_json, write_json, write_jsonl
from harness.core.records import (
    load_alpaca_instructions,
    load_demonstrations,
    load_judge_prompts,
    load_mt_questions,
    load_preferences,
    load_prompts,
    load_reference_answers,
)

log = logging.getLogger(__name__)


def _fetch(source: dict, suffix: str, kind: str = "prompts") -> Path:
    """A local path to the raw file behind ``source`` (downloads hub files and URLs, generates the
    demo world's files)."""
    if "path" in source:
        return Path(source["path"])
    if "world" in source:
        return _world_file(source["world"], kind)
    if "url" in source:
        cached = url_cache(source["url"])  # `harness prefetch` put it there
        if cached.exists():
            return cached
        if offline():
            raise missing(f"url {source['url']}")
        tmp = Path(tempfile.mkdtemp()) / f"download{suffix}"
        urllib.request.urlretrieve(source["url"], tmp)  # noqa: S310 - a pinned raw URL from config
        return tmp
    hub = source["hub"]
    what = f"dataset {hub['repo_id']}@{hub.get('revision') or 'main'}"
    if hub.get("filename"):
        from huggingface_hub import hf_hub_download

        with hub_asset(f"{what} {hub['filename']}"):
            return Path(
                hf_hub_download(
                    hub["repo_id"], hub["filename"], revision=hub["revision"], repo_type="dataset"
                )
            )
    with hub_asset(f"{what} split {hub.get('split')}"):
        return _hub_split_to_prompts(hub, kind)


def world_rows(spec: dict, kind: str) -> list[dict]:
    """Records of ``kind`` generated from the demo world (harness.demo.world) as ``spec`` asks."""
    import random

    from harness.demo import world

    tasks = world.select(spec.get("groups"), spec.get("tasks"))
    evals = ("alpaca_instructions", "arena_hard_questions", "arena_hard_answers")
    split = spec.get("split") or ("eval" if kind in evals else "train")
    seed = spec.get("seed", 0)
    if kind == "task_data":
        from harness.demo.world import downstream_rows

        return downstream_rows(spec)
    if kind in ("fastchat_questions", "fastchat_references"):  # two-turn; categories are task groups
        if spec.get("split", "eval") != "eval":
            raise RecordError("the demo world's MT-Bench questions come from the eval split only")
        rows = []
        for i, (task, a1, a2) in enumerate(world.two_turn(spec["n"], seed, tasks)):
            if kind == "fastchat_questions":
                rows.append(
                    {
                        "question_id": i + 1,
                        "category": task.group,
                        "turns": [task.prompt(a1), task.prompt(a2)],
                    }
                )
            else:  # the answer key, for the categories graded against a reference
                rows.append(
                    {
                        "question_id": i + 1,
                        "choices": [{"index": 0, "turns": [task.answer(a1), task.answer(a2)]}],
                    }
                )
        return rows
    # evaluation sets and training prompts never repeat a prompt; demonstrations and preferences may
    distinct = kind in ("prompts", "alpaca_instructions", "arena_hard_questions", "arena_hard_answers")
    items = world.instances(spec["n"], seed, tasks, split, distinct=distinct)
    rng = random.Random(f"world-{kind}-{seed}")
    rows = []
    for i, (task, args) in enumerate(items):
        pid, prompt = f"{task.name}-{i:04d}", task.prompt(args)
        if kind == "prompts":
            rows.append({"id": pid, "prompt": prompt})
        elif kind == "demonstrations":
            answer = world.demonstration(task, args, rng, spec.get("noise", 0.0))
            rows.append({"id": pid, "prompt": prompt, "completion": answer})
        elif kind == "preferences":
            chosen, rejected = world.preference(task, args, rng)
            rows.append({"id": pid, "prompt": prompt, "chosen": chosen, "rejected": rejected})
        elif kind == "alpaca_instructions":
            rows.append(
                {
                    "instruction": prompt,
                    "output": task.answer(args),
                    "generator": "world_answer_key",
                    "dataset": f"{task.group}/{task.name}",
                }
            )
        elif kind == "arena_hard_questions":  # one category, as v0.1's
            rows.append({"uid": pid, "category": spec.get("category", "arena-hard-v0.1"), "prompt": prompt})
        elif kind == "arena_hard_answers":  # a fixed baseline model of the world: its habit at ``noise``
            answer = world.demonstration(task, args, rng, spec.get("noise", 0.5))
            rows.append(answer_record(pid, spec.get("model", "world-baseline"), prompt, answer, {}))
        else:
            raise RecordError(f"the demo world makes no '{kind}' records")
    return rows


def _upstream_settings(source: dict) -> dict:
    """Judge settings from an Arena-Hard-Auto checkout (``path``) or its raw files at a commit (``url``
    ending in ``/``): its judge_utils.py and whichever version configs it has."""
    from harness.core.arena import UPSTREAM_CONFIGS, UPSTREAM_SETTINGS, upstream_settings

    if "url" in source:

        def read(name):
            return _fetch({"url": source["url"] + name}, Path(name).suffix).read_text(encoding="utf-8")

        names = UPSTREAM_CONFIGS
    else:
        root = Path(source["path"])
        if not (root / UPSTREAM_SETTINGS).is_file():
            raise RecordError(f"{root}: not an Arena-Hard-Auto checkout (no {UPSTREAM_SETTINGS})")
        names = [n for n in UPSTREAM_CONFIGS if (root / n).is_file()]

        def read(name):
            return (root / name).read_text(encoding="utf-8")

    where = source.get("url") or f"{source['path'].rstrip('/')}/"
    return upstream_settings(read(UPSTREAM_SETTINGS), {f"{where}{n}": read(n) for n in names}, where)


def _world_file(spec: dict, kind: str) -> Path:
    rows = world_rows(spec, kind)
    if kind == "alpaca_instructions":
        tmp = Path(tempfile.mkdtemp()) / "world.json"
        tmp.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    else:
        tmp = Path(tempfile.mkdtemp()) / "world.jsonl"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return tmp


def split_hh_transcript(text: str) -> tuple[str, str]:
    """Anthropic HH: a transcript "\n\nHuman: ...\n\nAssistant: ..." -> (dialogue before the last
    assistant turn, that last turn)."""
    head, sep, last = text.rpartition("\n\nAssistant:")
    if not sep:
        raise ValueError("not an HH transcript: no '\\n\\nAssistant:' turn")
    return head.strip(), last.strip()


def _hub_rows(hub: dict, kind: str):
    from datasets import load_dataset

    ds = load_dataset(hub["repo_id"], revision=hub["revision"], split=hub["split"])
    for i, row in enumerate(ds):
        if any(row.get(col) != val for col, val in (hub.get("where") or {}).items()):
            continue
        pid = str(row[hub["id_field"]] if hub.get("id_field") else i)
        if kind == "prompts":
            yield {"id": pid, "prompt": row[hub["field"]]}
        elif hub.get("format") == "hh_transcript":
            prompt, chosen = split_hh_transcript(row["chosen"])
            _, rejected = split_hh_transcript(row["rejected"])
            yield {"id": pid, "prompt": prompt, "chosen": chosen, "rejected": rejected}
        else:
            yield {
                "id": pid,
                "prompt": row[hub["field"]],
                "chosen": row["chosen"],
                "rejected": row["rejected"],
            }


def _hub_split_to_prompts(hub: dict, kind: str = "prompts") -> Path:
    tmp = Path(tempfile.mkdtemp()) / f"{kind}.jsonl"
    with open(tmp, "w", encoding="utf-8") as f:
        for row in _hub_rows(hub, kind):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return tmp


def _json_list(path: Path) -> bool:
    """Whether ``path`` is a file whose first non-blank byte opens a JSON list. Reads bytes, so a file
    that is a directory or not UTF-8 is left to the loader, which names it (and the line)."""
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        while block := f.read(1 << 16):
            if head := block.lstrip():
                return head.startswith(b"[")
    return False


def run(job: dict, output: str) -> int:
    """Write the dataset named by ``job['kind']`` (prompts, preferences, demonstrations, or a benchmark's
    data file: harness/core/benchmarks.py) to ``output``; return the number of records."""
    kind, source = data_format(job["kind"]), job["source"]  # a benchmark's file: its record format
    sources = source if isinstance(source, list) else [source]
    planned = job.get("source_sha256")
    shas = planned if isinstance(planned, list) else [planned] * len(sources)
    if len(shas) != len(sources):
        raise RecordError(
            f"source_sha256: {len(shas)} checksums for {len(sources)} sources (a hand-made job?)"
        )
    for s, sha in zip(sources, shas, strict=True):
        if sha:  # the file the workflow planned with, not one edited since
            from harness.core.arena import source_sha256

            if source_sha256(s["path"]) != sha:
                raise RecordError(
                    f"{s['path']}: changed since the workflow planned this job; rerun the workflow"
                )
    if isinstance(source, list):  # several files into one: Arena-Hard baselines (v2.0: one per category)
        if kind != "arena_hard_answers":
            raise RecordError(f"{job['kind']}: takes one source, not a list")
        rows, seen = [], {}
        for s in source:
            path = _fetch(s, ".jsonl", kind)
            for model, answers in load_baselines(str(path)).items():
                if model in seen:
                    raise RecordError(f"{path}: answers of {model}, which {seen[model]} has given already")
                seen[model] = path
                rows += answers.values()
        write_jsonl(output, rows)
        return len(rows)
    skip = source.get("skip") or 0  # a window of the file: [skip, skip + limit)
    limit = None if source.get("limit") is None else skip + source["limit"]
    if kind == "prompts":
        raw = _fetch(source, ".jsonl")
        if _json_list(raw):  # AlpacaEval's JSON list: ids are places
            found = [{"id": f"alpaca_eval/{i}", "prompt": r["instruction"]}
                     for i, r in enumerate(load_alpaca_instructions(raw))]  # fmt: skip
        else:
            found = [{"id": p.id, "prompt": p.prompt} for p in load_prompts(raw)]
        rows = found[skip:limit]
        write_jsonl(output, rows)
    elif kind == "alpaca_instructions":
        rows = load_alpaca_instructions(_fetch(source, ".json", kind))[skip:limit]
        write_json(output, rows)
    elif kind == "fastchat_questions":
        rows = [
            {"question_id": q.question_id, "category": q.category, "turns": list(q.turns)}
            for q in load_mt_questions(_fetch(source, ".jsonl", kind))
        ][skip:limit]
        write_jsonl(output, rows)
    elif kind == "fastchat_judge_prompts":
        prompts = load_judge_prompts(_fetch(source, ".jsonl"))
        rows = [prompts[name] for name in sorted(prompts)]
        write_jsonl(output, rows)
    elif kind == "fastchat_references":
        refs = load_reference_answers(_fetch(source, ".jsonl", kind))
        rows = [
            {"question_id": q, "choices": [{"index": 0, "turns": list(t)}]} for q, t in sorted(refs.items())
        ]
        write_jsonl(output, rows)
    elif kind == "task_data":  # the data file of the project's lm-eval tasks, as it comes
        from harness.core.io import read_jsonl

        rows = [rec for _, rec in read_jsonl(_fetch(source, ".jsonl", kind))][skip:limit]
        write_jsonl(output, rows)
    elif kind == "preferences":
        identical = [] if "hub" in source else None  # a hub set's few equal answers: left out, counted
        rows = load_preferences(_fetch(source, ".jsonl", kind), identical)[skip:limit]
        if identical:
            log.warning(
                "%d pairs with the same chosen and rejected text left out (ids %s ...)",
                len(identical),
                identical[:3],
            )
            print(f"{output}: {len(identical)} pairs with equal answers left out")
        write_jsonl(output, rows)
    elif kind == "demonstrations":
        rows = load_demonstrations(_fetch(source, ".jsonl", kind))[skip:limit]
        write_jsonl(output, rows)
    elif kind == "arena_hard_questions":
        rows = load_questions(_fetch(source, ".jsonl", kind))[skip:limit]
        write_jsonl(output, rows)
    elif kind == "arena_hard_answers":  # kept whole (a window of questions keeps every answer)
        rows = [
            r
            for answers in load_baselines(str(_fetch(source, ".jsonl", kind))).values()
            for r in answers.values()
        ]
        write_jsonl(output, rows)
    elif kind == "arena_hard_judge_settings":  # our JSON, or built from Arena-Hard-Auto's own files
        settings = (
            _upstream_settings(source) if is_checkout(source) else read_json(_fetch(source, ".json", kind))
        )
        rows = [check_judge_settings(settings, source)]
        write_json(output, rows[0])
    else:
        valid = ["prompts", "preferences", "demonstrations", *data_stems()]
        raise RecordError(f"unknown dataset kind '{job['kind']}'; valid: {', '.join(valid)}")
    return len(rows)
