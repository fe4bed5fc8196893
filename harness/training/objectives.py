"""Every preference objective the harness trains, one registry entry each (standard library only).

A config's ``regularizers`` section names objectives by ``kind``; this module says, for each kind,
which keys it takes (with their defaults and meaning), how it trains, which budget on the fall of
the chosen log-likelihood it implies, and whether it needs the reference model's log-probs. The
schema's ``kind`` enum equals ``KINDS`` (tests/test_objectives.py); jobs, config, trainer, train and
figures read this table instead of testing kind names themselves.

How an objective trains (``trainer``):

- ``dpo``: TRL's ``DPOTrainer`` (wrapped by harness.training.trainer.HarnessDPOTrainer) with TRL's own loss
  types and weights (``losses``), plus our term at the seam where ``term`` is set: ``budget`` (BCR,
  DPOP) or ``length`` (R-DPO, which TRL lacks). Reference log-probs come from the DAG's
  ``reference_logps`` job, once per pairs file.
- ``cpo``: ``trl.experimental.cpo.CPOTrainer`` with ``loss_type`` = ``losses[0]``: reference-free
  (SimPO, CPO, SLiC-HF); no reference log-probs are computed for these cells.
- ``orpo``: ``trl.experimental.orpo.ORPOTrainer``: reference-free.
- ``kto``: ``trl.KTOTrainer`` on the pairs unpaired (TRL splits each into a desirable and an
  undesirable example); it computes its own reference log-probs, with those of its KL pairs, once
  before training, so no ``reference_logps`` job runs for these cells either. Its batch counts
  examples, two per pair: the same batch settings take twice the optimizer steps.

To add an objective that TRL implements: one entry here and the kind in config/schema.yaml's enum
(with any new key's type there); new maths goes to harness/training/losses.py and the seam in
harness/training/trainer.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

INF = math.inf


@dataclass(frozen=True)
class Key:
    default: object
    meaning: str


@dataclass(frozen=True)
class Objective:
    summary: str  # the loss in one line, with its source
    keys: dict[str, Key]
    trainer: str = "dpo"  # dpo | cpo | orpo | kto
    losses: tuple[tuple[str, float | str], ...] = (("sigmoid", 1.0),)  # TRL loss type, weight or key
    trainer_args: dict[str, str] = field(default_factory=dict)  # TRL config field <- our key
    term: str | None = None  # ours, added to TRL's loss: budget | length
    budget: float | str | None = None  # allowed fall of log pi(y_w): a number, a key, or None
    reference: bool = True  # reads the reference log-probs (a reference_logps job per pairs file)
    examples_per_pair: int = 1  # what the trainer's batch counts: pairs, or (KTO) two examples a pair
    # a reference-free trainer's own log-probs (eval_logps/*): summed (sum) or per-token means (token)
    own_logps: str = "sum"


def _beta(default=None, what="DPO inverse temperature") -> Key:
    return Key(default, f"{what}; null: training.beta")


LR = Key(None, "peak learning rate of this objective's cells; null: training.learning_rate")
NORMALIZE = Key("sum", "budget on the summed sequence log-likelihood (sum) or its per-token mean (token)")


def _with_nll(summary: str, beta: Key, loss: str, lam: float = 1.0, keys=None, args=None, **kw) -> Objective:
    """A reference-free margin loss plus lambda x NLL of the chosen answer: TRL's CPO trainer (``keys``
    and ``args``: the loss's own settings and the CPOConfig arguments they set)."""
    nll = Key(lam, "weight of the NLL of the chosen answer (TRL cpo_alpha)")
    return Objective(
        summary,
        {"beta": beta, **(keys or {}), "lambda": nll, "learning_rate": LR},
        trainer="cpo",
        losses=((loss, 1.0),),
        trainer_args={**(args or {}), "cpo_alpha": "lambda"},
        reference=False,
        **kw,
    )


OBJECTIVES: dict[str, Objective] = {
    "none": Objective(
        "plain DPO (Rafailov et al. 2023): -log sigmoid(beta [(l_w - r_w) - (l_l - r_l)]); TRL sigmoid",
        {"beta": _beta(), "learning_rate": LR},
        budget=INF,
    ),
    "nll": Objective(
        "DPO + alpha x per-token NLL of the chosen answer (RPO, Pang et al. 2024); TRL sigmoid + sft",
        {
            "alpha": Key(0.2, "weight of the per-token NLL of the chosen answer"),
            "beta": _beta(),
            "learning_rate": LR,
        },
        losses=(("sigmoid", 1.0), ("sft", "alpha")),
    ),
    "bcr": Objective(
        "DPO + lambda x mean max(0, (r_w - l_w) - delta): budget-controlled regularization (Chen et al. 2024)",
        {
            "lambda": Key(1.0, "weight of the penalty"),
            "delta": Key(0.5, "allowed fall of log pi(y_w) below the reference (nats)"),
            "normalize": NORMALIZE,
            "beta": _beta(),
            "learning_rate": LR,
        },
        term="budget",
        budget="delta",
    ),
    "dpop": Objective(
        "DPO + lambda x mean max(0, r_w - l_w): the zero-budget hinge (DPOP, Pal et al. 2024; bcr with delta = 0)",
        {
            "lambda": Key(1.0, "weight of the penalty"),
            "normalize": NORMALIZE,
            "beta": _beta(),
            "learning_rate": LR,
        },
        term="budget",
        budget=0.0,
    ),
    "ipo": Objective(
        "IPO (Azar et al. 2023): (per-token log-ratio margin - 1/(2 tau))^2 with tau = beta; TRL ipo",
        {
            "beta": _beta(0.1, "IPO's tau (TRL's default; training.beta's 0.01 would ask a 50-nat margin)"),
            "learning_rate": LR,
        },
        losses=(("ipo", 1.0),),
    ),
    "robust": Objective(
        "robust DPO (Chowdhury et al. 2024): DPO unbiased for labels flipped with probability epsilon; TRL robust",
        {
            "epsilon": Key(0.1, "probability that a preference label is flipped, in [0, 0.5)"),
            "beta": _beta(),
            "learning_rate": LR,
        },
        losses=(("robust", 1.0),),
        trainer_args={"label_smoothing": "epsilon"},
    ),
    "dpo_norm": Objective(
        "DPO on per-token (length-normalized) log-ratios; TRL sigmoid_norm",
        {"beta": _beta(), "learning_rate": LR},
        losses=(("sigmoid_norm", 1.0),),
    ),
    "rdpo": Objective(
        "R-DPO (Park et al. 2024): -log sigmoid(beta [(l_w - r_w) - (l_l - r_l)] - alpha (|y_w| - |y_l|)); ours",
        {
            "alpha": Key(0.05, "weight of the length difference |y_w| - |y_l| in tokens"),
            "beta": _beta(),
            "learning_rate": LR,
        },
        losses=(("sigmoid", 0.0),),  # TRL's pass supplies the log-probs and metrics; the loss is ours
        term="length",
    ),
    "simpo": _with_nll(
        "SimPO (Meng et al. 2024): -log sigmoid(beta (mean-token l_w - l_l) - gamma), no reference; TRL CPO simpo",
        _beta(2.0, "reward scale"),
        "simpo",
        lam=0.0,
        keys={"gamma": Key(0.5, "target reward margin (in reward units: gamma / beta nats per token)")},
        args={"simpo_gamma": "gamma"},
        own_logps="token",
    ),
    "cpo": _with_nll(
        "CPO (Xu et al. 2024): -log sigmoid(beta (l_w - l_l)) + lambda x NLL(y_w), no reference; TRL CPO sigmoid",
        _beta(0.1, "CPO's beta"),
        "sigmoid",
    ),
    "slic": _with_nll(
        "SLiC-HF (Zhao et al. 2023): max(0, 1 - beta (l_w - l_l)) + lambda x NLL(y_w), margin 1/beta, no reference; TRL CPO hinge",
        _beta(1.0, "inverse margin (the hinge is at l_w - l_l = 1/beta)"),
        "hinge",
    ),
    "orpo": Objective(
        "ORPO (Hong et al. 2024): NLL(x, y_w) - lambda x log sigmoid(log odds(y_w) - log odds(y_l)) on per-token means, no reference; TRL ORPO (its NLL covers the prompt too)",
        {"lambda": Key(0.1, "weight of the odds-ratio term (ORPOConfig.beta)"), "learning_rate": LR},
        trainer="orpo",
        losses=(),
        trainer_args={"beta": "lambda"},
        reference=False,
        own_logps="token",
    ),
    "kto": Objective(
        "KTO (Ethayarajh et al. 2024): each pair as a desirable and an undesirable answer, "
        "w (1 - sigmoid(beta (log-ratio - z_ref))), z_ref the batch KL estimate; TRL KTOTrainer",
        {
            "beta": _beta(0.1, "KTO's beta"),
            "desirable_weight": Key(1.0, "weight of the chosen answers' loss (lambda_D)"),
            "undesirable_weight": Key(1.0, "weight of the rejected answers' loss (lambda_U)"),
            "learning_rate": LR,
        },
        trainer="kto",
        losses=(("kto", 1.0),),
        trainer_args={"desirable_weight": "desirable_weight", "undesirable_weight": "undesirable_weight"},
        reference=False,  # TRL computes its own, with the KL pairs, before training
        examples_per_pair=2,
    ),
}
KINDS = tuple(OBJECTIVES)
TRAINERS = ("dpo", "cpo", "orpo", "kto")


class ObjectiveError(ValueError):
    """A regularizer entry its kind does not accept (the message names the entry and the key)."""


def get(kind: str) -> Objective:
    if kind not in OBJECTIVES:
        raise ObjectiveError(f"unknown objective kind '{kind}'; valid: {', '.join(KINDS)}")
    return OBJECTIVES[kind]


def settings(name: str, entry: dict) -> dict:
    """A regularizer's job settings: ``{name, kind, <its keys>}`` with this kind's defaults filled and
    the keys left at null dropped (they mean "the training section's value"). A key the kind does not
    take is refused, naming it and the keys it does take."""
    obj = get(entry["kind"])
    extra = sorted(set(entry) - {"kind"} - set(obj.keys))
    if extra:
        raise ObjectiveError(
            f"'{name}' (kind {entry['kind']}) does not take '{extra[0]}'; it takes {', '.join(obj.keys)}"
        )
    out = {"name": name, "kind": entry["kind"]}
    for key, spec in obj.keys.items():
        value = entry.get(key, spec.default)
        if value is not None:
            out[key] = value
    return out


@dataclass(frozen=True)
class Resolved:
    """One regularizer's settings resolved once against its registry entry: what the training step,
    its TRL config and the trainer read (the trainer holds it for every step)."""

    settings: dict  # {name, kind, <its keys>} (``settings``)
    objective: Objective
    loss_types: tuple[str, ...]  # TRL loss_type, with
    loss_weights: tuple[float, ...]  # TRL loss_weights
    trainer_args: dict  # TRL config fields set from the objective's keys
    budget: float | None  # the allowed fall of log pi(y_w); None: no budget

    @property
    def kind(self) -> str:
        return self.settings["kind"]

    def weight(self, loss_type: str) -> float:
        """The weight of one of TRL's loss types in this objective (0 where it has none)."""
        return sum(w for t, w in zip(self.loss_types, self.loss_weights, strict=True) if t == loss_type)


def resolve(reg: dict) -> Resolved:
    """``reg`` (a regularizer's settings) against its registry entry, once."""
    obj = get(reg["kind"])

    def value(key):  # a key the settings leave out takes the kind's default
        return reg[key] if key in reg else obj.keys[key].default

    b = obj.budget
    return Resolved(
        settings=reg,
        objective=obj,
        loss_types=tuple(t for t, _ in obj.losses),
        loss_weights=tuple(float(value(w)) if isinstance(w, str) else float(w) for _, w in obj.losses),
        trainer_args={field_: value(key) for field_, key in obj.trainer_args.items()},
        budget=float(value(b)) if isinstance(b, str) else b,
    )


def budget(reg: dict) -> float | None:
    """The allowed fall of log pi(y_w) this objective implies: delta for bcr, 0 for dpop, infinity for
    plain DPO; None where it sets no budget (it cannot sit in a budget sweep)."""
    return resolve(reg).budget


def sweepable() -> tuple[str, ...]:
    """Kinds a budget sweep may hold (those with a budget)."""
    return tuple(k for k, o in OBJECTIVES.items() if o.budget is not None)


def needs_reference(kind: str) -> bool:
    return get(kind).reference


def loss_types(reg: dict) -> tuple[list[str], list[float]]:
    """TRL ``loss_type`` and ``loss_weights`` of a DPOTrainer objective."""
    r = resolve(reg)
    return list(r.loss_types), list(r.loss_weights)


def trainer_args(reg: dict) -> dict:
    """The TRL config fields this objective sets from its keys (e.g. ``label_smoothing``)."""
    return resolve(reg).trainer_args


def describe() -> str:
    """A Markdown table of the objectives (the table in docs/methods.md, checked by a test)."""
    rows = [
        "| kind | loss | TRL trainer | keys = default | budget | reference log-probs |",
        "|---|---|---|---|---|---|",
    ]
    for kind, o in OBJECTIVES.items():
        keys = ", ".join(f"{k}={'training' if v.default is None else v.default}" for k, v in o.keys.items())
        b = {None: "—", INF: "∞"}.get(o.budget, o.budget) if not isinstance(o.budget, str) else o.budget
        trainer = {"dpo": "DPOTrainer", "cpo": "CPOTrainer", "orpo": "ORPOTrainer", "kto": "KTOTrainer"}[
            o.trainer
        ]
        rows.append(
            f"| `{kind}` | {o.summary} | {trainer} | {keys} | {b} | {'yes' if o.reference else 'no'} |"
        )
    return "\n".join(rows)


DOC_BEGIN = "<!-- objectives table: python -m harness.training.objectives --doc docs/methods.md -->"
DOC_END = "<!-- end of objectives table -->"


def update_doc(path) -> bool:
    """Put ``describe()`` between the markers in ``path`` (after a new entry); whether anything changed."""
    from harness.core.io import replace_marked_block

    return replace_marked_block(path, DOC_BEGIN, DOC_END, describe() + "\n")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="The objectives table, from the registry.")
    parser.add_argument(
        "--doc", help="rewrite the table in this Markdown file (docs/methods.md) instead of printing it"
    )
    args = parser.parse_args()
    if args.doc:
        print(f"{args.doc}: {'table updated' if update_doc(args.doc) else 'table unchanged'}")
    else:
        print(describe())
