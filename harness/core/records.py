"""Typed records that pass between steps, with strict loaders.

Formats follow the ecosystem: prompts are ``{id, prompt}``; preference pairs use TRL's
conversational ``prompt/chosen/rejected``; eval outputs use AlpacaEval's
``instruction/output/generator``; MT-Bench questions and answers follow FastChat's layout.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from harness.core.io import RecordError, read_json, read_jsonl, require


@dataclass(frozen=True)
class Prompt:
    id: str
    prompt: str


@dataclass
class Completion:
    text: str
    n_tokens: int
    finish_reason: str  # "stop" (EOS) or "length" (hit max_new_tokens)


@dataclass
class PromptCompletions:
    id: str
    prompt: str
    completions: list[Completion] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MTQuestion:
    question_id: int
    category: str
    turns: tuple[str, ...]


def load_prompts(path) -> list[Prompt]:
    """Load ``{id, prompt}`` JSONL; ids must be unique and prompts non-empty."""
    seen: dict[str, int] = {}
    out = []
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        pid = require(rec, "id", (str, int), where)
        text = require(rec, "prompt", str, where)
        if not text.strip():
            raise RecordError(f"{where}: field 'prompt' is empty")
        pid = str(pid)
        if pid in seen:
            raise RecordError(f"{where}: field 'id' repeats '{pid}' from line {seen[pid]}")
        seen[pid] = lineno
        out.append(Prompt(pid, text))
    if not out:
        raise RecordError(f"{path}: no prompts")
    return out


def _unique(seen: dict, value, where: str, field: str, mark) -> None:
    """Fail naming ``where`` if ``value`` was seen (at ``seen[value]``: a line number or a label)."""
    if value in seen:
        first = seen[value] if isinstance(seen[value], str) else f"line {seen[value]}"
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise RecordError(f"{where}: field '{field}' repeats {shown} from {first}")
    seen[value] = mark


FINISH_REASONS = ("stop", "length")


def load_completions(path) -> list[PromptCompletions]:
    """``sample``'s output: ``{id, prompt, completions: [{text, n_tokens, finish_reason}]}`` per prompt;
    ids unique, prompts non-empty (an empty completion is legal: the ranker counts and skips it)."""
    out, seen = [], {}
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        pid = str(require(rec, "id", (str, int), where))
        _unique(seen, pid, where, "id", lineno)
        prompt = require(rec, "prompt", str, where)
        if not prompt.strip():
            raise RecordError(f"{where}: field 'prompt' is empty")
        comps = require(rec, "completions", list, where)
        items = []
        for cw, c in _objects(comps, lambda i, w=where: f"{w}: completions[{i}]"):
            n = require(c, "n_tokens", int, cw)
            reason = require(c, "finish_reason", str, cw)
            if n < 0 or reason not in FINISH_REASONS:
                raise RecordError(
                    f"{cw}: n_tokens must be >= 0 and finish_reason one of {', '.join(FINISH_REASONS)}"
                )
            items.append(Completion(require(c, "text", str, cw), n, reason))
        out.append(PromptCompletions(pid, prompt, items))
    if not out:
        raise RecordError(f"{path}: no prompts with completions")
    return out


def _json_records(path, what: str) -> list[tuple[str, dict]]:
    """A JSON list of objects, each with the place it names in errors (``<path>: <what> <i>``)."""
    data = read_json(path)
    if not isinstance(data, list) or not data:
        raise RecordError(f"{path}: expected a non-empty JSON list of {what}s")
    return list(_objects(data, lambda i: f"{path}: {what} {i}"))


def _objects(items: list, place) -> Iterator[tuple[str, dict]]:
    """(place, item) of each item of a list, each an object (``place(i)`` names the i-th in errors)."""
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise RecordError(f"{place(i)}: expected an object")
        yield place(i), item


def load_alpaca_instructions(path) -> list[dict]:
    """AlpacaEval reference outputs: a JSON list of ``{instruction, output, generator, [dataset]}``."""
    records = _json_records(path, "record")
    data = [rec for _, rec in records]
    for where, rec in records:
        require(rec, "instruction", str, where)
        require(rec, "output", str, where)
        require(rec, "generator", str, where)
        if not rec["instruction"].strip():
            raise RecordError(f"{where}: field 'instruction' is empty")
    seen: dict = {}
    for where, rec in records:
        _unique(seen, rec["instruction"], where, "instruction", where.rsplit(": ", 1)[-1])
    return data


MT_TURNS = 2  # MT-Bench questions and answers have two turns


def _turns(rec: dict, where: str, field: str = "turns", empty_ok: bool = False) -> tuple[str, ...]:
    turns = require(rec, field, list, where)
    if len(turns) != MT_TURNS or not all(isinstance(t, str) and (empty_ok or t.strip()) for t in turns):
        kind = "strings" if empty_ok else "non-empty strings"
        raise RecordError(
            f"{where}: field '{field}' must be a list of {MT_TURNS} {kind} (got {len(turns)} items)"
        )
    return tuple(turns)


def load_mt_questions(path) -> list[MTQuestion]:
    """FastChat MT-Bench questions: ``{question_id, category, turns: [t1, t2]}`` per line; ids unique."""
    out, seen = [], {}
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        qid = require(rec, "question_id", int, where)
        _unique(seen, qid, where, "question_id", lineno)
        category = require(rec, "category", str, where)
        if not category.strip():
            raise RecordError(f"{where}: field 'category' is empty")
        out.append(MTQuestion(qid, category, _turns(rec, where)))
    if not out:
        raise RecordError(f"{path}: no MT-Bench questions")
    return out


def load_mt_answers(path) -> dict[int, dict]:
    """FastChat model answers ``{question_id, model_id, choices: [{turns: [a1, a2]}]}`` by question id.
    An empty answer is legal (``generate`` counts it); a missing turn is not."""
    out, seen = {}, {}
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        qid = require(rec, "question_id", int, where)
        _unique(seen, qid, where, "question_id", lineno)
        require(rec, "model_id", str, where)
        choices = require(rec, "choices", list, where)
        if not choices or not isinstance(choices[0], dict):
            raise RecordError(f"{where}: field 'choices' must hold [{{'turns': [str, str]}}]")
        _turns(choices[0], f"{where}: choices[0]", empty_ok=True)
        out[qid] = rec
    return out


def load_mt_judgments(path) -> list[dict]:
    """FastChat single-answer judgments ``{question_id, model, turn, score, ...}``: turn 1 or 2, score a
    number (``-1``: the judge's reply named no rating, counted by ``metrics``), one per question and turn."""
    out, seen = [], {}
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        qid = require(rec, "question_id", int, where)
        turn = require(rec, "turn", int, where)
        if turn not in (1, 2):
            raise RecordError(f"{where}: field 'turn' must be 1 or 2, got {turn}")
        score = require(rec, "score", (int, float), where)
        if not math.isfinite(score):  # NaN, Infinity
            raise RecordError(
                f"{where}: field 'score' is {score!r}, not a finite rating (an unparsable verdict is -1)"
            )
        _unique(seen, (qid, turn, str(rec.get("model"))), where, "question_id/turn", lineno)
        out.append(rec)
    if not out:
        raise RecordError(f"{path}: no judgments")
    return out


def load_annotations(path) -> list[dict]:
    """AlpacaEval annotations (a JSON list): ``instruction``, ``output_1``, ``output_2`` and a
    ``preference`` in alpaca_eval's encoding: a number in [1, 2] (1.5 a draw), 0 (a draw), or -1, null
    or NaN (no verdict: counted in ``n_not_preference`` and left out of the means)."""
    records = _json_records(path, "annotation")
    for where, rec in records:
        for name in ("instruction", "output_1", "output_2"):
            require(rec, name, str, where)
        if "preference" not in rec:
            raise RecordError(f"{where}: missing field 'preference'")
        pref = rec["preference"]
        number = isinstance(pref, int | float) and not isinstance(pref, bool)
        if pref is not None and not (number and (pref != pref or pref in (-1, 0) or 1 <= pref <= 2)):
            raise RecordError(
                f"{where}: field 'preference' must be a number in [1, 2], 0 (a draw), or -1 or null "
                f"(no verdict), got {pref!r}"
            )
    if any("oracle_score_2" in rec for _, rec in records):  # the demo world: every row has both, finite
        for where, rec in records:
            for name in ("oracle_score_1", "oracle_score_2"):
                v = require(rec, name, (int, float), where)
                if not (0 <= v <= 1):  # NaN and the infinities fail too
                    raise RecordError(f"{where}: field '{name}' must be a number in [0, 1], got {v!r}")
    return [rec for _, rec in records]


def load_preferences(path, identical: list | None = None) -> list[dict]:
    """Labelled preferences ``{id, prompt, chosen, rejected}`` (JSONL): gold data for ranker accuracy.
    A pair whose two answers are the same text is refused, or, given a list ``identical`` (hub data,
    which has a few), left out with its id appended there."""
    out, seen = [], {}
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        pid = str(require(rec, "id", (str, int), where))
        row = {"id": pid}
        for name in ("prompt", "chosen", "rejected"):
            row[name] = require(rec, name, str, where)
            if not row[name].strip():
                raise RecordError(f"{where}: field '{name}' is empty")
        if pid in seen:
            raise RecordError(f"{where}: field 'id' repeats '{pid}' from line {seen[pid]}")
        seen[pid] = lineno
        if row["chosen"] == row["rejected"]:
            if identical is None:
                raise RecordError(f"{where}: fields 'chosen' and 'rejected' are the same text")
            identical.append(pid)
            continue
        out.append(row)
    if not out:
        raise RecordError(f"{path}: no labelled preferences")
    return out


def load_demonstrations(path) -> list[dict]:
    """Supervised demonstrations ``{id, prompt, completion}`` (JSONL), for fine-tuning a base policy."""
    rows, seen = [], {}
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        row = {"id": str(require(rec, "id", (str, int), where))}
        _unique(seen, row["id"], where, "id", lineno)
        for name in ("prompt", "completion"):
            row[name] = require(rec, name, str, where)
            if not row[name].strip():
                raise RecordError(f"{where}: field '{name}' is empty")
        rows.append(row)
    if not rows:
        raise RecordError(f"{path}: no demonstrations")
    return rows


def load_pairs(path) -> list[dict]:
    """TRL conversational pairs (a ranker's output, the train step's input); every record needs
    non-empty prompt, chosen and rejected, and the two answers must differ."""
    rows = []
    for lineno, rec in read_jsonl(path):
        for name in ("prompt", "chosen", "rejected"):
            msgs = rec.get(name)
            if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
                raise RecordError(f"{path}:{lineno}: field '{name}' must be a non-empty list of messages")
            if name != "prompt" and not str(msgs[-1].get("content", "")).strip():
                raise RecordError(f"{path}:{lineno}: field '{name}' has an empty answer")
            if name == "prompt" and not any(str(m.get("content", "")).strip() for m in msgs):
                raise RecordError(f"{path}:{lineno}: field 'prompt' has no text (an empty or blank prompt)")
        if (
            rec["chosen"] == rec["rejected"]
        ):  # no gradient: a ranker never makes one (harness/ranking/rank.py)
            raise RecordError(f"{path}:{lineno}: fields 'chosen' and 'rejected' are the same answer")
        rows.append({k: rec[k] for k in ("prompt", "chosen", "rejected")})
    if not rows:
        raise RecordError(f"{path}: no preference pairs to train on (see the ranker's meta file)")
    return rows


def pair_record(prompt_id: str, prompt: str, chosen: str, rejected: str, **extra) -> dict:
    """A TRL conversational preference pair, plus bookkeeping fields TRL ignores."""
    return {
        "prompt_id": prompt_id,
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        **extra,
    }


# FastChat's single-answer grading templates: (first turn, second turn) x (plain, with a reference).
MT_TEMPLATES = ("single-v1", "single-v1-multi-turn", "single-math-v1", "single-math-v1-multi-turn")


def load_judge_prompts(path) -> dict[str, dict]:
    """FastChat judge prompts ``{name, type, system_prompt, prompt_template, output_format}`` by name;
    the four single-answer templates of ``MT_TEMPLATES`` must be there."""
    out = {}
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        name = require(rec, "name", str, where)
        out[name] = {
            "name": name,
            "type": require(rec, "type", str, where),
            "system_prompt": require(rec, "system_prompt", str, where),
            "prompt_template": require(rec, "prompt_template", str, where),
            "output_format": require(rec, "output_format", str, where),
        }
    missing = [n for n in MT_TEMPLATES if n not in out]
    if missing:
        raise RecordError(
            f"{path}: no judge prompt named {', '.join(missing)} (FastChat's single-answer templates)"
        )
    fields = dict.fromkeys(
        (
            "question",
            "answer",
            "question_1",
            "answer_1",
            "question_2",
            "answer_2",
            "ref_answer_1",
            "ref_answer_2",
        ),
        "",
    )
    for name in MT_TEMPLATES:
        try:
            out[name]["prompt_template"].format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise RecordError(
                f"{path}: judge prompt '{name}': prompt_template has a field MT-Bench judging does not fill ({e})"
            ) from None
    return out


def load_reference_answers(path) -> dict[int, tuple[str, ...]]:
    """FastChat reference answers ``{question_id, choices: [{turns: [...]}]}``: the turns by question id."""
    out = {}
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        qid = require(rec, "question_id", int, where)
        choices = require(rec, "choices", list, where)
        turns = choices[0].get("turns") if choices and isinstance(choices[0], dict) else None
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            raise RecordError(f"{where}: field 'choices' must hold [{{'turns': [str, ...]}}]")
        if qid in out:
            raise RecordError(f"{where}: question_id {qid} repeats")
        out[qid] = tuple(turns)
    return out


def check_coverage(judged, expected: list, judged_path: str, eval_path: str, what: str) -> None:
    """A benchmark's judgments must cover its whole evaluation set: a partial file would give a number
    for another set than the one the table names."""
    have = set(judged)
    missing = [e for e in expected if e not in have]
    if missing:
        raise RecordError(
            f"{judged_path}: covers {len(expected) - len(missing)} of the {len(expected)} {what} of {eval_path} "
            f"(missing e.g. {missing[0]!r}); rerun its judge step (delete the file) to judge the rest"
        )
