"""Arena-Hard-Auto's files (lmarena/arena-hard-auto), as its tool reads and writes them: questions
(``uid``, ``category``, ``prompt``) and answers in its model_answer layout (``uid``, ``ans_id``,
``model``, ``messages``: the user turn, then the assistant turn with the answer under
``content.answer``; ``tstamp``; ``metadata``: the answer's style). harness/evaluation/arena_hard_judge.py
describes the judgments."""

from __future__ import annotations

from pathlib import Path

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


def load_baselines(path: str) -> dict[str, dict[str, dict]]:
    """model -> uid -> answer record: the baseline answers, of one model or of several (Arena-Hard v2.0
    judges each category against its own baseline); a (model, uid) given twice is refused."""
    out: dict[str, dict[str, dict]] = {}
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        uid = require(rec, "uid", str, where)
        model = require(rec, "model", str, where)
        answer_text(rec, where)
        if uid in out.setdefault(model, {}):
            raise RecordError(f"{where}: field 'uid' repeats {uid!r} for model {model!r}")
        out[model][uid] = rec
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


# Arena-Hard-Auto's own files that hold its judge settings, in a checkout or at a raw URL of a commit:
# the system prompt and baseline per question category, and per version its config (verdict patterns,
# user template, judge model, temperature, reply tokens)
UPSTREAM_SETTINGS = "utils/judge_utils.py"
UPSTREAM_CONFIGS = ("config/arena-hard-v0.1.yaml", "config/arena-hard-v2.0.yaml")


def is_checkout(source: dict) -> bool:
    """Whether a judge_settings source names Arena-Hard-Auto itself (a directory, or a URL ending in
    ``/``) rather than a JSON file in our layout."""
    return source.get("url", "").endswith("/") or ("path" in source and Path(source["path"]).is_dir())


def source_sha256(path: str) -> str:
    """The SHA-256 a prepare_data job records of a local judge_settings source: the file's, or for a
    checkout that of the files its settings are read from (not the whole tree of answers)."""
    import hashlib

    from harness.core.io import file_sha256

    root = Path(path)
    if not root.is_dir():
        return file_sha256(root)
    names = [n for n in (UPSTREAM_SETTINGS, *UPSTREAM_CONFIGS) if (root / n).is_file()]
    return hashlib.sha256("".join(f"{n} {file_sha256(root / n)}\n" for n in names).encode()).hexdigest()


def upstream_settings(judge_utils: str, configs: dict[str, str], where: str) -> dict:
    """Our judge settings from Arena-Hard-Auto's files: ``JUDGE_SETTINGS`` of its judge_utils.py, read
    without running it (its string constants and the dict literal that names them), and each config
    YAML's settings under the version its ``bench_name`` gives (``arena-hard-v0.1`` -> ``v0.1``)."""
    import ast

    import yaml

    try:
        tree = ast.parse(judge_utils)
    except SyntaxError as e:
        raise RecordError(f"{where}: not Python ({e.msg}, line {e.lineno})") from None
    constants, found = {}, None
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id == "JUDGE_SETTINGS":
                found = node.value
            elif isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                constants[node.targets[0].id] = node.value.value

    class Named(ast.NodeTransformer):
        def visit_Name(self, node):  # noqa: N802 - the ast API
            if node.id not in constants:
                raise RecordError(f"{where}: JUDGE_SETTINGS names {node.id}, which is not a string constant")
            return ast.copy_location(ast.Constant(constants[node.id]), node)

    if found is None:
        raise RecordError(f"{where}: no JUDGE_SETTINGS = {{...}}")
    try:
        by_category = ast.literal_eval(Named().visit(found))
    except (ValueError, TypeError, SyntaxError):
        raise RecordError(f"{where}: JUDGE_SETTINGS is not a literal of strings") from None
    benchmarks = {}
    for name, text in configs.items():
        try:
            cfg = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise RecordError(f"{name}: not YAML ({str(e).splitlines()[0]})") from None
        bench = cfg.get("bench_name") if isinstance(cfg, dict) else None
        if not isinstance(bench, str) or not bench.startswith("arena-hard-"):
            raise RecordError(f"{name}: no bench_name arena-hard-<version>")
        keep = ("judge_model", "temperature", "max_tokens", "regex_patterns", "prompt_template")
        benchmarks[bench.removeprefix("arena-hard-")] = {k: cfg[k] for k in keep if k in cfg}
    return {"source": where, "settings_by_category": by_category, "benchmarks": benchmarks}
