"""Judges of the demo world (harness.demo.world): the oracle, and simulated LLM judges built on it.

The oracle prefers the answer with the higher quality score and calls equal scores a tie (0.5). A
simulated judge fails the way LLM judges are known to fail, with configurable rates:

- ``position_bias``: with this probability the judge picks the answer shown first, whatever the two
  answers are (a judge that favours position A);
- ``error_rate``: otherwise, with this probability it picks the worse answer (a wrong verdict; on a
  tie it picks one at random).

Each verdict's randomness comes from a hash of (seed, instruction, first answer, second answer), so a
verdict is reproducible, and the two orders of one comparison are independent draws. Verdicts are
certain (1 or 0, 0.5 for the oracle's ties), like a text verdict from an API judge.

The judge answers ``prob_a`` and ``stats`` like :class:`harness.ranking.judge.PairwiseJudge`, so IPR, the ranker
study and the AlpacaEval-style evaluation use it unchanged (``backend: oracle`` in a judge config).
For MT-Bench it grades one answer 1-10 (``rate``), in FastChat's ``[[rating]]`` form; the simulated
errors apply to pairwise verdicts only.
"""

from __future__ import annotations

import hashlib

import numpy as np

from harness.demo import world


def _uniforms(seed: int, triple: tuple[str, str, str]) -> tuple[float, float, float]:
    digest = hashlib.sha256(repr((seed, *triple)).encode()).digest()
    return tuple(int.from_bytes(digest[8 * k : 8 * k + 8], "big") / 2**64 for k in range(3))


class OracleJudge:
    """Pairwise verdicts from the world's quality scores, with optional simulated judge errors."""

    def __init__(self, error_rate: float = 0.0, position_bias: float = 0.0, seed: int = 0):
        for name, v in (("error_rate", error_rate), ("position_bias", position_bias)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"judge {name} must be in [0, 1], got {v}")
        self.error_rate, self.position_bias, self.seed = error_rate, position_bias, seed
        self.calls = 0
        self.position_picks = 0  # verdicts given by position alone
        self.errors = 0  # verdicts that picked the worse answer (or a side of a tie) by error

    @classmethod
    def from_config(cls, jcfg: dict) -> OracleJudge:
        return cls(jcfg.get("error_rate", 0.0), jcfg.get("position_bias", 0.0), jcfg.get("seed", 0))

    def verdict(self, instruction: str, answer_a: str, answer_b: str) -> float:
        """P(answer A is better), as this judge states it: 1, 0 or (the oracle on a tie) 0.5."""
        sa, sb = world.score_text(instruction, answer_a), world.score_text(instruction, answer_b)
        truth = 1.0 if sa > sb else 0.0 if sa < sb else 0.5
        u_position, u_error, u_side = _uniforms(self.seed, (instruction, answer_a, answer_b))
        if u_position < self.position_bias:
            self.position_picks += 1
            return 1.0
        if u_error < self.error_rate:
            self.errors += 1
            return (1.0 if u_side < 0.5 else 0.0) if truth == 0.5 else 1.0 - truth
        return truth

    def prob_a(self, triples: list[tuple[str, str, str]], desc: str = "judge") -> np.ndarray:
        self.calls += len(triples)
        return np.asarray([self.verdict(*t) for t in triples], dtype=float)

    def graded(self, instruction: str, answer_a: str, answer_b: str, strong_gap: float) -> str:
        """An Arena-Hard verdict, as text: the pairwise verdict (with this judge's simulated errors),
        strong (``>>``) where the two answers' qualities differ by ``strong_gap`` or more."""
        p_a = self.verdict(instruction, answer_a, answer_b)
        self.calls += 1
        if p_a == 0.5:
            return "The answers are of equal quality by the world's answer key: [[A=B]]"
        gap = abs(world.score_text(instruction, answer_a) - world.score_text(instruction, answer_b))
        mark = ">>" if gap >= strong_gap else ">"
        return f"Quality gap {gap:.3f} by the world's answer key: [[{'A' if p_a == 1.0 else 'B'}{mark}{'B' if p_a == 1.0 else 'A'}]]"

    def rate(self, question: str, answer: str) -> str:
        """A single-answer verdict in FastChat's format: the answer's quality in [0, 1] mapped to a
        rating 1-10 (1 + 9 x quality, rounded), as text for the MT-Bench parser."""
        self.calls += 1
        quality = world.score_text(question, answer)
        return (
            f"Graded by the world's answer key: quality {quality:.3f}. Rating: [[{1 + round(9 * quality)}]]"
        )

    def stats(self) -> dict:
        return {
            "judge_calls": self.calls,
            "judge_cache_hits": 0,
            "judge_prompts_truncated": 0,
            "judge_unparsable": 0,
            "judge_retried_unparsable": 0,
            "judge_retries": 0,
            "judge_position_picks": self.position_picks,
            "judge_errors": self.errors,
        }
