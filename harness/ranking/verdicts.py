"""Judge prompt templates and the rules that read a text verdict: FastChat's for a 1-10 rating, a
leading letter for a pairwise choice. Both return None for a reply they cannot read; the judge counts
those, never drops them."""

from __future__ import annotations

import re
from importlib import resources

_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")  # FastChat's single-answer patterns, exactly
_RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")  # its fallback: a single bracket
_CHOICE = re.compile(r"^\W*([AB])\b")


def template_names() -> list[str]:
    """The prompt templates shipped in harness/templates."""
    return sorted(p.name for p in resources.files("harness.templates").iterdir() if p.name.endswith(".txt"))


def load_template(name: str) -> str:
    """A prompt template shipped in harness/templates; the version is part of the file name."""
    try:
        return resources.files("harness.templates").joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(
            f"unknown judge template '{name}'; available: {', '.join(template_names())}"
        ) from None


def parse_rating(text: str) -> float | None:
    """FastChat's rule for a single-answer verdict: the first ``[[n]]`` in the reply, else the first
    ``[n]``; no range check (a judge's ``[[11]]`` is 11, as in FastChat); None where there is neither."""
    found = _RATING.search(text) or _RATING_BACKUP.search(text)
    return None if found is None else float(found.group(1))


def parse_choice(text: str) -> str | None:
    """'A' or 'B' from a pairwise judge reply that starts with the letter, else None."""
    m = _CHOICE.match(text)
    return m.group(1) if m else None
