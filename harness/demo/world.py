"""The demo's ground-truth world: short instruction tasks whose correct answer a program knows, with a
graded quality score in [0, 1] for any answer.

Every task is one entry of ``TASKS`` below: a prompt template, a sampler of its arguments, the correct
answer, and a way to get it slightly wrong (for noisy demonstrations and reward-model pairs). Adding a
task there adds it to the demo's prompts, demonstrations, preference sets, evaluation sets, the oracle
judge and the per-group tables; nothing else names tasks.

A prompt carries its task and arguments in its text: :func:`parse` recovers them with a pattern made
from the template, so the oracle judges (instruction, answer) pairs exactly as an LLM judge would see
them, with no side channel.

Scores compare the answer with the correct one word by word (characters for spelling tasks): twice the
matched length over both lengths (difflib's ratio), so that a missing, extra or wrong word costs in
proportion. Addition scores by distance instead: 1 for the sum, 0.1 less per unit off.
"""

from __future__ import annotations

import difflib
import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

WORDS = tuple(
    "cat dog sun tree book fish star milk rain bird lamp door cup hat pen box car bus egg leg map net "
    "owl pig rat web yak zip arm bed cow fox gum jam key mud nut pot rug sky toy van bell cake coin "
    "desk frog gift kite moon ant ape bag bat bee bow bun cab cap dam den dot ear elf fan fig fin fog "
    "fur gem hen hog hut ink jar jet jug kid lid log mop mug nap oak".split()
)


@dataclass(frozen=True)
class Task:
    """One kind of instruction.

    Args:
        name: unique task name.
        group: the task group (reward models are trained on some groups and used on all).
        template: the prompt, with ``{field}`` for each argument; arguments are strings of digits,
            letters and single spaces.
        sample: draws the arguments from a random generator.
        answer: the correct answer for the arguments.
        corrupt: a plausible wrong answer, drawn at random (never the correct one).
        habit: the one wrong answer the noisy demonstrations teach (a systematic error the base policy
            picks up, which preference data can train away).
        unit: ``word`` or ``char``, what the default score compares.
        score: overrides the default score: ``score(args, response) -> [0, 1]``.
    """

    name: str
    group: str
    template: str
    sample: Callable[[random.Random], dict]
    answer: Callable[[dict], str]
    corrupt: Callable[[dict, random.Random], str]
    habit: Callable[[dict], str]
    unit: str = "word"
    score: Callable[[dict, str], float] | None = None

    def prompt(self, args: dict) -> str:
        return self.template.format(**args)


# ---- the tasks ---------------------------------------------------------------------------------------


def _count_args(rng: random.Random) -> dict:
    a = rng.randint(1, 15)
    return {"a": str(a), "b": str(a + rng.randint(2, 8))}


def _counting(args: dict, step: int) -> list[int]:
    a, b = int(args["a"]), int(args["b"])
    return list(range(a, b + step, step)) if step > 0 else list(range(b, a + step, step))


def _words(xs) -> str:
    return " ".join(str(x) for x in xs)


def _drop_or_extend(seq: list, rng: random.Random, extra) -> list:
    """``seq`` with one element dropped, one more at the end, or two neighbours swapped."""
    seq = list(seq)
    how = rng.choice(("drop", "extend", "swap") if len(seq) > 2 else ("extend",))
    if how == "drop":
        del seq[rng.randrange(len(seq))]
    elif how == "extend":
        seq.append(extra)
    else:
        i = rng.randrange(len(seq) - 1)
        seq[i], seq[i + 1] = seq[i + 1], seq[i]
    return seq


def _sort_args(rng: random.Random) -> dict:
    return {"xs": _words(rng.sample(range(1, 30), rng.randint(3, 5)))}


def _sorted(args: dict) -> list[int]:
    return sorted(int(x) for x in args["xs"].split())


def _add_score(args: dict, response: str) -> float:
    m = re.search(r"-?\d+", response)
    if not m:
        return 0.0
    return max(0.0, 1.0 - 0.1 * abs(int(m.group()) - int(args["a"]) - int(args["b"])))


def _add_corrupt(args: dict, rng: random.Random) -> str:
    return str(int(args["a"]) + int(args["b"]) + rng.choice((-2, -1, 1, 2)))


def _corrupt_word(word: str, rng: random.Random) -> str:
    """The word with two neighbouring letters swapped, or one dropped."""
    i = rng.randrange(len(word) - 1)
    if rng.random() < 0.5 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i + 1 :]


TASKS: tuple[Task, ...] = (
    Task(
        "count_up",
        "counting",
        "Count from {a} to {b}.",
        _count_args,
        lambda a: _words(_counting(a, 1)),
        lambda a, rng: _words(_drop_or_extend(_counting(a, 1), rng, int(a["b"]) + 1)),
        lambda a: _words(_counting(a, 1) + [int(a["b"]) + 1]),  # one too far
    ),
    Task(
        "count_down",
        "counting",
        "Count down from {b} to {a}.",
        _count_args,
        lambda a: _words(_counting(a, -1)),
        lambda a, rng: _words(_drop_or_extend(_counting(a, -1), rng, int(a["a"]) - 1)),
        lambda a: _words(_counting(a, -1) + [int(a["a"]) - 1]),  # one too far
    ),
    Task(
        "repeat_word",
        "words",
        "Say {word} {n} times.",
        lambda rng: {"word": rng.choice(WORDS), "n": str(rng.randint(2, 6))},
        lambda a: _words([a["word"]] * int(a["n"])),
        lambda a, rng: _words([a["word"]] * (int(a["n"]) + rng.choice((-1, 1)))),
        lambda a: _words([a["word"]] * (int(a["n"]) + 1)),  # once too often
    ),
    Task(
        "spell_backwards",
        "words",
        "Spell {word} backwards.",
        lambda rng: {"word": rng.choice(WORDS)},
        lambda a: a["word"][::-1],
        lambda a, rng: _corrupt_word(a["word"][::-1], rng),
        lambda a: a["word"][:0:-1],  # the first letter left out
        unit="char",
    ),
    Task(
        "add",
        "numbers",
        "What is {a} plus {b}?",
        lambda rng: {"a": str(rng.randint(0, 12)), "b": str(rng.randint(0, 12))},
        lambda a: str(int(a["a"]) + int(a["b"])),
        _add_corrupt,
        lambda a: str(int(a["a"]) + int(a["b"]) + 1),  # one more
        score=_add_score,
    ),
    Task(
        "sort",
        "numbers",
        "Sort {xs} from smallest to largest.",
        _sort_args,
        lambda a: _words(_sorted(a)),
        lambda a, rng: _words(_drop_or_extend(_sorted(a), rng, max(_sorted(a)) + 1)),
        lambda a: _words(_sorted(a)[:-1]),  # the largest left out
    ),
)

BY_NAME = {t.name: t for t in TASKS}
GROUPS = tuple(dict.fromkeys(t.group for t in TASKS))


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", template)
    rx = "".join(
        re.escape(p) if i % 2 == 0 else rf"(?P<{p}>[0-9A-Za-z]+(?: [0-9A-Za-z]+)*)"
        for i, p in enumerate(parts)
    )
    return re.compile(rx)


_PATTERNS = [(t, _pattern(t.template)) for t in TASKS]


def parse(prompt: str) -> tuple[Task, dict] | None:
    """The task and arguments behind a prompt of this world, or None for any other text."""
    text = prompt.strip()
    for task, rx in _PATTERNS:
        m = rx.fullmatch(text)
        if m:
            return task, m.groupdict()
    return None


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^0-9A-Za-z ]+", " ", text.lower()).split())


def score(task: Task, args: dict, response: str) -> float:
    """Quality of ``response`` in [0, 1]: 1 for the correct answer."""
    if task.score is not None:
        return float(task.score(args, response))
    want, got = _normalise(task.answer(args)), _normalise(response)
    if task.unit == "word":
        want, got = want.split(), got.split()
    if not want and not got:
        return 1.0
    return difflib.SequenceMatcher(None, want, got, autojunk=False).ratio()


def score_text(prompt: str, response: str) -> float:
    """Quality of ``response`` to a prompt of this world; a prompt from elsewhere is an error."""
    parsed = parse(prompt)
    if parsed is None:
        raise ValueError(f"not a prompt of the demo world: {prompt[:80]!r}")
    return score(*parsed, response)


# ---- datasets ----------------------------------------------------------------------------------------


def select(groups: list[str] | None = None, tasks: list[str] | None = None) -> list[Task]:
    """The tasks named, or those of the groups named, or all; unknown names fail listing the valid ones."""
    for names, valid, what in ((tasks, BY_NAME, "task"), (groups, GROUPS, "task group")):
        unknown = sorted(set(names or ()) - set(valid))
        if unknown:
            raise ValueError(f"unknown {what} {', '.join(unknown)}; valid: {', '.join(valid)}")
    return [t for t in TASKS if (not groups or t.group in groups) and (not tasks or t.name in tasks)]


def split_of(prompt: str) -> str:
    """``eval`` for a fixed fifth of each task's prompts (by a hash of the text), else ``train``:
    demonstrations, training prompts and preference sets come from ``train``, evaluation sets from
    ``eval``, so an evaluated prompt was never seen in any training step."""
    return "eval" if int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 5 == 0 else "train"


def instances(
    n: int, seed: int, tasks: list[Task], split: str, distinct: bool = True
) -> list[tuple[Task, dict]]:
    """``n`` (task, args) of ``split``, round-robin over ``tasks``; ``distinct``: no prompt twice.

    Fails when the tasks have fewer distinct prompts in the split than asked for."""
    if split not in ("train", "eval"):
        raise ValueError(f"unknown split '{split}'; valid: train, eval")
    rng = random.Random(seed)
    out, seen, misses = [], set(), 0
    while len(out) < n:
        task = tasks[len(out) % len(tasks)]
        args = task.sample(rng)
        text = task.prompt(args)
        if split_of(text) != split or (distinct and text in seen):
            misses += 1
            if misses > 100_000:
                raise ValueError(
                    f"the world has fewer than {n} distinct {split} prompts of {[t.name for t in tasks]}"
                )
            continue
        seen.add(text)
        out.append((task, args))
    return out


def follow_up(task: Task, args: dict, rng: random.Random) -> dict:
    """Arguments of a second turn that changes the first: the same task on other arguments (also from
    the eval split), e.g. "Count from 3 to 9." then "Count from 3 to 12."."""
    first = task.prompt(args)
    for _ in range(10_000):
        new = task.sample(rng)
        text = task.prompt(new)
        if text != first and split_of(text) == "eval":
            return new
    raise ValueError(f"task {task.name} has no second eval prompt beside {first!r}")


def two_turn(n: int, seed: int, tasks: list[Task]) -> list[tuple[Task, dict, dict]]:
    """``n`` two-turn questions of the eval split (MT-Bench style): a task, then a follow-up changing it."""
    rng = random.Random(f"two-turn-{seed}")
    return [(task, args, follow_up(task, args, rng)) for task, args in instances(n, seed, tasks, "eval")]


def demonstration(task: Task, args: dict, rng: random.Random, noise: float) -> str:
    """A demonstration answer: correct, or with probability ``noise`` the task's habitual error."""
    return task.habit(args) if rng.random() < noise else task.answer(args)


def preference(task: Task, args: dict, rng: random.Random) -> tuple[str, str]:
    """(chosen, rejected) for a labelled preference: the better-scored of two answers first.

    Half the pairs are correct against wrong, half wrong against worse (a second corruption of the
    first), so that a ranker must grade, not only spot the correct answer."""
    good = task.answer(args) if rng.random() < 0.5 else task.corrupt(args, rng)
    for _ in range(20):
        bad = task.corrupt(args, rng)
        if score(task, args, bad) < score(task, args, good):
            return good, bad
    return task.answer(args), task.corrupt(args, rng)


def corpus(seed: int = 0, per_task: int = 40) -> list[str]:
    """Prompts and answers of every task, for the tiny tokenizer's vocabulary."""
    rng = random.Random(seed)
    texts = []
    for task in TASKS:
        for _ in range(per_task):
            args = task.sample(rng)
            texts += [task.prompt(args), task.answer(args), task.corrupt(args, rng)]
    return texts


def downstream_rows(spec: dict) -> list[dict]:
    """The demo world's downstream set: held-out prompts (eval split) with the answer key and three
    wrong answers in a shuffled list (``choices``, ``gold``), for a generate_until and a
    multiple-choice task."""
    import random

    tasks = select(spec.get("groups"), spec.get("tasks"))
    seed = spec.get("seed", 0)
    rng = random.Random(f"world-downstream-{seed}")
    rows = []
    for i, (task, args) in enumerate(instances(spec["n"], seed, tasks, "eval")):
        answer = task.answer(args)
        wrong = []
        for _ in range(200):
            w = task.corrupt(args, rng)
            if w != answer and w not in wrong:
                wrong.append(w)
            if len(wrong) == 3:
                break
        choices = [answer] + wrong
        rng.shuffle(choices)
        rows.append(
            {
                "id": f"{task.name}-{i:04d}",
                "group": task.group,
                "prompt": task.prompt(args),
                "answer": answer,
                "choices": choices,
                "gold": choices.index(answer),
            }
        )
    return rows
