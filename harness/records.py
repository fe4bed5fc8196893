"""Typed records that pass between steps, with strict loaders.

Formats follow the ecosystem: prompts are ``{id, prompt}``; preference pairs use TRL's
conversational ``prompt/chosen/rejected``; eval outputs use AlpacaEval's
``instruction/output/generator``; MT-Bench questions and answers follow FastChat's layout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from harness.io import RecordError, read_json, read_jsonl, require


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


def load_completions(path) -> list[PromptCompletions]:
    out = []
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        comps = require(rec, "completions", list, where)
        items = []
        for i, c in enumerate(comps):
            cw = f"{where}: completions[{i}]"
            if not isinstance(c, dict):
                raise RecordError(f"{cw}: expected an object")
            items.append(
                Completion(
                    require(c, "text", str, cw),
                    require(c, "n_tokens", int, cw),
                    require(c, "finish_reason", str, cw),
                )
            )
        out.append(
            PromptCompletions(
                str(require(rec, "id", (str, int), where)), require(rec, "prompt", str, where), items
            )
        )
    return out


def load_alpaca_instructions(path) -> list[dict]:
    """AlpacaEval reference outputs: a JSON list of ``{instruction, output, generator, [dataset]}``."""
    data = read_json(path)
    if not isinstance(data, list) or not data:
        raise RecordError(f"{path}: expected a non-empty JSON list of records")
    for i, rec in enumerate(data):
        where = f"{path}: record {i}"
        if not isinstance(rec, dict):
            raise RecordError(f"{where}: expected an object")
        require(rec, "instruction", str, where)
        require(rec, "output", str, where)
        require(rec, "generator", str, where)
    instructions = [r["instruction"] for r in data]
    if len(set(instructions)) != len(instructions):
        raise RecordError(f"{path}: field 'instruction' has duplicates")
    return data


def load_mt_questions(path) -> list[MTQuestion]:
    """FastChat MT-Bench questions: ``{question_id, category, turns: [t1, t2]}`` per line."""
    out = []
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        turns = require(rec, "turns", list, where)
        if not turns or not all(isinstance(t, str) and t.strip() for t in turns):
            raise RecordError(f"{where}: field 'turns' must be a list of non-empty strings")
        out.append(
            MTQuestion(
                require(rec, "question_id", int, where), require(rec, "category", str, where), tuple(turns)
            )
        )
    return out


def load_preferences(path) -> list[dict]:
    """Labelled preferences ``{id, prompt, chosen, rejected}`` (JSONL): gold data for ranker accuracy."""
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
        out.append(row)
    if not out:
        raise RecordError(f"{path}: no labelled preferences")
    return out


def load_demonstrations(path) -> list[dict]:
    """Supervised demonstrations ``{id, prompt, completion}`` (JSONL), for fine-tuning a base policy."""
    rows = []
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        row = {"id": str(require(rec, "id", (str, int), where))}
        for name in ("prompt", "completion"):
            row[name] = require(rec, name, str, where)
            if not row[name].strip():
                raise RecordError(f"{where}: field '{name}' is empty")
        rows.append(row)
    if not rows:
        raise RecordError(f"{path}: no demonstrations")
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
