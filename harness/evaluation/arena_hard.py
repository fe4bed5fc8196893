"""Arena-Hard-Auto's scoring rules (Li et al. 2024; lmarena/arena-hard-auto at commit 196f6b82), on
judgment records in its own layout.

Each question is judged in two games: game 1 shows the baseline as assistant A and the model as B,
game 2 swaps them. A game's verdict is read from the judge's upper-cased text: the first of the
verdict patterns that matches at all gives its last match. A question with a game without a verdict
is left out (both games) and counted. Each game becomes battles from the model's side: a slight win 1,
a tie 0.5, a slight loss 0, and a strong verdict (``>>``) ``weight`` identical battles (3, the tool's
default).

- Without style control: the score is the mean of the battle outcomes; the interval is the 5th and
  95th percentiles of the means of ``rounds`` bootstrap resamples of the battles (a 90% interval), as
  the tool's show_result prints it (the tool reports the mean of the bootstrap means as the score: equal
  to the plain mean within bootstrap noise).
- With style control: a Bradley-Terry (logistic) fit of the outcomes on the model against the baseline
  plus style covariates per battle (the answer lengths' normalised difference; for headers, lists and
  bold text the normalised difference of their densities), each standardised over the battles; the
  score is the fitted win probability against the baseline at average style (the maximum-likelihood
  fit, by Newton's method; the tool's 50 float32 LBFGS iterations stop up to about 0.1 points short
  of it, tests/test_arena_hard.py). The interval: the 5th and 95th percentiles over fits to bootstrap
  resamples of the battles. One model is fitted at a time, so
  a cell's score does not depend on the other cells (the tool fits every model of a leaderboard
  together, sharing the style coefficients).

Scores are in percent. Resamples come from a numpy Generator seeded by the caller (the tool's are
unseeded), so a metrics file is reproducible byte for byte.
"""

from __future__ import annotations

import re

import numpy as np

from harness.core.arena import answer_text, load_answers, load_baselines
from harness.core.io import RecordError, read_jsonl, require

BENCHMARK = "arena_hard"
WEIGHT = 3  # battles per strong verdict (show_result's default)
ROUNDS = 100  # bootstrap resamples (the tool's)
# a verdict from assistant A's side: its outcome and whether it is strong
VERDICTS = {
    "A>>B": (1.0, True), "A>B": (1.0, False), "A=B": (0.5, False), "A<B": (0.0, False), "A<<B": (0.0, True),
    "B<<A": (1.0, True), "B<A": (1.0, False), "B=A": (0.5, False), "B>A": (0.0, False), "B>>A": (0.0, True),
}  # fmt: skip
CONTROLS = ("length", "markdown")
MARKDOWN = ("header_count", "list_count", "bold_count")


def verdict(text: str, patterns: list[str]) -> str | None:
    """The verdict label in a judge's text: the last match of the first pattern that matches, in the
    upper-cased text; None where no pattern matches or the label is not a verdict."""
    upper = text.upper()
    for pattern in patterns:
        found = [m for m in re.findall(pattern, upper) if m != ""]
        if found:
            label = found[-1].strip("\n")
            return label if label in VERDICTS else None
    return None


def game_battles(label: str, model_is_a: bool, weight: int = WEIGHT) -> list[float]:
    """The battles of one game from the model's side."""
    outcome, strong = VERDICTS[label]
    mine = outcome if model_is_a else 1.0 - outcome
    return [mine] * (weight if strong else 1)


def battles(records: list[dict], weight: int = WEIGHT) -> tuple[list[tuple[str, float]], list[str]]:
    """(uid, outcome) of every battle of the judgment records (game 1: the baseline as A; game 2: the
    model as A), and the uids left out for a game without a verdict."""
    out, left_out = [], []
    for rec in records:
        games = rec.get("games") or []
        labels = [g.get("score") if isinstance(g, dict) else None for g in games]
        if len(labels) != 2 or any(label not in VERDICTS for label in labels):
            left_out.append(rec["uid"])
            continue
        # the tool lists game 2's battles first; the order changes no statistic
        for outcome in game_battles(labels[1], True, weight) + game_battles(labels[0], False, weight):
            out.append((rec["uid"], outcome))
    return out, left_out


def score(outcomes, rounds: int = ROUNDS, seed: int = 0) -> dict:
    """Win rate against the baseline without style control (percent) and its 90% bootstrap interval."""
    y = np.asarray(outcomes, dtype=float)
    if y.size == 0:
        raise RecordError("arena_hard: no battle with a verdict to score")
    rng = np.random.default_rng(seed)
    means = y[rng.integers(0, y.size, size=(rounds, y.size))].mean(axis=1)
    return {
        "score": 100 * float(y.mean()),
        "ci": [100 * float(np.quantile(means, 0.05)), 100 * float(np.quantile(means, 0.95))],
        "bootstrap_mean": 100 * float(means.mean()),
    }


def style_metadata(answer: str, token_len: int) -> dict:
    """An answer's style as Arena-Hard-Auto records it: its token count (given) and its markdown
    elements, counted after fenced code blocks are removed."""
    text = answer
    for block in re.findall(r"```[^`]*```", answer):
        text = text.replace(block, "")
    return {
        "token_len": token_len,
        "header_count": {f"h{n}": len(re.findall(rf"^#{{{n}}}\s", text, re.M)) for n in range(1, 7)},
        "list_count": {
            "ordered": len(re.findall(r"^\s*\d+\.\s", text, re.M)),
            "unordered": len(re.findall(r"^\s*[-*+]\s", text, re.M)),
        },
        "bold_count": {
            "**": len(re.findall(r"\*\*[^*\n]+\*\*", text)),
            "__": len(re.findall(r"__[^_\n]+__", text)),
        },
    }


def _counts(meta: dict) -> np.ndarray:
    """Token length, headers, list items, bold spans."""
    return np.array([meta["token_len"], *(sum(meta[k].values()) for k in MARKDOWN)], dtype=float)


def style_covariates(model_meta: list[dict], baseline_meta: list[dict]) -> np.ndarray:
    """Per battle: the normalised length difference and, for headers, lists and bold text, the
    normalised difference of densities (count per token + 1), each standardised over the battles (a
    covariate without spread, e.g. no answer with a header, is NaN: the fit leaves it out)."""
    m = np.array([_counts(x) for x in model_meta])
    b = np.array([_counts(x) for x in baseline_meta])
    with np.errstate(invalid="ignore", divide="ignore"):
        length = (m[:, 0] - b[:, 0]) / (m[:, 0] + b[:, 0])
        dm, db = m[:, 1:] / (m[:, :1] + 1), b[:, 1:] / (b[:, :1] + 1)
        x = np.column_stack([length, (dm - db) / (dm + db + 1)])
        return (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)


def fit(outcomes: np.ndarray, covariates: np.ndarray, iterations: int = 100) -> tuple[np.ndarray, bool]:
    """Maximum-likelihood logistic fit of (fractional) outcomes on an intercept (the model against the
    baseline) and the covariates, by Newton's method: the coefficients, and whether it converged (a
    covariate that separates the outcomes has no maximum: its coefficient runs off)."""
    x = np.column_stack([np.ones(len(outcomes)), covariates])
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(x @ beta, -30, 30)))
        grad = x.T @ (outcomes - p)
        hess = (x * (p * (1 - p))[:, None]).T @ x
        step = np.linalg.solve(hess + 1e-12 * np.eye(len(beta)), grad)
        beta += step
        if np.max(np.abs(step)) < 1e-12:
            return beta, True
    return beta, False


def _fit_kept(y: np.ndarray, x: np.ndarray, cols: list[int]) -> tuple[np.ndarray, list[int]]:
    """The fit on covariates ``cols`` less those without a maximum: one the data hold constant (beside the
    intercept), then, while the fit does not converge, the one whose coefficient runs off (a sparse
    covariate, e.g. the few answers with a header, whose battles all went one way)."""
    cols = [c for c in cols if np.ptp(x[:, c]) > 0]
    while True:
        beta, converged = fit(y, x[:, cols])
        if converged or not cols:
            return beta, cols
        cols = [c for i, c in enumerate(cols) if i != int(np.argmax(np.abs(beta[1:])))]


def _win(y: np.ndarray, x: np.ndarray) -> float:
    """The fitted win probability of one resample (its plain mean where every battle has one outcome)."""
    if y.min() == y.max():
        return float(y[0])
    return 1 / (1 + float(np.exp(-_fit_kept(y, x, list(range(x.shape[1])))[0][0])))


def style_controlled(
    outcomes, covariates: np.ndarray, control=CONTROLS, rounds: int = ROUNDS, seed: int = 0
) -> dict:
    """Win probability against the baseline at average style (percent), controlling ``control``
    (length, markdown or both), and its 90% bootstrap interval."""
    y = np.asarray(outcomes, dtype=float)
    names = ["length", "headers", "lists", "bold"]
    wanted = ([0] if "length" in control else []) + ([1, 2, 3] if "markdown" in control else [])
    if not wanted:
        raise ValueError(f"arena_hard style control: expected some of {', '.join(CONTROLS)}")
    cols = [c for c in wanted if np.isfinite(covariates[:, c]).all()]
    out = {"left_out": [names[c] for c in wanted if c not in cols]}  # covariates without spread
    if y.min() == y.max():  # one outcome in every battle: the fit has no maximum, the answer is plain
        return {
            **out,
            "score": 100 * float(y[0]),
            "ci": [100 * float(y[0])] * 2,
            "note": "every battle has one outcome",
        }
    x = covariates[:, cols]
    rng = np.random.default_rng(seed)
    resamples = rng.integers(0, y.size, size=(rounds, y.size))
    win = np.array([_win(y[i], x[i]) for i in resamples])
    coef, kept = _fit_kept(y, x, list(range(len(cols))))
    out["left_out"] += [names[cols[i]] for i in range(len(cols)) if i not in kept]  # separating the outcomes
    if not np.isfinite(coef).all():
        raise RecordError(
            "arena_hard: the style-controlled fit did not converge (outcomes separated by style)"
        )
    return {
        **out,
        "score": 100 / (1 + float(np.exp(-coef[0]))),
        "ci": [100 * float(np.quantile(win, 0.05)), 100 * float(np.quantile(win, 0.95))],
        "bootstrap_median": 100 * float(np.median(win)),
        "style_coefficients": dict(zip([names[cols[i]] for i in kept], coef[1:].tolist(), strict=True)),
    }


# ---- its judgments ----


def load_judgments(path: str) -> list[dict]:
    """Judgment records in the tool's layout (harness/evaluation/arena_hard_judge.py), one per question."""
    out = []
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        require(rec, "uid", str, where)
        games = require(rec, "games", list, where)
        if len(games) != 2:
            raise RecordError(f"{where}: field 'games': expected the two games, got {len(games)}")
        out.append(rec)
    return out


def metrics_job(cfg: dict, policy: str, model: str) -> dict:
    """Its settings in a metrics job config: battles per strong verdict, the style controls."""
    b = cfg["evaluation"][BENCHMARK]
    return {"weight": b["weight"], "style_control": b["style_control"], "token_count": b["token_count"]}


def token_counter(how: str):
    """Counts an answer's tokens for its style metadata: ``o200k_base`` (tiktoken's gpt-4o encoding, as
    the tool counts; read from tiktoken's cache, which `harness prefetch` fills) or ``words``
    (whitespace-separated words: an offline stand-in, named in the metrics)."""
    if how == "words":
        return lambda text: len(text.split())
    import tiktoken

    try:
        enc = tiktoken.get_encoding(how)
    except Exception as e:  # tiktoken downloads the encoding file where its cache lacks it
        raise RecordError(
            f"evaluation/arena_hard/token_count: tiktoken's {how} encoding is not at hand ({type(e).__name__}); "
            "run `python -m harness prefetch` where the network is reachable, or use token_count: words"
        ) from None
    return lambda text: len(enc.encode(text, disallowed_special=()))


def metrics_step(job: dict, f: dict) -> None:
    """The `metrics` step (its files by option name, harness/cli.py)."""
    metrics(job, f["judgments"], f["answers"], f["baseline"], f["output"], f["eval_set"])


def metrics(
    job: dict,
    judgments_path: str,
    answers_path: str,
    baseline_path: str,
    output: str,
    questions: str | None = None,
) -> None:
    """The score against the baseline without and with style control, from the judgments and the
    style metadata of both sides' answers."""
    import time

    from harness.core.benchmarks import write_metrics

    started = time.time()
    records = load_judgments(judgments_path)
    if questions:  # every question judged (one without a verdict is left out, counted)
        from harness.core.arena import load_questions
        from harness.core.records import check_coverage

        expected = [q["uid"] for q in load_questions(questions)]
        check_coverage([r["uid"] for r in records], expected, judgments_path, questions, "questions")
    found, left_out = battles(records, job["weight"])
    b, seed = job["bootstrap"], job["cell"]["seed"]
    m = {
        "n_questions": len(records),
        "n_left_out": len(left_out),
        "n_battles": len(found),
        "weight": job["weight"],
    }
    # both sides' style counted here, by one counter (a baseline file's own metadata may count otherwise)
    count = token_counter(job["token_count"])
    mine, baselines = load_answers(answers_path), load_baselines(baseline_path)
    only = next(iter(baselines)) if len(baselines) == 1 else None  # a record naming no baseline: this one
    against = {r["uid"]: (r.get("baseline") or only, r.get("category")) for r in records}
    style = {}
    for uid in {u for u, _ in found}:
        name = against[uid][0]
        theirs = baselines.get(name, {}).get(uid)
        if theirs is None:
            raise RecordError(f"{judgments_path}: question {uid} was judged against {name}, whose answer to it "
                              f"{baseline_path} lacks")  # fmt: skip
        for side, rec, path in (("model", mine[uid], answers_path), ("baseline", theirs, baseline_path)):
            text = answer_text(rec, path)
            style[side, uid] = style_metadata(text, count(text))
    scores = _scores(found, style, job["style_control"], b["samples"], seed)
    controlled = scores.pop("style_controlled")
    m.update(scores, token_count=job["token_count"], style_controlled=controlled)
    categories = sorted({against[r["uid"]][1] for r in records}, key=str)
    if len(categories) > 1:  # v2.0: each category against its own baseline, scored apart as the tool does
        m["categories"] = {}
        for cat in categories:
            asked = [r["uid"] for r in records if against[r["uid"]][1] == cat]
            own = [(u, o) for u, o in found if against[u][1] == cat]
            m["categories"][cat] = {
                "baseline": against[asked[0]][0],
                "n_questions": len(asked),
                "n_left_out": len(set(asked) & set(left_out)),
                "n_battles": len(own),
                **(_scores(own, style, job["style_control"], b["samples"], seed) if own
                   else {"score": None, "score_ci": None, "note": "every question left out"}),
            }  # fmt: skip
    write_metrics(output, BENCHMARK, job, m, started)


def _scores(found: list[tuple[str, float]], style: dict, controls: list, rounds: int, seed: int) -> dict:
    """The score of these battles without and with each style control."""
    y = [o for _, o in found]
    plain = score(y, rounds, seed)
    out = {"score": plain["score"], "score_ci": plain["ci"], "bootstrap_mean": plain["bootstrap_mean"]}
    x = style_covariates([style["model", u] for u, _ in found], [style["baseline", u] for u, _ in found])
    out["style_controlled"] = {}
    for c in controls:
        try:
            out["style_controlled"]["+".join(c)] = style_controlled(y, x, tuple(c), rounds, seed)
        except RecordError as e:  # said in the metrics file, not a stopped step: the plain score stands
            out["style_controlled"]["+".join(c)] = {"score": None, "ci": None, "note": str(e)}
    return out


def table_values(m: dict) -> dict:
    """A metrics file's columns of the tables (harness/reporting/report.py): the score and the score with
    length and markdown controlled, with their 90% intervals; for v2.0 each category's too."""
    out = {}
    # v2.0's categories (each against its own baseline) as ``<column>/<category>``, after the overall score
    for name, scores in [(None, m), *m.get("categories", {}).items()]:
        both = (scores.get("style_controlled") or {}).get("length+markdown", {})
        tail = "" if name is None else f"/{name}"
        out.update({
            f"arena_hard{tail}": scores["score"],
            f"arena_hard{tail}_ci": scores["score_ci"],
            f"arena_hard_sc{tail}": both.get("score"),
            f"arena_hard_sc{tail}_ci": both.get("ci"),
        })  # fmt: skip
    return out


def compare_job(cfg: dict) -> dict:
    """Its settings in the comparisons job config: the resample count and the battles per strong verdict."""
    b = cfg["evaluation"][BENCHMARK]
    return {"samples": b["bootstrap"]["samples"], "weight": b["weight"]}


def paired_cells(files: dict, job: dict, difficulty: dict) -> list[tuple]:
    """The paired comparisons' family (harness/reporting/compare.py): the score without style control,
    on questions as units (each question's battle outcomes: their sum and count)."""
    from harness.core.stats import sum_count_cells

    b = job["benchmarks"][BENCHMARK]

    def per_question(path):
        by: dict = {}
        records = load_judgments(path)
        for uid, o in battles(records, b["weight"])[0]:
            s, c = by.get(uid, (0.0, 0.0))
            by[uid] = (s + 100 * o, c + 1)
        return sorted(r["uid"] for r in records), by  # a question left out counts nothing

    order, out = sum_count_cells(files, per_question, "questions")
    return [("Arena-Hard (%)", order, out, b["samples"])]
