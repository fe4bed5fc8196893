"""Preference losses, one short function each. Shapes: ``[B]`` per pair unless stated.

Notation: l_w = log pi_theta(y_w|x), l_l = log pi_theta(y_l|x); r_w, r_l the same under pi_ref.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sequence_logp(per_token_logps: torch.Tensor, mask: torch.Tensor, normalize: str = "sum") -> torch.Tensor:
    """Log-likelihood of each answer from its token log-probs ``[B, T]`` and answer mask ``[B, T]``.

    ``sum``: sum_t log p(y_t | ...);  ``token``: the same divided by the answer length.
    """
    total = (per_token_logps * mask).sum(dim=1)
    if normalize == "sum":
        return total
    if normalize == "token":
        return total / mask.sum(dim=1).clamp(min=1)
    raise ValueError(f"unknown normalize '{normalize}'; valid: sum, token")


def dpo_sigmoid(l_w, l_l, r_w, r_l, beta: float) -> torch.Tensor:
    """DPO (Rafailov et al. 2023): mean_B -log sigmoid(beta * [(l_w - r_w) - (l_l - r_l)])."""
    return -F.logsigmoid(beta * ((l_w - r_w) - (l_l - r_l))).mean()


def rdpo(l_w, l_l, r_w, r_l, beta: float, alpha: float, len_w, len_l) -> torch.Tensor:
    """R-DPO (Park et al. 2024): mean_B -log sigmoid(beta * [(l_w - r_w) - (l_l - r_l)] - alpha * (|y_w| - |y_l|)),
    lengths in tokens: a longer chosen answer needs a larger margin."""
    margin = beta * ((l_w - r_w) - (l_l - r_l)) - alpha * (len_w - len_l)
    return -F.logsigmoid(margin).mean()


def nll_per_token(chosen_token_logps: torch.Tensor, chosen_mask: torch.Tensor) -> torch.Tensor:
    """NLL of the chosen answers, averaged over all their tokens in the batch (TRL's ``sft`` term)."""
    return -chosen_token_logps[chosen_mask.bool()].mean()


def bcr_penalty(l_w, r_w, delta: float) -> torch.Tensor:
    """Budget-controlled regularizer: mean_B max(0, (r_w - l_w) - delta).

    Zero while the chosen log-likelihood has fallen by at most ``delta`` below the reference; beyond
    the budget its gradient with respect to l_w is -1/B per pair. delta = 0 is the DPOP hinge;
    delta -> inf leaves plain DPO.
    """
    return torch.relu((r_w - l_w) - delta).mean()
