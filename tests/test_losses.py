"""Loss terms on hand-computed tensors, and their limit cases."""

import math

import pytest
import torch

from harness.training.losses import bcr_penalty, dpo_sigmoid, nll_per_token, sequence_logp


# The two objectives as the paper writes them, from the terms the trainer adds (harness/training/trainer.py):
# references for the tests here and for the trainer's loss in test_trainer_parity.
def dpo_bcr(l_w, l_l, r_w, r_l, beta: float, lam: float, delta: float) -> torch.Tensor:
    """L = L_DPO + lambda * mean_B max(0, [r_w - l_w] - delta)."""
    return dpo_sigmoid(l_w, l_l, r_w, r_l, beta) + lam * bcr_penalty(l_w, r_w, delta)


def dpo_nll(l_w, l_l, r_w, r_l, beta: float, alpha: float, chosen_token_logps, chosen_mask) -> torch.Tensor:
    """L = L_DPO + alpha * NLL(y_w) per token."""
    return dpo_sigmoid(l_w, l_l, r_w, r_l, beta) + alpha * nll_per_token(chosen_token_logps, chosen_mask)


# Two pairs. Log-ratios: chosen [-1, 0], rejected [-1, 2]; margins [0, -2].
L_W = torch.tensor([-3.0, -5.0])
L_L = torch.tensor([-4.0, -4.0])
R_W = torch.tensor([-2.0, -5.0])
R_L = torch.tensor([-3.0, -6.0])
BETA = 0.5
DPO = (math.log(2) + math.log(1 + math.e)) / 2  # -log sigmoid(0), -log sigmoid(-1)


def test_dpo_by_hand():
    assert dpo_sigmoid(L_W, L_L, R_W, R_L, BETA).item() == pytest.approx(DPO, abs=1e-6)


def test_bcr_penalty_by_hand():
    # r_w - l_w = [1, 0]; minus delta 0.5 -> [0.5, -0.5]; hinge -> [0.5, 0]; mean 0.25
    assert bcr_penalty(L_W, R_W, 0.5).item() == pytest.approx(0.25)
    assert dpo_bcr(L_W, L_L, R_W, R_L, BETA, lam=2.0, delta=0.5).item() == pytest.approx(DPO + 0.5, abs=1e-6)


def test_zero_budget_is_the_dpop_hinge():
    assert bcr_penalty(L_W, R_W, 0.0).item() == pytest.approx(torch.relu(R_W - L_W).mean().item())
    assert bcr_penalty(L_W, R_W, 0.0).item() == pytest.approx(0.5)


def _grads(fn):
    l_w = L_W.clone().requires_grad_(True)
    l_l = L_L.clone().requires_grad_(True)
    fn(l_w, l_l).backward()
    return l_w.grad, l_l.grad


def test_infinite_budget_is_plain_dpo_in_loss_and_gradient():
    bcr = _grads(lambda w, lo: dpo_bcr(w, lo, R_W, R_L, BETA, lam=3.0, delta=1e9))
    dpo = _grads(lambda w, lo: dpo_sigmoid(w, lo, R_W, R_L, BETA))
    assert dpo_bcr(L_W, L_L, R_W, R_L, BETA, 3.0, 1e9).item() == dpo_sigmoid(L_W, L_L, R_W, R_L, BETA).item()
    for a, b in zip(bcr, dpo, strict=True):
        assert torch.equal(a, b)


def test_bcr_gradient_zero_within_budget_and_minus_lambda_beyond():
    lam, delta = 2.0, 0.5
    l_w = L_W.clone().requires_grad_(True)
    (lam * bcr_penalty(l_w, R_W, delta)).backward()
    # pair 0 fell by 1.0 > 0.5: d/dl_w = -lam / B; pair 1 fell by 0: inside the budget, no gradient
    assert l_w.grad.tolist() == pytest.approx([-lam / 2, 0.0])


def test_nll_per_token_by_hand():
    token_logps = torch.tensor([[-1.0, -2.0, 0.0], [-3.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert nll_per_token(token_logps, mask).item() == pytest.approx(2.0)  # mean of 1, 2, 3
    total = dpo_nll(L_W, L_L, R_W, R_L, BETA, 0.2, token_logps, mask).item()
    assert total == pytest.approx(DPO + 0.4, abs=1e-6)


def test_sequence_logp_sum_and_token_mean():
    token_logps = torch.tensor([[-1.0, -2.0, -9.0], [-3.0, -9.0, -9.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert sequence_logp(token_logps, mask, "sum").tolist() == [-3.0, -3.0]
    assert sequence_logp(token_logps, mask, "token").tolist() == [-1.5, -3.0]
    with pytest.raises(ValueError, match="valid: sum, token"):
        sequence_logp(token_logps, mask, "mean")
