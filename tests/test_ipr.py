"""IPR bookkeeping with a scripted comparator: results, call counts and the tie rule."""

import itertools
import math
import random

import pytest

from harness.ranking import ipr


def scripted(quality, flips=()):
    """A judge that prefers higher ``quality``; pairs in ``flips`` get a position-biased verdict
    (always 'first shown wins'), i.e. inconsistent across the two orders."""
    calls = []

    def judge(batch):
        out = []
        for p, req in batch:
            q = quality[p]
            calls.append((p, req))
            if frozenset((req.i, req.j)) in flips:
                out.append((0.9, 0.1))  # i wins when first, loses when second: a position flip
            else:
                better = 1.0 if q[req.i] > q[req.j] else 0.0
                out.append((better, better))
        return out

    return judge, calls


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_finds_true_best_and_worst_with_exact_call_count(k):
    rng = random.Random(k)
    quality = [rng.sample(range(100), k) for _ in range(7)]
    judge, calls = scripted(quality)
    results, verdicts, rounds = ipr.run_batched([k] * 7, judge)
    for q, (best, worst) in zip(quality, results, strict=True):
        assert best == q.index(max(q)) and worst == q.index(min(q))
    comparisons = (k - 1) + (k - 2)
    assert all(len(v) == comparisons for v in verdicts)
    assert len(calls) == 7 * comparisons
    # both orders per comparison: 2 judge calls each
    assert 2 * len(calls) == 7 * (2 * (k - 1) + 2 * (k - 2))
    # every prompt's comparisons of a round are one batched judge call
    assert rounds == comparisons


def test_every_permutation_of_five():
    for perm in itertools.permutations(range(5)):
        judge, _ = scripted([list(perm)])
        ((best, worst),) = ipr.run_batched([5], judge)[0]
        assert (best, worst) == (perm.index(4), perm.index(0))


def test_prompts_with_fewer_than_two_candidates_are_skipped():
    judge, calls = scripted([[1, 2, 3], [5], []])
    results, verdicts, _ = ipr.run_batched([3, 1, 0], judge)
    assert results[1] is None and results[2] is None and verdicts[1] == []
    assert {p for p, _ in calls} == {0}


def test_consistent_verdict_is_no_tie():
    v = ipr.decide(ipr.Request(0, 1, "best"), 0.2, 0.3)
    assert v.winner == 1 and not v.tie and v.tie_break is None


def test_position_flip_is_a_tie_broken_by_mean_probability():
    v = ipr.decide(ipr.Request(0, 1, "best"), 0.9, 0.2)  # mean 0.55 for the incumbent
    assert v.tie and v.tie_break == "mean_prob" and v.winner == 0
    v = ipr.decide(ipr.Request(0, 1, "best"), 0.6, 0.1)  # mean 0.35
    assert v.tie and v.tie_break == "mean_prob" and v.winner == 1


def test_exact_tie_keeps_incumbent_in_both_passes():
    best = ipr.decide(ipr.Request(3, 4, "best"), 0.9, 0.1)
    assert best.tie and best.tie_break == "incumbent" and best.winner == 3
    worst = ipr.decide(ipr.Request(3, 4, "worst"), 0.5, 0.5)
    assert worst.tie and worst.tie_break == "incumbent" and worst.loser == 3


def test_flip_between_true_best_and_another_is_recorded():
    judge, _ = scripted([[0, 1, 2, 3]], flips={frozenset((0, 1))})
    results, verdicts, _ = ipr.run_batched([4], judge)
    first = verdicts[0][0]
    assert (first.i, first.j) == (0, 1) and first.tie and first.tie_break == "incumbent"
    assert results[0] == (3, 0)


def test_needs_two_items():
    with pytest.raises(ValueError, match="at least 2"):
        next(ipr.best_and_worst(1))


@pytest.mark.parametrize("name", sorted(ipr.PROCEDURES))
@pytest.mark.parametrize("k", [2, 3, 5, 7])
def test_full_rankings_are_true_orders(name, k):
    rng = random.Random(100 + k)
    quality = [rng.sample(range(50), k) for _ in range(6)]
    judge, calls = scripted(quality)
    results, verdicts, _ = ipr.run_batched([k] * 6, judge, ipr.PROCEDURES[name])
    for q, order in zip(quality, results, strict=True):
        assert sorted(order) == list(range(k))
        if name == "best_worst":
            assert (order[0], order[-1]) == (q.index(max(q)), q.index(min(q)))
        else:
            assert [q[i] for i in order] == sorted(q, reverse=True)
    per_prompt = {len(v) for v in verdicts}
    if name in ("winner_stays_full", "round_robin"):
        assert per_prompt == {k * (k - 1) // 2}
    elif name == "insertion":
        assert max(per_prompt) <= sum(math.ceil(math.log2(n + 1)) for n in range(1, k))
    else:
        assert per_prompt == {2 * k - 3}


def test_insertion_tie_keeps_placed_item_ahead():
    def always_tie(batch):
        return [(0.5, 0.5)] * len(batch)

    (order,), _, _ = ipr.run_batched([4], always_tie, ipr.insertion)
    assert order == [0, 1, 2, 3]


def test_intransitive_triples_counts_cycles():
    cycle = [(0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3)]  # 0>1>2>0, all beat 3
    assert ipr.intransitive_triples(cycle) == 1
    assert ipr.intransitive_triples([(0, 1), (1, 2), (0, 2)]) == 0
    assert ipr.intransitive_triples([(0, 1), (1, 2)]) == 0  # an uncompared pair is no cycle


def test_the_schema_names_exactly_the_registrys_ranker_kinds():
    import yaml

    from harness.ranking.kinds import RANKER_KINDS, kind

    from .conftest import ROOT

    schema = yaml.safe_load((ROOT / "config/schema.yaml").read_text())
    ranker = schema["properties"]["rankers"]["additionalProperties"]
    assert ranker["properties"]["kind"]["enum"] == list(RANKER_KINDS)
    assert kind({"kind": "ipr"}).model_key == "judge" and kind({"kind": "reward_model"}).model_key == "model"
    with pytest.raises(ValueError, match="unknown ranker kind 'rm'; valid: reward_model, ipr"):
        kind({"kind": "rm"})
