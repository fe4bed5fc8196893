"""The demo world: tasks, scores, splits, and the oracle and simulated judges."""

from __future__ import annotations

import random

import pytest

from harness.demo import world
from harness.demo.oracle import OracleJudge
from harness.ranking import ipr


@pytest.mark.parametrize("task", world.TASKS, ids=lambda t: t.name)
def test_every_task_parses_back_and_scores_its_answers(task):
    rng = random.Random(0)
    for _ in range(50):
        args = task.sample(rng)
        parsed = world.parse(task.prompt(args))
        assert parsed == (task, args)
        assert world.score(task, args, task.answer(args)) == 1.0
        # punctuation, case and spacing do not matter
        assert world.score(task, args, f"  {task.answer(args).upper()}. ") == 1.0
        for wrong in (task.habit(args), task.corrupt(args, rng)):
            assert wrong != task.answer(args)
            assert 0.0 <= world.score(task, args, wrong) < 1.0
        assert world.score(task, args, "") < world.score(task, args, task.habit(args))


def test_scores_grade_partial_answers():
    count = world.BY_NAME["count_up"]
    args = {"a": "3", "b": "8"}
    full, one_off, half = "3 4 5 6 7 8", "3 4 5 6 7 8 9", "3 4 5"
    s = [world.score(count, args, x) for x in (full, one_off, half, "banana")]
    assert s[0] == 1.0 > s[1] > s[2] > s[3] == 0.0
    add = world.BY_NAME["add"]
    assert world.score(add, {"a": "4", "b": "5"}, "The answer is 9.") == 1.0
    assert world.score(add, {"a": "4", "b": "5"}, "11") == pytest.approx(0.8)


def test_foreign_prompts_are_refused():
    assert world.parse("Write a poem about the sea.") is None
    with pytest.raises(ValueError, match="not a prompt of the demo world"):
        world.score_text("Write a poem about the sea.", "Waves.")


def test_train_and_eval_splits_never_share_a_prompt():
    train = {t.prompt(a) for t, a in world.instances(300, 0, world.TASKS, "train")}
    evals = world.instances(96, 1, world.TASKS, "eval")
    assert not train & {t.prompt(a) for t, a in evals}
    assert all(world.split_of(t.prompt(a)) == "eval" for t, a in evals)
    # balanced over tasks, reproducible from the seed
    assert {t.name for t, _ in evals[: len(world.TASKS)]} == set(world.BY_NAME)
    assert world.instances(96, 1, world.TASKS, "eval") == evals
    # demonstrations may repeat a prompt; a distinct set cannot outgrow the world
    assert len(world.instances(500, 0, [world.BY_NAME["spell_backwards"]], "train", distinct=False)) == 500
    with pytest.raises(ValueError, match="fewer than 500 distinct train prompts"):
        world.instances(500, 0, [world.BY_NAME["spell_backwards"]], "train")


def test_select_names_groups_and_tasks():
    assert {t.group for t in world.select(groups=["numbers"])} == {"numbers"}
    assert [t.name for t in world.select(tasks=["add"])] == ["add"]
    with pytest.raises(ValueError, match="unknown task group nope; valid: counting, words, numbers"):
        world.select(groups=["nope"])


def test_preferences_put_the_better_answer_first():
    rng = random.Random(0)
    for task, args in world.instances(60, 0, world.TASKS, "train"):
        chosen, rejected = world.preference(task, args, rng)
        assert world.score(task, args, chosen) > world.score(task, args, rejected)


def test_noisy_demonstrations_teach_the_habit_at_the_given_rate():
    rng = random.Random(0)
    items = world.instances(2000, 0, world.TASKS, "train", distinct=False)
    habits = sum(world.demonstration(t, a, rng, 0.3) == t.habit(a) for t, a in items)
    assert habits / len(items) == pytest.approx(0.3, abs=0.03)


def _triples(n=3000):
    rng = random.Random(1)
    out = []
    for task, args in world.instances(n, 2, world.TASKS, "train", distinct=False):
        good, bad = world.preference(task, args, rng)
        out.append((task.prompt(args), good, bad))
    return out


def test_oracle_prefers_the_better_answer_and_ties_equal_ones():
    judge = OracleJudge()
    triples = _triples(200)
    assert list(judge.prob_a(triples)) == [1.0] * 200
    assert list(judge.prob_a([(p, b, g) for p, g, b in triples])) == [0.0] * 200
    assert judge.prob_a([("What is 2 plus 2?", "4", "four is 4")])[0] == 0.5
    assert judge.stats()["judge_calls"] == 401


@pytest.mark.parametrize("error_rate,position_bias", [(0.2, 0.0), (0.0, 0.3), (0.1, 0.2)])
def test_simulated_judges_fail_at_their_configured_rates(error_rate, position_bias):
    judge = OracleJudge(error_rate=error_rate, position_bias=position_bias, seed=7)
    triples = _triples()
    first = judge.prob_a(triples)  # the better answer shown first
    second = judge.prob_a([(p, b, g) for p, g, b in triples])  # shown second
    # picking A when A is better: correct, or by position; picking A when A is worse: position or error
    right_first = (first == 1.0).mean()
    wrong_second = (second == 1.0).mean()
    assert right_first == pytest.approx(position_bias + (1 - position_bias) * (1 - error_rate), abs=0.03)
    assert wrong_second == pytest.approx(position_bias + (1 - position_bias) * error_rate, abs=0.03)
    swapped = [(p, b, g) for p, g, b in triples]
    again = OracleJudge(error_rate=error_rate, position_bias=position_bias, seed=7).prob_a(swapped)
    assert (again == second).all()  # reproducible verdicts
    other = OracleJudge(error_rate=error_rate, position_bias=position_bias, seed=8).prob_a(swapped)
    assert (other != second).any()


def test_rates_outside_0_1_are_refused():
    with pytest.raises(ValueError, match="error_rate must be in"):
        OracleJudge(error_rate=1.5)


def _ipr(judge, k=5, n=80):
    rng = random.Random(3)
    groups = []
    for task, args in world.instances(n, 4, world.TASKS, "train"):
        answers = list(
            dict.fromkeys([task.answer(args), task.habit(args)] + [task.corrupt(args, rng) for _ in range(8)])
        )
        rng.shuffle(answers)
        groups.append((task, args, answers[:k]))

    def ask(batch):
        triples = []
        for g, req in batch:
            task, args, answers = groups[g]
            triples += [
                (task.prompt(args), answers[req.i], answers[req.j]),
                (task.prompt(args), answers[req.j], answers[req.i]),
            ]
        p = judge.prob_a(triples)
        return [(p[2 * n], 1.0 - p[2 * n + 1]) for n in range(len(batch))]

    results, verdicts, _ = ipr.run_batched([len(a) for *_, a in groups], ask)
    return groups, results, verdicts


def test_ipr_with_the_oracle_finds_the_best_and_worst_answer():
    groups, results, verdicts = _ipr(OracleJudge())
    for (task, args, answers), (best, worst) in zip(groups, results, strict=True):
        scores = [world.score(task, args, a) for a in answers]
        assert scores[best] == max(scores) and scores[worst] == min(scores)
    assert not any(v.tie and v.p_i_as_a != 0.5 for vs in verdicts for v in vs)


def test_ipr_turns_a_position_biased_judges_flips_into_ties():
    _, _, verdicts = _ipr(OracleJudge(position_bias=1.0))
    flat = [v for vs in verdicts for v in vs]
    assert all(v.tie and v.tie_break == "incumbent" for v in flat)
