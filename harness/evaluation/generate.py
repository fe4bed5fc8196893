"""Step `generate`: a model's answers to the evaluation sets.

AlpacaEval: a JSON list of ``{instruction, output, generator, dataset}`` (what alpaca_eval reads).
MT-Bench: FastChat's model_answer JSONL, two turns, the second turn seeing the first answer.
"""

from __future__ import annotations

import time
import uuid

from harness.core.benchmarks import get
from harness.core.io import write_json, write_jsonl
from harness.core.provenance import provenance
from harness.core.records import load_alpaca_instructions, load_mt_questions
from harness.core.seeding import seed_everything, subseed
from harness.core.shards import take


def _answers(backend, conversations, g, seed, desc):
    prompts = [backend.chat_prompt(c) for c in conversations]
    outs = backend.generate(
        prompts,
        n=1,
        temperature=g["temperature"],
        top_p=g["top_p"],
        max_new_tokens=g["max_new_tokens"],
        batch_size=g["batch_size"],
        seed=seed,
        desc=desc,
    )
    return [o[0] for o in outs]


def _by_temperature(backend, conversations, questions, temps: dict, g: dict, seed: int, desc: str):
    """Answers in question order, each at its category's temperature (FastChat's per-category
    settings; ``generation.temperature`` for a category without one), one generate call per value."""
    chosen = [float(temps.get(q.category, g["temperature"])) for q in questions]
    out = [None] * len(questions)
    for t in sorted(set(chosen)):
        where = [i for i, c in enumerate(chosen) if c == t]
        label = desc if len(set(chosen)) == 1 else f"{desc} (temperature {t:g})"
        answers = _answers(backend, [conversations[i] for i in where], {**g, "temperature": t}, seed, label)
        for i, a in zip(where, answers, strict=True):
            out[i] = a
    return out


def _counts(completions, backend) -> dict:
    """Empty and cut-off answers are kept (they are the model's answers) and counted, and so are
    prompts the backend cut to fit the model's context."""
    return {
        "answers": len(completions),
        "empty": sum(not c.text.strip() for c in completions),
        "truncated": sum(c.finish_reason == "length" for c in completions),
        "prompts_truncated": getattr(backend, "prompts_truncated", 0),
    }


def run(job: dict, eval_set: str, output: str, meta: str, shard: str | None = None) -> None:
    """Answer the eval set, or (``shard`` "i/N") its i-th part, cut at multiples of the batch size."""
    from harness.backends import load_backend

    started = time.time()
    seed = job["seed"]
    seed_everything(seed)
    backend = load_backend(job["generation"]["backend"], job["model"])
    records, outs = get(job["benchmark"]).hook("generate")(job, eval_set, backend, shard)
    (write_json if get(job["benchmark"]).ext == ".json" else write_jsonl)(output, records)
    write_json(meta, {**_counts(outs, backend), "provenance": provenance(job, seed=seed, started=started)})


def instruction_answers(job: dict, eval_set: str, backend, shard: str | None) -> tuple[list[dict], list]:
    """AlpacaEval: one answer per instruction, as alpaca_eval's model outputs (its registry hook)."""
    g, name, seed = job["generation"], job["generator"], job["seed"]
    rows = take(load_alpaca_instructions(eval_set), shard, align=g["batch_size"])
    outs = _answers(
        backend,
        [[{"role": "user", "content": r["instruction"]}] for r in rows],
        g,
        seed,
        f"{job['benchmark']} {name}",
    )
    records = [
        {
            "instruction": r["instruction"],
            "output": o.text,
            "generator": name,
            "dataset": r.get("dataset", ""),
        }
        for r, o in zip(rows, outs, strict=True)
    ]
    return records, outs


def two_turn_answers(job: dict, eval_set: str, backend, shard: str | None) -> tuple[list[dict], list]:
    """MT-Bench: both turns of every question, the second seeing the first answer, as FastChat's
    answer records (its registry hook)."""
    g, name, seed = job["generation"], job["generator"], job["seed"]
    questions = take(load_mt_questions(eval_set), shard, align=g["batch_size"])
    temps = job.get("category_temperatures", {})
    label = f"{job['benchmark']} turn {{}} {name}"
    convs = [[{"role": "user", "content": q.turns[0]}] for q in questions]
    first = _by_temperature(backend, convs, questions, temps, g, seed, label.format(1))
    convs = [
        c + [{"role": "assistant", "content": a.text}, {"role": "user", "content": q.turns[1]}]
        for c, a, q in zip(convs, first, questions, strict=True)
    ]
    second = _by_temperature(backend, convs, questions, temps, g, subseed("turn2", 0, seed), label.format(2))
    records = [
        {
            "question_id": q.question_id,
            "answer_id": uuid.UUID(int=subseed("answer", f"{name}/{q.question_id}", seed)).hex,
            "model_id": name,
            "choices": [{"index": 0, "turns": [a1.text, a2.text]}],
        }
        for q, a1, a2 in zip(questions, first, second, strict=True)
    ]
    return records, first + second


def arena_answers(job: dict, eval_set: str, backend, shard: str | None) -> tuple[list[dict], list]:
    """Arena-Hard: one answer per question, in Arena-Hard-Auto's model_answer layout with the style
    metadata its style control reads (its registry hook)."""
    from harness.core.arena import answer_record, load_questions
    from harness.evaluation.arena_hard import style_metadata, token_counter

    g, name, seed = job["generation"], job["generator"], job["seed"]
    count = token_counter(job["token_count"])
    questions = take(load_questions(eval_set), shard, align=g["batch_size"])
    convs = [[{"role": "user", "content": q["prompt"]}] for q in questions]
    outs = _answers(backend, convs, g, seed, f"{job['benchmark']} {name}")
    records = [
        answer_record(q["uid"], name, q["prompt"], o.text, style_metadata(o.text, count(o.text)))
        for q, o in zip(questions, outs, strict=True)
    ]
    return records, outs
