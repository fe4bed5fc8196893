"""Arena-Hard-Auto's files (lmarena/arena-hard-auto), as its tool reads and writes them: questions
(``uid``, ``category``, ``prompt``) and answers in its model_answer layout (``uid``, ``ans_id``,
``model``, ``messages``: the user turn, then the assistant turn with the answer under
``content.answer``; ``tstamp``; ``metadata``: the answer's style). harness/evaluation/arena_hard_judge.py
describes the judgments."""

from __future__ import annotations

from harness.core.io import RecordError, read_jsonl, require


def load_questions(path: str) -> list[dict]:
    out, seen = [], set()
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        uid = require(rec, "uid", str, where)
        if uid in seen:
            raise RecordError(f"{where}: field 'uid' repeats {uid!r}")
        seen.add(uid)
        out.append(
            {
                "uid": uid,
                "category": require(rec, "category", str, where),
                "prompt": require(rec, "prompt", str, where),
            }
        )
    return out


def answer_text(rec: dict, where: str) -> str:
    messages = require(rec, "messages", list, where)
    content = messages[-1].get("content") if messages and isinstance(messages[-1], dict) else None
    if not isinstance(content, dict) or not isinstance(content.get("answer"), str):
        raise RecordError(f"{where}: field 'messages': the last message has no content.answer text")
    return content["answer"]


def load_answers(path: str) -> dict[str, dict]:
    """uid -> answer record; each names its model and has an answer text."""
    out = {}
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        uid = require(rec, "uid", str, where)
        require(rec, "model", str, where)
        answer_text(rec, where)
        if uid in out:
            raise RecordError(f"{where}: field 'uid' repeats {uid!r}")
        out[uid] = rec
    return out


def answer_record(uid: str, model: str, prompt: str, answer: str, metadata: dict) -> dict:
    """An answer in Arena-Hard-Auto's model_answer layout."""
    return {
        "uid": uid,
        "ans_id": f"{model}/{uid}",
        "model": model,
        "messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": {"answer": answer}},
        ],
        "tstamp": 0.0,  # a fixed value keeps reruns byte-identical
        "metadata": metadata,
    }


# ---- the steps' Arena-Hard parts: metrics, table columns, paired comparisons ----


def check_judge_settings(settings, source) -> dict:
    """The judge settings: per category its baseline and system prompt (``settings_by_category``), per
    version its verdict patterns and user template (``benchmarks``)."""
    where = source.get("path") or source.get("url") or "judge_settings"
    if not isinstance(settings, dict) or not isinstance(settings.get("settings_by_category"), dict):
        raise RecordError(f"{where}: expected an object with 'settings_by_category' and 'benchmarks'")
    for cat, c in settings["settings_by_category"].items():
        for key in ("baseline", "system_prompt"):
            require(c, key, str, f"{where}: settings_by_category/{cat}")
    for version, v in require(settings, "benchmarks", dict, where).items():
        require(v, "regex_patterns", list, f"{where}: benchmarks/{version}")
        template = require(v, "prompt_template", str, f"{where}: benchmarks/{version}")
        if not all(f"{{{k}}}" in template for k in ("QUESTION", "ANSWER_A", "ANSWER_B")):
            raise RecordError(
                f"{where}: benchmarks/{version}/prompt_template: needs {{QUESTION}}, {{ANSWER_A}}, {{ANSWER_B}}"
            )
    return settings
