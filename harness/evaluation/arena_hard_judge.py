"""Arena-Hard-Auto's judging and its files, in its own layout so that its tool reads them unchanged.

- questions (``question.jsonl``): ``uid``, ``category``, ``prompt``;
- answers (``model_answer/<model>.jsonl``): ``uid``, ``ans_id``, ``model``, ``messages`` (the user turn,
  then the assistant turn with the answer under ``content.answer``), ``tstamp``, and ``metadata``: the
  answer's style (harness/evaluation/arena_hard.py, ``style_metadata``);
- judgments (``model_judgment/<judge>/<model>.jsonl``): ``uid``, ``category``, ``judge``, ``model``,
  ``baseline`` and ``games``: game 1 shows the baseline as assistant A, game 2 the model; each game
  has ``score`` (the verdict label, or null), ``judgment`` (the judge's text under ``answer``) and
  ``prompt`` (the system and user messages the judge was sent);
- judge settings: per category its baseline model and system prompt (``settings_by_category``), per
  version the verdict patterns and the user template with ``{QUESTION}``, ``{ANSWER_A}``,
  ``{ANSWER_B}`` (``benchmarks``).

Any judge backend answers: an endpoint or a local model writes its verdict in text (its reply, up to
the judge's ``reply_tokens``), or a local model scores the five verdict labels; the demo's oracle
gives graded verdicts from the world's answer key (``strong_gap``).
"""

from __future__ import annotations

import time

from harness.core.arena import answer_text, load_answers, load_baselines, load_questions
from harness.core.io import RecordError, read_json, write_json, write_jsonl
from harness.core.provenance import provenance
from harness.evaluation.arena_hard import verdict
from harness.ranking.judge import Judge

LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")


class VerdictJudge(Judge):
    """An Arena-Hard verdict per judge prompt (the caller renders the prompts)."""

    LABELS = tuple(f" [[{label}]]" for label in LABELS)
    REPLY_TOKENS = 4096  # the v0.1 judge's max_tokens: an explanation, then the verdict
    patterns: list[str] = []

    def parsable(self, text: str) -> bool:
        return verdict(text, self.patterns) is not None

    def judge(self, prompts: list[str], desc: str = "arena_hard judge") -> list[str]:
        """The judge's text per prompt (a local label-scoring model: its most likely label, as text);
        a prompt the endpoint failed (within ``max_failures``) gets an empty text, no verdict."""
        out = []
        for answer in self._ask(prompts, desc):
            if isinstance(answer, str):
                self.unparsable += verdict(answer, self.patterns) is None
                out.append(answer)
            elif isinstance(answer, list):
                out.append(self.LABELS[max(range(len(answer)), key=answer.__getitem__)].strip())
            else:  # a Failure, counted in ``failed``
                out.append("")
        return out


def _conversation(settings: dict, version: dict, q: dict, answer_a: str, answer_b: str) -> list[dict]:
    user = version["prompt_template"].format(QUESTION=q["prompt"], ANSWER_A=answer_a, ANSWER_B=answer_b)
    return [
        {"role": "system", "content": settings[q["category"]]["system_prompt"]},
        {"role": "user", "content": user},
    ]


def question_baselines(questions: list[dict], baselines: dict, by_category: dict, path: str) -> dict:
    """uid -> the answer of the baseline that the judge settings name for the question's category."""
    out = {}
    for cat in dict.fromkeys(q["category"] for q in questions):
        asked = [q["uid"] for q in questions if q["category"] == cat]
        name = by_category[cat]["baseline"]
        if name not in baselines:
            raise RecordError(
                f"{path}: no answers of {name}, the baseline the judge settings name for category '{cat}' "
                f"({len(asked)} of {len(questions)} questions; the baseline answers are "
                f"{', '.join(sorted(baselines)) or 'none'}'s); add that model's answers to baseline_answers "
                "or leave those questions out"
            )
        lacking = [u for u in asked if u not in baselines[name]]
        if lacking:
            raise RecordError(
                f"{path}: {name} has no answer to {len(lacking)} of the {len(asked)} questions of category "
                f"'{cat}', e.g. {lacking[0]}"
            )
        out.update((u, baselines[name][u]) for u in asked)
    return out


def judge_step(job: dict, f: dict) -> None:
    """The `judge` step (its files by option name, harness/cli.py)."""
    judge(
        job, *(f[k] for k in ("eval_set", "answers", "output", "meta", "baseline", "judge_settings", "cache"))
    )


def judge(job: dict, questions_path: str, answers_path: str, output: str, meta: str, baseline_path: str,
          settings_path: str, cache=None) -> None:  # fmt: skip
    """Two games per question (the baseline first, then the model first); judgments in the tool's layout
    to ``output``, counts to ``meta``."""
    from harness.backends import spec

    started = time.time()
    questions = load_questions(questions_path)
    answers, baselines = load_answers(answers_path), load_baselines(baseline_path)
    settings = read_json(settings_path)
    by_category, version = settings["settings_by_category"], settings["benchmarks"][job["version"]]
    unknown = sorted({q["category"] for q in questions} - set(by_category))
    if unknown:
        raise RecordError(f"{settings_path}: no judge settings for category '{unknown[0]}'")
    # each category is judged against its own baseline (v2.0: creative writing against another model)
    baseline = question_baselines(questions, baselines, by_category, baseline_path)
    missing = [q["uid"] for q in questions if q["uid"] not in answers]
    if missing:
        raise RecordError(
            f"{answers_path}: no answer to {len(missing)} of {len(questions)} questions, e.g. {missing[0]}"
        )
    games = []  # (question, answer A, answer B)
    for q in questions:
        mine = answer_text(answers[q["uid"]], answers_path)
        base = answer_text(baseline[q["uid"]], baseline_path)
        games += [(q, base, mine), (q, mine, base)]
    convs = [_conversation(by_category, version, q, a, b) for q, a, b in games]
    if spec(job["judge"]["backend"]).ground_truth:  # the demo world: graded by its answer key
        from harness.demo.oracle import OracleJudge

        rater = OracleJudge.from_config(job["judge"])
        texts = [rater.graded(q["prompt"], a, b, job["oracle_strong_gap"]) for q, a, b in games]
    else:
        from harness.core.cache import digest

        # the judge's prompts (its system prompts and template) are part of every cached verdict's key
        rater = VerdictJudge.from_config(job["judge"], cache, judge_settings=digest([version, by_category]))
        rater.patterns = version["regex_patterns"]
        fitted = rater.fit(
            [
                lambda a, b, q=q: rater.backend.chat_prompt(_conversation(by_category, version, q, a, b))
                for q, _, _ in games
            ],
            [(a, b) for _, a, b in games],
        )
        convs = [
            _conversation(by_category, version, q, a, b)
            for (q, _, _), (a, b) in zip(games, fitted, strict=True)
        ]
        texts = rater.judge([rater.backend.chat_prompt(c) for c in convs])
    rows = []
    for i, q in enumerate(questions):
        pair = [
            {
                "score": verdict(texts[j], version["regex_patterns"]),
                "judgment": {"answer": texts[j]},
                "prompt": convs[j],
            }
            for j in (2 * i, 2 * i + 1)
        ]
        rows.append({
            "uid": q["uid"], "category": q["category"], "judge": job["judge_name"],
            "model": answers[q["uid"]]["model"], "baseline": baseline[q["uid"]]["model"], "games": pair,
        })  # fmt: skip
    write_jsonl(output, rows)
    without = sum(any(g["score"] is None for g in r["games"]) for r in rows)
    write_json(meta, {"questions": len(rows), "left_out": without, **rater.stats(),
                      "provenance": provenance(job, started=started)})  # fmt: skip
