"""The seam with TRL (pinned 1.16.0): our loss terms against DPOTrainer's own, on a tiny model.

- nll: HarnessDPOTrainer with kind nll equals TRL's ["sigmoid", "sft"] and our dpo_nll formula,
  computed from an independent forward pass, to 1e-6.
- bcr: an infinite budget equals TRL's plain sigmoid loss; a zero budget adds exactly the DPOP hinge.
"""

import pytest
import torch

from harness.training.args import dpo_config
from harness.training.losses import dpo_sigmoid
from harness.workflow.config import section_defaults

from .conftest import model_ref
from .test_losses import dpo_nll

TRAINING = {
    **section_defaults("training"),
    "beta": 0.3,
    "learning_rate": 1e-3,
    "per_device_train_batch_size": 4,
    "effective_batch_size": 4,
    "lr_scheduler_type": "constant",
    "warmup_ratio": 0.0,
    "max_length": 128,
}
PAIRS = [
    ("Explain why the sky looks blue.", "Light scatters in the air.", "The sky is a colour."),
    ("Give a simple recipe for tomato soup.", "Cook tomatoes with onion, then blend.", "Soup."),
    ("What is photosynthesis?", "Plants make sugar from light, water and air.", "A word about plants."),
    ("How do bees make honey?", "Bees turn nectar into honey in the hive.", "They just do."),
]


def _trainer(tiny_models, tmp_path, loss_type, loss_weights, regularizer=None, **extra):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOTrainer

    from harness.backends.hf import load_tokenizer
    from harness.training.trainer import HarnessDPOTrainer

    ref = model_ref(tiny_models / "policy")
    tok = load_tokenizer(ref)
    model = AutoModelForCausalLM.from_pretrained(ref["source"])
    data = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": p}],
                "chosen": [{"role": "assistant", "content": c}],
                "rejected": [{"role": "assistant", "content": r}],
            }
            for p, c, r in PAIRS
        ]
    )
    job = {
        "seed": 0,
        "training": TRAINING,
    }
    args = dpo_config(job, str(tmp_path), loss_type, loss_weights)
    kwargs = dict(model=model, args=args, train_dataset=data, processing_class=tok)
    if regularizer is None:
        return DPOTrainer(**kwargs)
    return HarnessDPOTrainer(regularizer=regularizer, **kwargs, **extra)


def _loss(trainer):
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, batch).item(), batch


def _independent_logps(model, batch):
    """Per-token log-probs of each completion from a plain forward (no TRL code)."""
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    mask = batch["completion_mask"][:, 1:].float()
    return logp * mask, mask


def test_nll_equals_trl_sft_and_our_formula(tiny_models, tmp_path):
    alpha = 0.7
    trl_loss, batch = _loss(_trainer(tiny_models, tmp_path / "a", ["sigmoid", "sft"], [1.0, alpha]))
    ours = _trainer(
        tiny_models, tmp_path / "b", ["sigmoid", "sft"], [1.0, alpha], {"kind": "nll", "alpha": alpha}
    )
    our_loss, _ = _loss(ours)
    assert our_loss == pytest.approx(trl_loss, abs=1e-6)

    tok_logps, mask = _independent_logps(ours.model, batch)
    seq = tok_logps.sum(1)
    l_w, l_l = seq.chunk(2)
    c_tok, _ = tok_logps.chunk(2)
    c_mask, _ = mask.chunk(2)
    formula = dpo_nll(
        l_w, l_l, batch["ref_chosen_logps"], batch["ref_rejected_logps"], 0.3, alpha, c_tok, c_mask
    )
    assert formula.item() == pytest.approx(trl_loss, abs=1e-5)
    # the logged loss parts add up to the loss TRL optimises
    mode = "train" if ours.model.training else "eval"
    parts = ours._metrics[mode]
    assert parts["loss/dpo"][-1] + alpha * parts["loss/nll"][-1] == pytest.approx(trl_loss, abs=1e-5)


def test_bcr_limits_against_trl(tiny_models, tmp_path):
    trl_loss, batch = _loss(_trainer(tiny_models, tmp_path / "a", ["sigmoid"], [1.0]))
    inf = {"kind": "bcr", "lambda": 5.0, "delta": 1e9, "normalize": "sum"}
    loss_inf, _ = _loss(_trainer(tiny_models, tmp_path / "b", ["sigmoid"], [1.0], inf))
    assert loss_inf == pytest.approx(trl_loss, abs=1e-6)

    # the reference is the initial policy, so before any step l_w == r_w and a zero budget costs
    # nothing; push the reference up to create a known fall of 2 nats per chosen answer
    zero = {"kind": "bcr", "lambda": 0.5, "delta": 0.0, "normalize": "sum"}
    trainer = _trainer(tiny_models, tmp_path / "c", ["sigmoid"], [1.0], zero)
    batch = next(iter(trainer.get_train_dataloader()))
    batch["ref_chosen_logps"] = batch["ref_chosen_logps"] + 2.0
    with torch.no_grad():
        got = trainer.compute_loss(trainer.model, batch).item()
    tok_logps, _ = _independent_logps(trainer.model, batch)
    l_w, l_l = tok_logps.sum(1).chunk(2)
    r_w, r_l = batch["ref_chosen_logps"], batch["ref_rejected_logps"]
    expected = dpo_sigmoid(l_w, l_l, r_w, r_l, 0.3) + 0.5 * torch.relu(r_w - l_w).mean()
    assert got == pytest.approx(expected.item(), abs=1e-5)
    dpop = _trainer(
        tiny_models, tmp_path / "d", ["sigmoid"], [1.0], {"kind": "dpop", "lambda": 0.5, "normalize": "sum"}
    )
    with torch.no_grad():
        assert dpop.compute_loss(dpop.model, batch).item() == pytest.approx(
            got, abs=1e-6
        )  # dpop == bcr(delta=0)
    mode = "train" if trainer.model.training else "eval"
    assert trainer._metrics[mode]["bcr/over_budget"][-1] == 1.0  # every pair fell beyond the budget
    parts = trainer._metrics[mode]
    assert parts["loss/dpo"][-1] + 0.5 * parts["bcr/penalty"][-1] == pytest.approx(got, abs=1e-5)


def test_reference_logps_once_per_pairs_file(tiny_models, tmp_path):
    import json

    from harness.core.io import RecordError
    from harness.training.train import load_reference, reference_logps

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps(
                {
                    "prompt": [{"role": "user", "content": p}],
                    "chosen": [{"role": "assistant", "content": c}],
                    "rejected": [{"role": "assistant", "content": r}],
                }
            )
            + "\n"
            for p, c, r in PAIRS
        )
    )
    job = {
        "seed": 0,
        "model": model_ref(tiny_models / "policy"),
        "training": TRAINING,
    }
    out = tmp_path / "ref.json"
    reference_logps(job, str(pairs), str(out))
    given = load_reference(out, pairs)

    computed = _trainer(tiny_models, tmp_path / "a", ["sigmoid"], [1.0], {"kind": "none"})
    assert given["chosen"] == pytest.approx(list(computed.train_dataset["ref_chosen_logps"]), abs=1e-6)
    assert given["rejected"] == pytest.approx(list(computed.train_dataset["ref_rejected_logps"]), abs=1e-6)

    reused = _trainer(
        tiny_models, tmp_path / "b", ["sigmoid"], [1.0], {"kind": "none"}, reference_logps=given
    )
    assert _loss(reused)[0] == pytest.approx(_loss(computed)[0], abs=1e-6)

    pairs.write_text(pairs.read_text() + pairs.read_text().splitlines()[0] + "\n")  # the pairs file changed
    with pytest.raises(RecordError, match="another version of"):
        load_reference(out, pairs)


# ---- the baselines (harness/training/objectives.py): each against TRL's own loss and a hand computation ----


def _objective_trainer(tiny_models, tmp_path, name, **keys):
    """A HarnessDPOTrainer configured from the registry entry alone (loss types, weights, TRL args)."""
    from harness.training import objectives

    reg = objectives.settings(name, {"kind": name, **keys})
    types, weights = objectives.loss_types(reg)
    trainer = _trainer(tiny_models, tmp_path, types, weights, reg)
    trainer.args.beta = trainer.beta = reg.get("beta", TRAINING["beta"])
    for field_, value in objectives.trainer_args(reg).items():
        setattr(trainer, field_, value)
    return trainer, reg


def _shifted_batch(trainer):
    """A batch whose reference log-probs differ from the policy's (before a step they are equal), so
    that every loss sees non-zero, mixed-sign log-ratio margins."""
    batch = next(iter(trainer.get_train_dataloader()))
    batch["ref_chosen_logps"] = batch["ref_chosen_logps"] + torch.tensor([2.0, -1.0, 0.5, -3.0])
    batch["ref_rejected_logps"] = batch["ref_rejected_logps"] + torch.tensor([-1.0, 2.0, 0.0, 1.5])
    return batch


def _parts(trainer, batch):
    tok_logps, mask = _independent_logps(trainer.model, batch)
    l_w, l_l = tok_logps.sum(1).chunk(2)
    n_w, n_l = mask.sum(1).chunk(2)
    return l_w, l_l, batch["ref_chosen_logps"], batch["ref_rejected_logps"], n_w, n_l


@pytest.mark.parametrize(
    "kind, keys, formula",
    [
        # IPO (Azar et al. 2023, eq. 17) on per-token log-ratios (TRL normalises by completion length)
        (
            "ipo",
            {},
            lambda l_w, l_l, r_w, r_l, n_w, n_l, b, k: (
                ((l_w - r_w) / n_w - (l_l - r_l) / n_l - 1 / (2 * b)) ** 2
            ).mean(),
        ),
        # robust DPO (Chowdhury et al. 2024, eq. 7)
        (
            "robust",
            {"epsilon": 0.2},
            lambda l_w, l_l, r_w, r_l, n_w, n_l, b, k: (
                (
                    -(1 - k["epsilon"]) * torch.nn.functional.logsigmoid(b * ((l_w - r_w) - (l_l - r_l)))
                    + k["epsilon"] * torch.nn.functional.logsigmoid(-b * ((l_w - r_w) - (l_l - r_l)))
                )
                / (1 - 2 * k["epsilon"])
            ).mean(),
        ),
        (
            "dpo_norm",
            {},
            lambda l_w, l_l, r_w, r_l, n_w, n_l, b, k: (
                -torch.nn.functional.logsigmoid(b * ((l_w - r_w) / n_w - (l_l - r_l) / n_l)).mean()
            ),
        ),
        # R-DPO (Park et al. 2024, eq. 9): ours, TRL has none
        (
            "rdpo",
            {"alpha": 0.05},
            lambda l_w, l_l, r_w, r_l, n_w, n_l, b, k: (
                -torch.nn.functional.logsigmoid(
                    b * ((l_w - r_w) - (l_l - r_l)) - k["alpha"] * (n_w - n_l)
                ).mean()
            ),
        ),
    ],
)
def test_dpo_family_baselines(tiny_models, tmp_path, kind, keys, formula):
    ours, reg = _objective_trainer(tiny_models, tmp_path / "ours", kind, **keys)
    batch = _shifted_batch(ours)
    with torch.no_grad():
        got = ours.compute_loss(ours.model, batch).item()
    expected = formula(*_parts(ours, batch), ours.beta, reg).item()
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert all(
        "loss/dpo" not in m for m in ours._metrics.values()
    )  # the sigmoid DPO loss is no part of these losses
    if kind != "rdpo":  # the same loss from TRL's own DPOTrainer configured by hand
        from harness.training import objectives

        trl = _trainer(tiny_models, tmp_path / "trl", *objectives.loss_types(reg))
        trl.args.beta = trl.beta = ours.beta
        for field_, value in objectives.trainer_args(reg).items():
            setattr(trl, field_, value)
        with torch.no_grad():
            assert trl.compute_loss(trl.model, batch).item() == pytest.approx(got, abs=1e-6)


def _free_trainer(tiny_models, tmp_path, name, **keys):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from harness.backends.hf import load_tokenizer
    from harness.training import objectives
    from harness.training.args import trl_config
    from harness.training.train import _trl_trainer

    reg = objectives.settings(name, {"kind": name, **keys})
    ref = model_ref(tiny_models / "policy")
    tok = load_tokenizer(ref)
    data = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": p}],
                "chosen": [{"role": "assistant", "content": c}],
                "rejected": [{"role": "assistant", "content": r}],
            }
            for p, c, r in PAIRS
        ]
    )
    job = {"seed": 0, "training": TRAINING, "regularizer": reg}
    trainer = _trl_trainer(objectives.get(name).trainer)(
        model=AutoModelForCausalLM.from_pretrained(ref["source"]),
        args=trl_config(job, str(tmp_path)),
        train_dataset=data,
        processing_class=tok,
    )
    return trainer, reg


def _answer_logps(model, batch, side):
    """Summed log-prob and token count of each answer (labels -100 on the prompt), no TRL code."""
    ids, labels = batch[f"{side}_input_ids"], batch[f"{side}_labels"]
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=batch[f"{side}_attention_mask"]).logits
    labels = labels[:, 1:]
    mask = labels != -100
    logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return (logp * mask).sum(1), mask.sum(1), logits[:, :-1], labels


@pytest.mark.parametrize(
    "kind, keys",
    [
        ("simpo", {"beta": 2.0, "gamma": 1.0}),
        ("cpo", {"lambda": 0.5}),
        ("slic", {"beta": 2.0, "lambda": 0.3}),
        ("orpo", {"lambda": 0.4}),
    ],
)
def test_reference_free_baselines(tiny_models, tmp_path, kind, keys):
    """SimPO, CPO, SLiC-HF (trl.experimental CPOTrainer) and ORPO (ORPOTrainer), configured from the
    registry, against the published formulas from an independent forward pass."""
    F = torch.nn.functional
    trainer, reg = _free_trainer(tiny_models, tmp_path, kind, **keys)
    trainer.model.eval()
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        got = trainer.compute_loss(trainer.model, batch).item()
    s_w, n_w, logits_w, labels_w = _answer_logps(trainer.model, batch, "chosen")
    s_l, n_l, _, _ = _answer_logps(trainer.model, batch, "rejected")
    nll = F.cross_entropy(
        logits_w.reshape(-1, logits_w.size(-1)).float(), labels_w.reshape(-1), ignore_index=-100
    )
    if kind == "simpo":  # Meng et al. 2024, eq. 6
        expected = -F.logsigmoid(reg["beta"] * (s_w / n_w - s_l / n_l) - reg["gamma"]).mean()
    elif kind == "cpo":  # Xu et al. 2024, eq. 3 + the NLL term
        expected = -F.logsigmoid(reg["beta"] * (s_w - s_l)).mean() + reg["lambda"] * nll
    elif kind == "slic":  # hinge at margin 1/beta + lambda NLL
        expected = torch.relu(1 - reg["beta"] * (s_w - s_l)).mean() + reg["lambda"] * nll
    else:  # ORPO (Hong et al. 2024, eq. 6-7), on per-token mean log-probs; TRL's NLL also covers the prompt
        ids, att = batch["chosen_input_ids"], batch["chosen_attention_mask"]
        full = torch.where(att == 1, ids, -100)[:, 1:]
        with torch.no_grad():
            lg = trainer.model(input_ids=ids, attention_mask=att).logits[:, :-1]
        nll = F.cross_entropy(lg.reshape(-1, lg.size(-1)).float(), full.reshape(-1), ignore_index=-100)
        a_w, a_l = s_w / n_w, s_l / n_l
        log_odds = (a_w - a_l) - (torch.log1p(-torch.exp(a_w)) - torch.log1p(-torch.exp(a_l)))
        expected = nll - reg["lambda"] * F.logsigmoid(log_odds).mean()
    assert got == pytest.approx(expected.item(), rel=1e-5, abs=1e-5)


def test_docs_example_objective_is_one_entry(tiny_models, tmp_path, monkeypatch):
    """The worked example of docs/methods.md (TRL's nca_pair as a new kind) works as written: the entry alone
    configures DPOTrainer with TRL's loss, and the guide's command brings the table there (checked
    against the registry by test_objectives) along."""
    import re

    from harness.training import objectives

    from .conftest import ROOT

    readme = (ROOT / "docs/methods.md").read_text()
    block = re.search(r"```python\n(    \"nca\": Objective\(.*?\n    \),)\n```", readme, re.S).group(1)
    entry = eval(block.strip().split(":", 1)[1].strip().rstrip(","), vars(objectives))  # noqa: S307
    monkeypatch.setitem(objectives.OBJECTIVES, "nca", entry)
    # the guide's last step: the docs' table rewritten from the registry, which then agrees with it
    copy = tmp_path / "methods.md"
    copy.write_text(readme)
    assert objectives.update_doc(copy) and not objectives.update_doc(copy)
    table = copy.read_text().split(objectives.DOC_BEGIN + "\n")[1].split(objectives.DOC_END)[0]
    assert table.strip() == objectives.describe() and "| `nca` | NCA (Chen et al. 2024)" in table
    assert re.search(r"```bash\npython -m harness.training.objectives --doc docs/methods.md\n```", readme)
    ours, _ = _objective_trainer(tiny_models, tmp_path / "ours", "nca")
    batch = _shifted_batch(ours)
    trl = _trainer(tiny_models, tmp_path / "trl", ["nca_pair"], [1.0])
    with torch.no_grad():
        assert ours.compute_loss(ours.model, batch).item() == pytest.approx(
            trl.compute_loss(trl.model, batch).item(), abs=1e-6
        )


def test_kto_against_its_formula(tiny_models, tmp_path):
    """KTO (TRL's KTOTrainer on our pairs, unpaired by TRL), configured from the registry: after the
    policy moves away from its precomputed reference, the loss equals Ethayarajh et al.'s eq. 8 with
    the batch KL estimate, computed from independent forward passes."""
    F = torch.nn.functional
    trainer, reg = _free_trainer(tiny_models, tmp_path, "kto", desirable_weight=1.3, undesirable_weight=0.7)
    with torch.no_grad():  # move the policy: the reference log-probs stay those of the initial model
        for p in trainer.model.parameters():
            p.add_(0.05 * torch.randn_like(p, generator=torch.Generator().manual_seed(0)))
    trainer.model.eval()

    def logps(ids, att, comp):
        with torch.no_grad():
            lg = trainer.model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
        tok = torch.log_softmax(lg, -1).gather(-1, ids[:, 1:, None])[..., 0]
        return (tok * comp[:, 1:]).sum(1)

    seen = set()
    for batch in trainer.get_train_dataloader():  # TRL's sequential order: desirable ones first
        with torch.no_grad():
            got = trainer.compute_loss(trainer.model, batch).item()
        pol = logps(batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
        kl_pol = logps(batch["KL_input_ids"], batch["KL_attention_mask"], batch["KL_completion_mask"])
        z = (kl_pol - batch["ref_KL_logps"]).mean().clamp(min=0)
        ratio = pol - batch["ref_logps"]
        label = torch.as_tensor(batch["label"]).bool()
        b = reg["beta"]
        losses = torch.cat(
            [
                reg["desirable_weight"] * (1 - F.sigmoid(b * (ratio[label] - z))),
                reg["undesirable_weight"] * (1 - F.sigmoid(b * (z - ratio[~label]))),
            ]
        )
        seen.update(label.tolist())
        assert got == pytest.approx(losses.mean().item(), rel=1e-5, abs=1e-6)
    assert seen == {True, False}  # both halves of every pair were trained on
