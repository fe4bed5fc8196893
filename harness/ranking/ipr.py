"""Iterative pairwise ranking (IPR): best and worst of K completions from pairwise judge verdicts.

Procedure (one generator per prompt, so that every prompt's comparisons of a round go to the judge in
one batch):
1. Best: winner-stays pass. The incumbent starts as completion 0 and meets 1, 2, ..., K-1 in turn;
   the winner of each comparison stays. K-1 comparisons.
2. Worst: loser-stays pass over the K-1 others, in index order. K-2 comparisons.
Each comparison is judged in both orders (i shown as A, then as B): 2 judge calls.

Two full-ranking procedures serve other pair strategies and the ranker study:
- ``winner_stays_full``: repeated winner-stays passes, taking each winner out: K(K-1)/2 comparisons.
- ``insertion``: binary insertion of each item into the ranked list: O(K log K) comparisons.
- ``round_robin``: every pair once, K(K-1)/2 comparisons, ordered by wins (Copeland), then by the
  summed probability of winning; the full tournament lets the ranker study count intransitive triples.

Tie rule (written once, here): each order gives P(i better than j). An order votes for i above 0.5,
for j below it, and for neither at exactly 0.5. The orders agree -> that verdict. Otherwise the
comparison is a tie (inconsistent, i.e. a position flip, or undecided). A tie is broken by the mean of
the two probabilities; at exactly 0.5 the incumbent keeps its place. Ties and their breaks are
recorded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Request:
    """Compare incumbent ``i`` with challenger ``j``; ``stage`` is 'best' or 'worst'."""

    i: int
    j: int
    stage: str


@dataclass(frozen=True)
class Verdict:
    i: int
    j: int
    stage: str
    p_i_as_a: float  # P(i better) with i shown first
    p_i_as_b: float  # P(i better) with i shown second
    winner: int
    tie: bool
    tie_break: str | None  # None, "mean_prob" or "incumbent"

    @property
    def loser(self) -> int:
        return self.j if self.winner == self.i else self.i

    def to_dict(self) -> dict:
        return asdict(self)


def decide(req: Request, p_i_as_a: float, p_i_as_b: float) -> Verdict:
    """Apply the tie rule above to one comparison judged in both orders."""
    p_i_as_a, p_i_as_b = float(p_i_as_a), float(p_i_as_b)
    votes = {(p > 0.5) - (p < 0.5) for p in (p_i_as_a, p_i_as_b)}  # +1: i, -1: j, 0: neither
    if votes == {1} or votes == {-1}:
        winner = req.i if votes == {1} else req.j
        return Verdict(req.i, req.j, req.stage, p_i_as_a, p_i_as_b, winner, False, None)
    mean = (p_i_as_a + p_i_as_b) / 2
    if mean != 0.5:
        i_wins = mean > 0.5
        how = "mean_prob"
    else:  # the incumbent keeps its place: loser in the worst pass, winner everywhere else
        i_wins = req.stage != "worst"
        how = "incumbent"
    return Verdict(req.i, req.j, req.stage, p_i_as_a, p_i_as_b, req.i if i_wins else req.j, True, how)


def best_and_worst(k: int) -> Generator[Request, Verdict, tuple[int, int]]:
    """Yield the comparisons that find the best and the worst of ``k`` items; return (best, worst)."""
    if k < 2:
        raise ValueError(f"IPR needs at least 2 completions, got {k}")
    best = 0
    for j in range(1, k):
        best = (yield Request(best, j, "best")).winner
    rest = [x for x in range(k) if x != best]
    worst = rest[0]
    for j in rest[1:]:
        worst = (yield Request(worst, j, "worst")).loser
    return best, worst


def winner_stays_full(k: int) -> Generator[Request, Verdict, list[int]]:
    """Full ranking, best first, by repeated winner-stays passes over the items not yet placed."""
    remaining, order = list(range(k)), []
    while len(remaining) > 1:
        best = remaining[0]
        for j in remaining[1:]:
            best = (yield Request(best, j, "rank")).winner
        order.append(best)
        remaining.remove(best)
    return order + remaining


def insertion(k: int) -> Generator[Request, Verdict, list[int]]:
    """Full ranking, best first, by binary insertion; the placed item is the incumbent."""
    ranked = [0]
    for x in range(1, k):
        lo, hi = 0, len(ranked)
        while lo < hi:
            mid = (lo + hi) // 2
            if (yield Request(ranked[mid], x, "insert")).winner == x:
                hi = mid
            else:
                lo = mid + 1
        ranked.insert(lo, x)
    return ranked


def best_worst_order(k: int) -> Generator[Request, Verdict, list[int]]:
    """``best_and_worst`` as an order: [best, the others in index order, worst]."""
    best, worst = yield from best_and_worst(k)
    return [best] + [i for i in range(k) if i not in (best, worst)] + [worst]


def round_robin(k: int) -> Generator[Request, Verdict, list[int]]:
    """Full ranking, best first, from all K(K-1)/2 comparisons."""
    wins, strength = [0] * k, [0.0] * k
    for i in range(k):
        for j in range(i + 1, k):
            v = yield Request(i, j, "rank")
            wins[v.winner] += 1
            p_i = (v.p_i_as_a + v.p_i_as_b) / 2
            strength[i] += p_i
            strength[j] += 1 - p_i
    return sorted(range(k), key=lambda x: (-wins[x], -strength[x], x))


def intransitive_triples(outcomes) -> int:
    """Cycles a > b > c > a among triples whose three pairs were all compared.

    Args:
        outcomes: (winner, loser) pairs, one per comparison.
    """
    beats = set(outcomes)
    items = sorted({x for pair in beats for x in pair})
    return sum(
        {(a, b), (b, c), (c, a)} <= beats or {(b, a), (c, b), (a, c)} <= beats
        for a, b, c in itertools.combinations(items, 3)
    )


PROCEDURES = {
    "best_worst": best_worst_order,
    "winner_stays_full": winner_stays_full,
    "insertion": insertion,
    "round_robin": round_robin,
}


def run_batched(
    sizes: list[int],
    judge: Callable[[list[tuple[int, Request]]], list[tuple[float, float]]],
    procedure: Callable = best_and_worst,
):
    """Run IPR for many prompts at once: each round sends one request per unfinished prompt to ``judge``.

    Args:
        sizes: number of candidates per prompt (prompts with fewer than 2 are skipped: result None).
        judge: maps [(prompt_index, request)] to [(P(i better | i first), P(i better | i second))].
        procedure: a generator function of K (``best_and_worst`` or one of ``PROCEDURES``).
    Returns:
        results: per prompt the procedure's result (e.g. (best, worst) or an order) or None; verdicts: per prompt the list of Verdicts;
        rounds: how many batched judge calls were made.
    """
    gens, pending, results = {}, {}, [None] * len(sizes)
    verdicts: list[list[Verdict]] = [[] for _ in sizes]
    for p, k in enumerate(sizes):
        if k >= 2:
            gens[p] = procedure(k)
            pending[p] = next(gens[p])
    rounds = 0
    while pending:
        batch = sorted(pending.items())
        probs = judge(batch)
        rounds += 1
        for (p, req), (pa, pb) in zip(batch, probs, strict=True):
            v = decide(req, pa, pb)
            verdicts[p].append(v)
            try:
                pending[p] = gens[p].send(v)
            except StopIteration as done:
                results[p] = done.value
                del pending[p]
    return results, verdicts, rounds
