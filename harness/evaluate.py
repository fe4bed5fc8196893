"""Steps `judge` and `metrics` for AlpacaEval 2 style and MT-Bench style evaluation.

AlpacaEval: the judge compares each model output with the reference output; which one is shown first
is drawn from a seed derived from the instruction and recorded. ``preference`` follows alpaca_eval:
1 = reference (output_1) wins, 2 = model (output_2) wins, continuous in between for a weighted
(log-prob) judge. Win rates come from ``alpaca_eval.metrics``; the length-controlled win rate from its
GLM (official) or, offline, from the same GLM machinery without instruction difficulty (approximate,
labelled as such).

MT-Bench: single-answer grading of each turn, score parsed from ``[[n]]``; an unparsable verdict
gets FastChat's score -1, is counted, and is left out of the means.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from harness.io import RecordError, read_json, read_jsonl, write_json, write_jsonl
from harness.provenance import provenance
from harness.records import load_alpaca_instructions, load_mt_questions
from harness.seeding import subseed

log = logging.getLogger(__name__)


def judge_alpaca_eval(job: dict, reference_path: str, outputs_path: str, output: str, cache=None) -> None:
    from harness.judge import PairwiseJudge

    refs = load_alpaca_instructions(reference_path)
    outs = load_alpaca_instructions(outputs_path)
    by_instr = {r["instruction"]: r for r in outs}
    missing = [r["instruction"] for r in refs if r["instruction"] not in by_instr]
    extra = set(by_instr) - {r["instruction"] for r in refs}
    if missing or extra:
        raise RecordError(
            f"{outputs_path}: {len(missing)} reference instructions have no output and "
            f"{len(extra)} outputs match no reference instruction (first: "
            f"{(missing or sorted(extra))[0]!r})"
        )
    jcfg = job["judge"]
    judge = PairwiseJudge.from_config(job["judge"], cache)
    swaps = [subseed("alpaca_eval_order", r["instruction"], 0) & 1 == 1 for r in refs]
    triples = []
    for r, swap in zip(refs, swaps, strict=True):
        model_out = by_instr[r["instruction"]]["output"]
        triples.append(
            (r["instruction"], model_out, r["output"]) if swap else (r["instruction"], r["output"], model_out)
        )
    p_a = judge.prob_a(triples, desc="alpaca_eval judge")
    rows = []
    for idx, (r, swap, pa) in enumerate(zip(refs, swaps, p_a, strict=True)):
        p_model = float(pa if swap else 1.0 - pa)
        rows.append(
            {
                "index": idx,
                "instruction": r["instruction"],
                "output_1": r["output"],
                "generator_1": r["generator"],
                "output_2": by_instr[r["instruction"]]["output"],
                "generator_2": by_instr[r["instruction"]]["generator"],
                "annotator": f"{job['judge_name']}:{jcfg['template']}",
                "preference": 1.0 + p_model,
                "model_shown_first": swap,
            }
        )
    write_json(output, rows)


def lc_win_rate_approximate(df) -> float:
    """alpaca_eval's length-controlled GLM without instruction difficulty (offline approximation).

    Fits ``preference ~ tanh(std_delta_len) + not_gamed_baseline`` with alpaca_eval's own design matrix
    and cross-validated logistic regression, then predicts each instruction at zero length difference.
    It leaves out the official GLM's per-instruction difficulty term and its regularisation towards
    the published gamed baselines, both of which need alpaca_eval's hub data.
    """
    import pandas as pd
    from alpaca_eval.metrics.glm_winrate import GLM_INFO, fit_LogisticRegressionCV, make_dmatrix_for_model

    info = GLM_INFO["length_controlled_minimal"]
    delta = df["output_1"].str.len() - df["output_2"].str.len()
    std = delta.std()
    feats = pd.DataFrame(
        {
            "preference": df["preference"].astype(float).replace({0.0: 1.5}) - 1,
            "std_delta_len": delta / std if std and std > 0 else delta * 0.0,
            "not_gamed_baseline": True,
        }
    )
    test = feats[["not_gamed_baseline"]].copy()
    test["std_delta_len"] = 0.0
    train, test = make_dmatrix_for_model(feats, test, formula=info["formula"])
    n_splits = min(info["kwargs"]["n_splits"], len(feats))
    model = fit_LogisticRegressionCV(train, "preference", is_ytrue_proba=True, n_splits=n_splits)
    return float(model.predict_proba(test)[:, 1].mean() * 100)


def metrics_alpaca_eval(job: dict, annotations_path: str, output: str) -> None:
    import pandas as pd
    from alpaca_eval.metrics import get_length_controlled_winrate, get_winrate

    started = time.time()
    df = pd.DataFrame(read_json(annotations_path))
    m = {k: float(v) for k, v in get_winrate(df).items()}
    method = job["lc_method"]
    if method in ("official", "auto"):
        try:
            lc = get_length_controlled_winrate(
                df.copy(), save_weights_dir=None, is_warn_extreme_changes=False
            )
            m["length_controlled_winrate"] = float(lc["length_controlled_winrate"])
            m["lc_method"] = "official length_controlled_v1"
        except Exception as e:  # offline: the GLM's hub data is out of reach
            if method == "official":
                raise RuntimeError(f"official LC win rate needs alpaca_eval's hub data: {e}") from e
            log.warning("official LC GLM unavailable (%s); using the approximation", type(e).__name__)
    if "length_controlled_winrate" not in m:
        m["length_controlled_winrate"] = lc_win_rate_approximate(df)
        m["lc_method"] = "approximate (no instruction difficulty)"
    m["avg_length"] = float(df["output_2"].str.len().mean())
    write_json(
        output,
        {
            "benchmark": "alpaca_eval",
            "cell": job["cell"],
            "metrics": m,
            "provenance": provenance(job, seed=job["cell"].get("seed"), started=started),
        },
    )


def judge_mt_bench(job: dict, questions_path: str, answers_path: str, output: str, cache=None) -> None:
    from harness.judge import RatingJudge, parse_rating

    questions = {q.question_id: q for q in load_mt_questions(questions_path)}
    answers = {rec["question_id"]: rec for _, rec in read_jsonl(answers_path)}
    if set(answers) != set(questions):
        raise RecordError(
            f"{answers_path}: answers cover {len(set(answers) & set(questions))} of "
            f"{len(questions)} questions and {len(set(answers) - set(questions))} unknown ones"
        )
    jcfg = job["judge"]
    judge = RatingJudge.from_config(job["judge"], cache)
    items, prompts = [], []
    for qid in sorted(questions):
        turns = answers[qid]["choices"][0]["turns"]
        for t in (1, 2):
            prompts.append(judge.render(list(zip(questions[qid].turns[:t], turns[:t], strict=True))))
            items.append((qid, t, answers[qid]["model_id"]))
    verdicts = judge.judge(prompts, desc="mt_bench judge")
    rows = []
    for (qid, turn, model), prompt, text in zip(items, prompts, verdicts, strict=True):
        score = parse_rating(text)
        rows.append(
            {
                "question_id": qid,
                "model": model,
                "judge": [job["judge_name"], jcfg["template"]],
                "user_prompt": prompt,
                "judgment": text,
                "score": -1 if score is None else score,
                "turn": turn,
            }
        )
    write_jsonl(output, rows)


def metrics_mt_bench(job: dict, questions_path: str, judgments_path: str, output: str) -> None:
    started = time.time()
    cats = {q.question_id: q.category for q in load_mt_questions(questions_path)}
    rows = [rec for _, rec in read_jsonl(judgments_path)]
    valid = [r for r in rows if r["score"] != -1]
    by_turn = {t: [r["score"] for r in valid if r["turn"] == t] for t in (1, 2)}
    by_cat: dict[str, list[float]] = {}
    for r in valid:
        by_cat.setdefault(cats[r["question_id"]], []).append(r["score"])
    m = {
        "score": float(np.mean([r["score"] for r in valid])) if valid else None,
        "turn_1": float(np.mean(by_turn[1])) if by_turn[1] else None,
        "turn_2": float(np.mean(by_turn[2])) if by_turn[2] else None,
        "per_category": {c: float(np.mean(v)) for c, v in sorted(by_cat.items())},
        "n_judgments": len(rows),
        "n_unparsable": len(rows) - len(valid),
    }
    write_json(
        output,
        {
            "benchmark": "mt_bench",
            "cell": job["cell"],
            "metrics": m,
            "provenance": provenance(job, seed=job["cell"].get("seed"), started=started),
        },
    )
