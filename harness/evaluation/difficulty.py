"""Instruction difficulty for the length-controlled win rate, fitted jointly over many judged models.

alpaca_eval's ``length_controlled_v1`` GLM models the judge's preference for model ``m`` over the
reference on instruction ``i`` as ``logistic(theta_m + phi_m * tanh(len_delta / sd) + psi_m * gamma_i)``:
``gamma_i`` is how hard instruction ``i`` is for any model, which alpaca_eval estimated once from its
leaderboard and ships in ``df_gamed.csv``. Offline, that file is not at hand; but a run that judges many
models against the same reference on the same instructions holds the same kind of evidence. This module
fits ``gamma`` on all of them at once (every model's ``theta``, ``phi``, ``psi`` and the shared
``gamma``), by penalised maximum likelihood on the judge's (soft) preferences:

    loss = sum over models and instructions of the cross-entropy
           + lam * (|gamma|^2 + |psi|^2)

(``psi * gamma`` is unchanged when one is scaled up and the other down, so both are penalised: the
product's scale is what ``lam`` controls). ``lam`` is chosen on held-out models, never on a published
LC: the models are split into folds; for each fold ``gamma`` is fitted on the other models, then each
held-out model's own three parameters are fitted on half of its instructions with ``gamma`` fixed and
scored (mean cross-entropy) on the other half, and the halves swapped. The ``lam`` with the lowest
held-out loss is refitted on every model. alpaca_eval's GLM then uses this ``gamma`` as its
``instruction_difficulty`` (see harness/evaluation/lc.py, ``lc_method: joint``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LAMBDAS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


@dataclass
class Judged:
    """One model's annotations against the reference: instruction indices, tanh of the standardised
    length difference (reference minus model, alpaca_eval's sign) and preference for the model in [0, 1]."""

    name: str
    index: np.ndarray
    tanh_len: np.ndarray
    y: np.ndarray


def std_delta_len(len_reference, len_model) -> np.ndarray:
    """alpaca_eval's length feature: reference minus model length, divided by its standard deviation
    over every row (0 where all differences are equal)."""
    delta = np.asarray(len_reference, dtype=float) - np.asarray(len_model, dtype=float)
    sd = delta.std(ddof=1) if len(delta) > 1 else 0.0
    return delta / sd if sd > 0 else delta * 0.0


def judged(name: str, index, len_reference, len_model, preference) -> Judged:
    """From alpaca_eval fields: ``preference`` in [1, 2] (0 or 1.5 a draw); rows without one are left out."""
    index = np.asarray(index, dtype=int)
    std = std_delta_len(len_reference, len_model)
    p = np.asarray(preference, dtype=float)
    p = np.where(p == 0, 1.5, p) - 1
    keep = (p >= 0) & (p <= 1)  # NaN and out-of-range are not preferences
    return Judged(name, index[keep], np.tanh(std[keep]), p[keep])


def _stack(models: list[Judged]):
    mid = np.concatenate([np.full(len(m.y), k) for k, m in enumerate(models)])
    idx = np.concatenate([m.index for m in models])
    t = np.concatenate([m.tanh_len for m in models])
    y = np.concatenate([m.y for m in models])
    return mid, idx, t, y


def fit(models: list[Judged], n_instructions: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Jointly fitted ``gamma`` (one per instruction) and each model's (theta, phi, psi)."""
    from scipy.optimize import minimize

    M, N = len(models), n_instructions
    mid, idx, t, y = _stack(models)

    def objective(x):
        theta, phi, psi, gamma = x[:M], x[M : 2 * M], x[2 * M : 3 * M], x[3 * M :]
        z = theta[mid] + phi[mid] * t + psi[mid] * gamma[idx]
        r = 1 / (1 + np.exp(-z)) - y  # d(cross-entropy)/dz
        loss = np.sum(np.logaddexp(0, z) - y * z) + lam * (gamma @ gamma + psi @ psi)
        grad = np.concatenate(
            [
                np.bincount(mid, r, M),
                np.bincount(mid, r * t, M),
                np.bincount(mid, r * gamma[idx], M) + 2 * lam * psi,
                np.bincount(idx, r * psi[mid], N) + 2 * lam * gamma,
            ]
        )
        return loss, grad

    # start from each instruction's mean preference (a difficulty up to sign and scale) and psi = 1
    mean_y = np.bincount(idx, y, N) / np.maximum(np.bincount(idx, None, N), 1)
    x0 = np.concatenate([np.zeros(2 * M), np.ones(M), mean_y - mean_y.mean()])
    res = minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": 5000})
    params = res.x[: 3 * M].reshape(3, M).T
    return res.x[3 * M :], params


def _own_fit(m: Judged, gamma: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One model's (theta, phi, psi) with ``gamma`` fixed, on ``rows`` (unpenalised logistic regression)."""
    from scipy.optimize import minimize

    X = np.stack([np.ones(len(rows)), m.tanh_len[rows], gamma[m.index[rows]]], axis=1)
    y = m.y[rows]

    def objective(w):
        z = X @ w
        return np.sum(np.logaddexp(0, z) - y * z) + 1e-6 * (w @ w), X.T @ (
            1 / (1 + np.exp(-z)) - y
        ) + 2e-6 * w

    return minimize(objective, np.zeros(3), jac=True, method="L-BFGS-B").x


def _heldout_loss(m: Judged, gamma: np.ndarray, seed: int) -> float:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(m.y))
    halves = (order[: len(order) // 2], order[len(order) // 2 :])
    total = 0.0
    for train, test in (halves, halves[::-1]):
        w = _own_fit(m, gamma, train)
        z = w[0] + w[1] * m.tanh_len[test] + w[2] * gamma[m.index[test]]
        total += float(np.sum(np.logaddexp(0, z) - m.y[test] * z))
    return total / len(m.y)


def choose_lambda(models: list[Judged], n_instructions: int, lambdas=LAMBDAS, folds: int = 5, seed: int = 0):
    """The ``lam`` with the lowest held-out-model loss, and the loss of each candidate."""
    folds = min(folds, len(models))
    assign = np.random.default_rng(seed).permutation(len(models)) % folds
    losses = {}
    for lam in lambdas:
        held = []
        for k in range(folds):
            train = [m for m, a in zip(models, assign, strict=True) if a != k]
            gamma, _ = fit(train, n_instructions, lam)
            held += [_heldout_loss(m, gamma, seed) for m, a in zip(models, assign, strict=True) if a == k]
        losses[lam] = float(np.mean(held))
    return min(losses, key=losses.get), losses


def difficulty(
    models: list[Judged], n_instructions: int, lambdas=LAMBDAS, folds: int = 5, seed: int = 0
) -> dict:
    """``gamma`` fitted on every model with the held-out choice of ``lam``, and how it was chosen."""
    if len(models) < 2:
        raise ValueError(f"a joint difficulty fit needs at least 2 judged models, got {len(models)}")
    lam, losses = choose_lambda(models, n_instructions, lambdas, folds, seed)
    gamma, params = fit(models, n_instructions, lam)
    return {
        "instruction_difficulty": gamma,
        "lambda": lam,
        "heldout_loss": {str(k): v for k, v in losses.items()},
        "models": [m.name for m in models],
        "params": {
            m.name: dict(zip(("theta", "phi", "psi"), map(float, p), strict=True))
            for m, p in zip(models, params, strict=True)
        },
    }
