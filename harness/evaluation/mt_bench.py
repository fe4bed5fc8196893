"""Steps `judge` and `metrics` for MT-Bench: FastChat's single-answer grading, two turns.

Each turn of each answer is graded 1-10 with FastChat's templates: ``single-v1`` for the first turn,
``single-v1-multi-turn`` (the whole conversation, grading the second answer) for the second, and
their ``single-math-*`` variants, which add the reference answers, for the categories in
``ref_categories`` (math, reasoning, coding). The score is parsed by FastChat's rule: the first
``[[n]]`` of the verdict, else the first ``[n]``, with no range check (harness/ranking/verdicts.py
``parse_rating``): the judgments file keeps what the judge said. A text verdict with neither is asked once more (our addition, counted apart as
``retried`` in the meta file); if that fails too, the turn gets FastChat's score -1, is counted, and
is left out of every mean. Files follow FastChat's ``model_judgment`` layout; the means are FastChat's
``show_result`` arithmetic (every score but -1, over both turns, per turn, per category), except that a
rating outside 1-10 (a judge's ``[[11]]``, an edited file's 1000) is counted (``n_out_of_range``) and
left out like -1; ``ratings: fastchat`` averages it as FastChat does.
"""

from __future__ import annotations

import functools
import logging
import time

import numpy as np

from harness.backends import spec
from harness.core.benchmarks import write_metrics
from harness.core.io import RecordError, write_json, write_jsonl
from harness.core.provenance import provenance
from harness.core.records import (
    MTQuestion,
    check_coverage,
    load_judge_prompts,
    load_mt_answers,
    load_mt_judgments,
    load_mt_questions,
    load_reference_answers,
)
from harness.core.stats import bootstrap_mean_ci, sum_count_cells

log = logging.getLogger(__name__)
BENCHMARK = "mt_bench"
LOW, HIGH = 1, 10  # the scale the judge prompts ask for


def counted(score: float, ratings: str) -> bool:
    """Whether a rating enters the means: never -1 (no rating); outside 1-10 only with ``fastchat``."""
    return score != -1 and (ratings == "fastchat" or LOW <= score <= HIGH)


def out_of_range(score: float) -> bool:
    return score != -1 and not LOW <= score <= HIGH


def template_name(turn: int, with_reference: bool) -> str:
    return ("single-math-v1" if with_reference else "single-v1") + ("-multi-turn" if turn == 2 else "")


def render(prompts: dict, q: MTQuestion, answers: list[str], turn: int, refs: tuple | None) -> list[dict]:
    """The judge conversation (system, user) grading ``turn`` of ``answers`` to ``q``."""
    name = template_name(turn, refs is not None)
    t = prompts[name]
    if turn == 1:
        fields = {"question": q.turns[0], "answer": answers[0]}
        if refs is not None:
            fields["ref_answer_1"] = refs[0]
    else:
        fields = {
            "question_1": q.turns[0],
            "answer_1": answers[0],
            "question_2": q.turns[1],
            "answer_2": answers[1],
        }
        if refs is not None:
            fields.update(ref_answer_1=refs[0], ref_answer_2=refs[1])
    try:
        user = t["prompt_template"].format(**fields)
    except (KeyError, IndexError) as e:
        raise RecordError(f"judge prompt '{name}' has a field this step does not fill: {e}") from None
    return [{"role": "system", "content": t["system_prompt"]}, {"role": "user", "content": user}]


def _conversation(prompts: dict, q: MTQuestion, turn: int, refs: tuple | None, *answers: str) -> list[dict]:
    return render(prompts, q, list(answers), turn, refs)


def judge_step(job: dict, f: dict) -> None:
    """The `judge` step (its files by option name, harness/cli.py)."""
    judge(
        job,
        *(f[k] for k in ("eval_set", "answers", "output", "meta", "judge_prompts", "references", "cache")),
    )


def metrics_step(job: dict, f: dict) -> None:
    """The `metrics` step (its files by option name, harness/cli.py)."""
    metrics(job, f["eval_set"], f["judgments"], f["output"])


def judge(job: dict, questions_path: str, answers_path: str, output: str, meta: str, judge_prompts: str,
          references: str, cache=None) -> None:  # fmt: skip
    """Grade both turns of every answer; write FastChat judgments to ``output`` and counts to ``meta``."""
    from harness.core.cache import digest
    from harness.ranking.judge import RatingJudge
    from harness.ranking.verdicts import parse_rating

    started = time.time()
    questions = {q.question_id: q for q in load_mt_questions(questions_path)}
    answers = load_mt_answers(answers_path)
    if set(answers) != set(questions):
        raise RecordError(
            f"{answers_path}: answers cover {len(set(answers) & set(questions))} of "
            f"{len(questions)} questions and {len(set(answers) - set(questions))} unknown ones"
        )
    prompts = load_judge_prompts(judge_prompts)
    refs = load_reference_answers(references)
    need_ref = set(job["ref_categories"])
    missing = sorted(qid for qid, q in questions.items() if q.category in need_ref and qid not in refs)
    if missing:
        raise RecordError(
            f"{references}: no reference answer for question(s) {missing} (categories {sorted(need_ref)})"
        )
    oracle = spec(job["judge"]["backend"]).ground_truth  # the demo world: its answer key grades
    if oracle:
        from harness.demo.oracle import OracleJudge

        rater = OracleJudge()
    else:  # the templates' content is part of every cached verdict's key
        rater = RatingJudge.from_config(job["judge"], cache, judge_prompts=digest(prompts))
    items, convs, graded = [], [], []
    for qid in sorted(questions):
        q, turns = questions[qid], answers[qid]["choices"][0]["turns"]
        ref = refs[qid] if q.category in need_ref else None
        for t in (1, 2):
            convs.append(functools.partial(_conversation, prompts, q, t, ref))
            graded.append(tuple(turns[:t]))  # the answers this turn's prompt shows
            items.append((qid, t, answers[qid]["model_id"], template_name(t, ref is not None)))
    if oracle:
        convs = [c(*a) for c, a in zip(convs, graded, strict=True)]
        verdicts = [
            rater.rate(questions[qid].turns[t - 1], shown[-1])
            for (qid, t, _, _), shown in zip(items, graded, strict=True)
        ]
    else:
        # answers too long for the judge's max_prompt_tokens are cut (an endpoint counts the tokens)
        fitted = rater.fit([lambda *a, c=c: rater.backend.chat_prompt(c(*a)) for c in convs], graded)
        convs = [c(*a) for c, a in zip(convs, fitted, strict=True)]
        verdicts = rater.judge([rater.backend.chat_prompt(c) for c in convs], desc="mt_bench judge")
    rows = []
    for (qid, turn, model, name), conv, text in zip(items, convs, verdicts, strict=True):
        score = parse_rating(text)
        rows.append(
            {
                "question_id": qid,
                "model": model,
                "judge": [job["judge_name"], name],
                "user_prompt": conv[1]["content"],
                "judgment": text,
                "score": -1 if score is None else score,
                "turn": turn,
                "tstamp": 0.0,  # FastChat's field; a fixed value keeps reruns byte-identical
            }
        )
    write_jsonl(output, rows)
    counts = {
        "judgments": len(rows),
        "unparsable": sum(r["score"] == -1 for r in rows),
        "out_of_range": sum(out_of_range(r["score"]) for r in rows),
        **rater.stats(),
    }
    if counts["out_of_range"]:
        log.warning(
            "%s: %d ratings outside %d-%d (e.g. %g), kept as the judge gave them; the metrics leave them out "
            "unless evaluation.mt_bench.ratings is fastchat",
            output, counts["out_of_range"], LOW, HIGH, next(r["score"] for r in rows if out_of_range(r["score"])),
        )  # fmt: skip
    write_json(meta, {**counts, "provenance": provenance(job, started=started)})


def metrics(job: dict, questions_path: str, judgments_path: str, output: str) -> None:
    """Overall, per-turn and per-category means with 95% bootstrap intervals over questions."""
    started = time.time()
    cats = {q.question_id: q.category for q in load_mt_questions(questions_path)}
    rows = load_mt_judgments(judgments_path)
    unknown = sorted({r["question_id"] for r in rows} - set(cats))
    if unknown:
        raise RecordError(f"{judgments_path}: judgments of questions not in {questions_path}: {unknown[:5]}")
    turns = [(qid, t) for qid in sorted(cats) for t in (1, 2)]
    judged = {(r["question_id"], r["turn"]) for r in rows}
    check_coverage(judged, turns, judgments_path, questions_path, "question turns")
    seed = job["cell"].get("seed") or 0
    samples = job["bootstrap"]["samples"]
    ratings = job.get("ratings", "in_range")
    rows = [{**r, "counted": counted(r["score"], ratings)} for r in rows]

    def summary(qids: list[int], turns=(1, 2)) -> dict:
        units = [[r["score"] for r in rows if r["question_id"] == q and r["turn"] in turns and r["counted"]]
                 for q in qids]  # fmt: skip
        values = [v for u in units for v in u]
        return {
            "mean": float(np.mean(values)) if values else None,
            "ci": bootstrap_mean_ci(units, seed, samples),
            "n": len(values),
        }

    qids = sorted(cats)
    overall, t1, t2 = summary(qids), summary(qids, (1,)), summary(qids, (2,))
    by_cat = {c: summary([q for q in qids if cats[q] == c]) for c in sorted(set(cats.values()))}
    m = {
        "score": overall["mean"],
        "score_ci": overall["ci"],
        "turn_1": t1["mean"],
        "turn_1_ci": t1["ci"],
        "turn_2": t2["mean"],
        "turn_2_ci": t2["ci"],
        "per_category": {c: s["mean"] for c, s in by_cat.items()},
        "per_category_ci": {c: s["ci"] for c, s in by_cat.items()},
        "n_judgments": len(rows),
        "n_unparsable": sum(r["score"] == -1 for r in rows),  # after one retry; left out of the means
        "n_out_of_range": sum(out_of_range(r["score"]) for r in rows),  # left out unless ratings: fastchat
        "ratings": ratings,
    }
    write_metrics(output, BENCHMARK, job, m, started)


def paired_cells(files: dict, job: dict, difficulty: dict) -> list[tuple]:
    """The paired comparisons' family (harness/reporting/compare.py): its label, the units (questions,
    both turns), each cell's per-question score sums and counts (a turn rated -1 counts nothing, as in
    FastChat's show_result; one outside 1-10 nothing, unless ``ratings: fastchat``) and the resample
    count."""
    ratings = job["benchmarks"][BENCHMARK].get("ratings", "in_range")

    def per_question(path):
        by: dict = {}
        for rec in load_mt_judgments(path):
            s, c = by.get(rec["question_id"], (0.0, 0.0))
            ok = counted(rec["score"], ratings)
            by[rec["question_id"]] = (s + (rec["score"] if ok else 0.0), c + ok)
        return sorted(by), by

    order, out = sum_count_cells(files, per_question, "questions")
    return [("MT-Bench (1-10)", order, out, job["benchmarks"][BENCHMARK]["samples"])]


def table_values(m: dict) -> dict:
    """A metrics file's columns of the tables (harness/reporting/report.py), with their intervals."""
    return {
        "mt_bench": m["score"],
        "mt_bench_ci": m.get("score_ci"),
        "mt_bench_categories": m.get("per_category", {}),
        "mt_bench_categories_ci": m.get("per_category_ci", {}),
        "mt_bench_out_of_range": m.get("n_out_of_range", 0),
        "mt_bench_ratings": m.get("ratings", "fastchat"),
    }


def compare_job(cfg: dict) -> dict:
    """Its settings in the comparisons job config: the resample count, the ratings rule."""
    b = cfg["evaluation"][BENCHMARK]
    return {"samples": b["bootstrap"]["samples"], "ratings": b["ratings"]}


def metrics_job(cfg: dict, policy: str, model: str) -> dict:
    """Its settings in a metrics job config: which ratings enter the means."""
    return {"ratings": cfg["evaluation"][BENCHMARK]["ratings"]}
