"""Confidence intervals: percentile bootstrap over evaluation units, and Student-t over seeds.

Benchmarks are resampled by their natural unit (an AlpacaEval instruction, an MT-Bench question with
both its turns), so that correlated scores of one unit move together. Resamples are drawn from a
numpy Generator seeded by the caller, so a metrics file is reproducible byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.core.io import RecordError

LEVEL = 0.95
SAMPLES = 1000


def bootstrap_mean_ci(
    units: list[list[float]], seed: int, samples: int = SAMPLES, scale: float = 1.0
) -> list[float] | None:
    """95% percentile interval of the pooled mean of all values, resampling whole units.

    Args:
        units: per unit (e.g. question), its values; units without values still count as drawn.
    Returns:
        ``[low, high]`` times ``scale``, or None when there are no values at all.
    """
    sums = np.array([float(np.sum(u)) for u in units])
    counts = np.array([len(u) for u in units], dtype=float)
    if counts.sum() == 0:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(units), size=(samples, len(units)))
    total, n = sums[idx].sum(axis=1), counts[idx].sum(axis=1)
    means = total[n > 0] / n[n > 0]
    return _interval(means * scale)


def bootstrap_ci(
    n_units: int, statistic: Callable[[np.ndarray], float], seed: int, samples: int
) -> list[float]:
    """95% percentile interval of ``statistic(indices)`` over ``samples`` resamples of ``n_units`` units."""
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n_units, size=n_units)) for _ in range(samples)]
    return _interval(np.asarray(values, dtype=float))


def _interval(values: np.ndarray) -> list[float]:
    lo, hi = np.percentile(values, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return [float(lo), float(hi)]


def seed_mean_ci(values: list[float]) -> tuple[float, float | None]:
    """Mean over seeds and the half-width of its 95% Student-t interval (None for a single seed)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float(x.mean()), None
    half = stats.t.ppf((1 + LEVEL) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(half)


def mean_cell(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A pooled-mean cell of the paired comparisons (harness/reporting/paired.py) from (seeds x prompts)
    values, NaN where a prompt has none."""
    v = np.asarray(values, dtype=float)
    return np.nan_to_num(v, nan=0.0), (~np.isnan(v)).astype(float)


def aligned(keys: list, order: list, path: str, what: str) -> np.ndarray:
    """Positions of ``order``'s units in a file's ``keys``; the two sets must be equal (paired cells
    are evaluated on the same prompts)."""
    pos = {k: i for i, k in enumerate(keys)}
    missing = [k for k in order if k not in pos]
    if missing or len(pos) != len(order):
        extra = [k for k in keys if k not in set(order)]
        raise RecordError(
            f"{path}: its {what} differ from the other cells' ({len(missing)} missing, e.g. "
            f"{(missing or extra)[0]!r}): paired cells must be evaluated on the same {what}"
        )
    return np.array([pos[k] for k in order])


def seed_order(seeds: dict) -> list:
    """A cell's seeds in order, the base's (None) first."""
    return sorted(seeds, key=lambda s: -1 if s is None else s)


def sum_count_cells(files: dict, per_unit, what: str) -> tuple[list, dict]:
    """Pooled-mean cells of the paired comparisons: per cell, (seeds x units) sums and counts, from
    ``per_unit(path) -> (units, {unit: (sum, count)})`` of each seed's file (a unit without an entry
    counts nothing), the units aligned across every cell and seed; and the units' order."""
    order, out = None, {}
    for cell, seeds in files.items():
        sums, counts = [], []
        for seed in seed_order(seeds):
            path = seeds[seed]
            keys, by = per_unit(path)
            order = order or keys
            pos = aligned(keys, order, path, what)
            sums.append([by.get(keys[i], (0.0, 0.0))[0] for i in pos])
            counts.append([by.get(keys[i], (0.0, 0.0))[1] for i in pos])
        out[cell] = (np.array(sums, dtype=float), np.array(counts, dtype=float))
    return order, out
