"""Paired comparisons between cells: the difference of two cells on one benchmark, with an interval that
counts both sources of noise, a p-value, Holm's correction and the smallest detectable difference.

Two cells are evaluated on the same prompts, so a prompt that is hard for one is hard for the other:
their difference varies much less than either cell, and comparing two per-cell intervals for overlap
is the wrong test. A cell's number is the mean over its seeds of a per-seed statistic T on the prompts
(a win rate, an LC win rate refitted by alpaca_eval's GLM, an oracle score, an MT-Bench score, a task
accuracy). The difference D = mean_s T_A,s - mean_s T_B,s varies

- with the seeds: given the prompts, the Welch term var_s(T_A) / S_A + var_s(T_B) / S_B estimates its
  variance for any statistic, without resampling (a bootstrap of 3 seeds has only 10 distinct draws
  and shrinks their spread by 2/3: in benchmarks/comparison_coverage.py it covers 81-99% instead of
  95%, depending on how large the seed effect is);
- with the prompts: the same prompts are resampled for both cells (a percentile bootstrap with
  replacement, the statistic recomputed on every draw, the LC GLM refitted), and the variance of the
  seed-averaged difference over the draws is taken, less the seed x prompt noise that the Welch term
  has already counted (per cell, the draws' variance of each seed's deviation from the seed mean,
  divided by S - 1).

The interval is D +- t_df x SE with SE^2 the sum of the two parts and df Welch-Satterthwaite's over
the seed terms (S - 1 each) and the prompt term (n - 1); the p-value is the two-sided t test of D = 0.
tests/test_compare.py simulates cells with seed effects, prompt effects, cell x prompt effects and
noise at the demo's sizes (3 seeds, 96 prompts) and checks that the 95% interval covers the true
difference 92-98% of the time and that p-values under no difference reject about 5%.

The minimum detectable difference at 80% power is (t_0.975 + t_0.8) x SE: the smallest true difference
this design finds at alpha 0.05 four times in five. With more seeds the seed part shrinks as 1/S; the
table gives it for ``more_seeds`` seeds too, so a user planning the paper run sees what 3 seeds resolve.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

LEVEL = 0.95
POWER = 0.8

# a cell's per-seed statistic: either per-prompt sums and counts, two (seeds x prompts) arrays whose
# statistic is the pooled mean sum / count over the prompts drawn (a prompt without a value counts 0:
# an AlpacaEval row without a verdict, an MT-Bench turn without a rating), or one callable per seed
# mapping prompt indices (None: all) to its statistic (the LC win rate's GLM refit); each benchmark's
# module builds its cells (its registry hook `paired`, harness/core/benchmarks.py)
Cell = tuple[np.ndarray, np.ndarray] | Sequence[Callable[[np.ndarray | None], float]]


def _per_seed(cell: Cell, idx: np.ndarray | None) -> np.ndarray:
    """The per-seed statistic on prompts ``idx`` (all when None): shape (seeds,) or, for a 2-D ``idx``
    of draws, (draws, seeds)."""
    if isinstance(cell, tuple):
        sums, counts = cell
        if idx is None:
            return sums.sum(axis=1) / counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sums[:, idx].sum(axis=-1) / counts[:, idx].sum(axis=-1)).T  # (draws, seeds)
    if idx is None:
        return np.array([f(None) for f in cell], dtype=float)
    return np.array([[f(i) for f in cell] for i in idx], dtype=float)


def draws(n: int, samples: int, seed: int) -> np.ndarray:
    """The prompt resamples (``samples`` x ``n`` indices) every cell of one benchmark is evaluated on."""
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def statistics(cell: Cell, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A cell's per-seed statistic on all prompts (seeds,) and on each resample of ``idx`` (draws, seeds)."""
    return _per_seed(cell, None), _per_seed(cell, idx)


def paired(a: Cell, b: Cell, n: int, samples: int, seed: int, more_seeds: int | None = None) -> dict:
    """Cell ``a`` minus cell ``b`` on the same ``n`` prompts (see the module docstring)."""
    idx = draws(n, samples, seed)
    return difference(statistics(a, idx), statistics(b, idx), n, more_seeds)


def difference(a, b, n: int, more_seeds: int | None = None) -> dict:
    """Cell ``a`` minus cell ``b`` from their ``statistics`` on the same resamples of ``n`` prompts.

    Returns: diff, se, ci [low, high], p, df, mde (80% power, alpha 0.05), the variance parts
    (seed_var, prompt_var) and, with ``more_seeds``, mde_more_seeds: the same design with that many
    seeds a cell. With fewer than 2 units only diff: the rest is NaN (no interval and no test).
    """
    from scipy import stats

    (ta, da), (tb, db) = a, b
    diff = float(ta.mean() - tb.mean())
    if n < 2:  # one unit: how much a cell's score moves with the prompts cannot be estimated
        nan = float("nan")
        return {"diff": diff, "seed_var": nan, "prompt_var": nan, "seeds": [len(ta), len(tb)], "se": nan,
                "df": None, "ci": [nan, nan], "p": nan, "mde": nan,
                "mde_more_seeds": nan if more_seeds else None}  # fmt: skip
    seed_terms = [(float(t.var(ddof=1)) / len(t), len(t)) for t in (ta, tb) if len(t) > 1]
    raw = float(np.nanvar(da.mean(axis=1) - db.mean(axis=1), ddof=1))
    noise = sum(
        float(np.nanmean(np.nanvar(d - d.mean(axis=1, keepdims=True), axis=0, ddof=1))) / (d.shape[1] - 1)
        for d in (da, db)
        if d.shape[1] > 1
    )
    prompt = max(raw - noise, 0.0)
    # the prompt part is known up to the n prompts and the Monte Carlo error of the draws
    prompt_df = 1 / (1 / (n - 1) + 1 / (len(da) - 1))

    def df_of(terms):
        denom = sum(v * v / (k - 1) for v, k in terms) + prompt * prompt / prompt_df
        total = sum(v for v, _ in terms) + prompt
        return total * total / denom if denom > 0 else prompt_df

    seed_part = sum(v for v, _ in seed_terms)
    var = seed_part + prompt
    out = {"diff": diff, "seed_var": seed_part, "prompt_var": prompt, "seeds": [len(ta), len(tb)]}
    if var <= 0:  # identical cells (a model against itself): no spread at all
        return {**out, "se": 0.0, "df": None, "ci": [diff, diff], "p": 1.0 if diff == 0 else 0.0,
                "mde": 0.0, "mde_more_seeds": 0.0 if more_seeds else None}  # fmt: skip
    df, se = df_of(seed_terms), float(np.sqrt(var))
    q = float(stats.t.ppf((1 + LEVEL) / 2, df))
    out.update(
        se=se,
        df=df,
        ci=[diff - q * se, diff + q * se],
        p=float(2 * stats.t.sf(abs(diff) / se, df)),
        mde=float((q + stats.t.ppf(POWER, df)) * se),
        mde_more_seeds=None,
    )
    if more_seeds:
        scaled = [(v * k / more_seeds, more_seeds) for v, k in seed_terms]
        df2 = df_of(scaled)
        q2 = float(stats.t.ppf((1 + LEVEL) / 2, df2))
        out["mde_more_seeds"] = float(
            (q2 + stats.t.ppf(POWER, df2)) * np.sqrt(sum(v for v, _ in scaled) + prompt)
        )
    return out


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error at any level), in the given order."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


# ---- rows of the comparison table ----


def identical(r: dict) -> bool:
    """A comparison whose two cells scored every paired unit (prompt, question, lm-eval doc) the same in
    every seed: its difference and interval are exactly zero (for lm-eval, identical answers)."""
    return bool(np.isfinite(r["diff"])) and r["diff"] == 0 and list(r["ci"]) == [0, 0]


def by_metric(rows: list[dict]) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["benchmark"], r["metric"]), []).append(r)
    return groups
