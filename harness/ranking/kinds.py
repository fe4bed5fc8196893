"""The ranker kinds, one entry each: what a ranker of that kind runs and names in its config entry.
Every other module asks this registry (``kind(entry)``) instead of testing a kind's name; the schema's
``rankers.<name>.kind`` enum equals its keys (tests/test_ipr.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RankerKind:
    summary: str
    # compares completions in pairs with an LLM judge (the entry's `judge`; it takes an IPR
    # `procedure`), rather than scoring each completion with a reward model (the entry's `model`)
    pairwise: bool

    @property
    def model_key(self) -> str:
        """The entry's key that names what it runs."""
        return "judge" if self.pairwise else "model"


RANKER_KINDS = {
    "reward_model": RankerKind("scores every completion with a sequence-classification reward model", False),
    "ipr": RankerKind("iterative pairwise ranking: an LLM judge compares completions in pairs", True),
}


def kind(entry: dict) -> RankerKind:
    """The registry entry of a ranker's config entry (or a pairs file's meta, which names its kind)."""
    name = entry["kind"]
    if name not in RANKER_KINDS:
        raise ValueError(f"unknown ranker kind '{name}'; valid: {', '.join(RANKER_KINDS)}")
    return RANKER_KINDS[name]
