"""TRL's DPOTrainer with our terms (BCR/DPOP's budget, R-DPO's length margin) and likelihood diagnostics.

The seam: ``DPOTrainer._compute_loss`` (trl pinned to 1.16.0) runs one policy forward whose output
carries per-token log-probs. We pass it a tap around the model that keeps that output, let TRL compute
its own loss (the objective's TRL loss types and weights, harness/training/objectives.py), then add our term
from the same log-probs and the precomputed reference log-probs. tests/test_trainer_parity.py guards
the seam.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from trl import DPOTrainer

from harness.core import throughput
from harness.training import objectives
from harness.training.losses import bcr_penalty, dpo_sigmoid, nll_per_token, rdpo, sequence_logp


class _Tap:
    """Calls the model and keeps the first output (the policy forward of ``_compute_loss``)."""

    def __init__(self, model):
        self.model = model
        self.output = None

    def __call__(self, *args, **kwargs):
        out = self.model(*args, **kwargs)
        if self.output is None:
            self.output = out
        return out

    def __getattr__(self, name):
        return getattr(self.model, name)


COUNTERS = "harness_counters.json"  # beside each checkpoint: the log's running token and sequence counts


class HarnessDPOTrainer(DPOTrainer):
    """DPOTrainer + optional BCR term; logs chosen/rejected log-likelihood change against the reference.

    Args:
        regularizer: an objective of a kind that trains with DPOTrainer, resolved
            (harness.training.objectives.resolve) or its settings (resolved here, once); its ``term``
            (budget, length) is added here.
    """

    def __init__(
        self,
        *args,
        regularizer: objectives.Resolved | dict,
        reference_logps: dict | None = None,
        compile_layers: bool = False,
        **kwargs,
    ):
        self.objective = (
            regularizer if isinstance(regularizer, objectives.Resolved) else objectives.resolve(regularizer)
        )
        self.regularizer = self.objective.settings
        if self.objective.objective.trainer != "dpo":
            raise ValueError(
                f"kind {self.objective.kind} trains with TRL's {self.objective.objective.trainer} trainer, "
                "not DPOTrainer"
            )
        self.term = self.objective.objective.term
        # TRL's sigmoid DPO loss is logged as a loss part where it is weighted, its sft (NLL) term where
        # the objective has one
        self._dpo_part = bool(self.objective.weight("sigmoid"))
        self._nll_part = "sft" in self.objective.loss_types
        self.reference_logps = reference_logps  # {"chosen": [...], "rejected": [...]} from `reference-logps`
        super().__init__(*args, **kwargs)
        if not self.precompute_ref_logps:
            raise ValueError(
                "HarnessDPOTrainer reads reference log-probs from the batch: set precompute_ref_log_probs=True"
            )
        if compile_layers:  # training.compile
            compile_decoder_layers(self.model)
        self._peak = throughput.peak_flops(throughput.device_name())
        self._clock: tuple[float, int, int] | None = None  # (time, tokens, sequences) at the last log
        self._sequences = 0

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds ``tokens_per_second`` (non-padding tokens, all ranks) and ``mfu`` (see harness.core.throughput)
        to each training log, measured since the previous one."""
        if self.model.training and "loss" in logs:
            now, tokens, seqs = time.perf_counter(), self._total_train_tokens, self._sequences
            if self._clock is not None and now > self._clock[0] and tokens > self._clock[1]:
                rate = (tokens - self._clock[1]) / (now - self._clock[0])
                logs["tokens_per_second"] = rate
                if self._peak:
                    context = (tokens - self._clock[1]) / max(seqs - self._clock[2], 1)
                    flops = throughput.flops_per_token(self.accelerator.unwrap_model(self.model), context)
                    logs["mfu"] = flops * rate / (self._peak * self.accelerator.num_processes)
            self._clock = (now, tokens, seqs)
        super().log(logs, start_time)

    def train(self, *args, resume_from_checkpoint=None, **kwargs):
        counters = Path(resume_from_checkpoint or "/nonexistent") / COUNTERS
        if counters.exists():  # a resumed log counts its tokens on from the checkpoint's
            saved = json.loads(counters.read_text())
            self._total_train_tokens, self._sequences = saved["num_tokens"], saved["sequences"]
        self._clock = (time.perf_counter(), self._total_train_tokens, self._sequences)
        return super().train(*args, resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _save_checkpoint(self, model, trial):
        """Our counters with the checkpoint (TRL keeps its token count in memory only), written before
        transformers' trainer_state.json, the file that marks the checkpoint complete."""
        if self.is_world_process_zero():
            folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
            folder.mkdir(parents=True, exist_ok=True)
            counts = {"num_tokens": self._total_train_tokens, "sequences": self._sequences}
            (folder / COUNTERS).write_text(json.dumps(counts))
        super()._save_checkpoint(model, trial)

    def _precompute_ref_logps(self, dataset, name, batch_size):
        """Attach reference log-probs computed once per pairs file (the `reference-logps` step) instead
        of recomputing them in every training run; without them, TRL computes them as usual."""
        given = self.reference_logps
        if given is None:
            return super()._precompute_ref_logps(dataset, name, batch_size)
        if len(given["chosen"]) != len(dataset) or len(given["rejected"]) != len(dataset):
            raise ValueError(
                f"reference log-probs cover {len(given['chosen'])} pairs but the {name} dataset has {len(dataset)}"
            )
        return dataset.add_column("ref_chosen_logps", given["chosen"]).add_column(
            "ref_rejected_logps", given["rejected"]
        )

    def _compute_loss(self, model, inputs, return_outputs):
        tap = _Tap(model)
        result = super()._compute_loss(tap, inputs, return_outputs)
        loss = result[0] if return_outputs else result
        mode = "train" if self.model.training else "eval"
        if mode == "train":
            self._sequences += inputs["input_ids"].size(0) * self.accelerator.num_processes

        mask = inputs["completion_mask"][:, 1:].to(tap.output.log_probs.dtype)
        token_logps = tap.output.log_probs[:, -mask.size(1) :]
        chosen_tok, rejected_tok = token_logps.chunk(2, dim=0)
        chosen_mask, rejected_mask = mask.chunk(2, dim=0)
        l_w = sequence_logp(chosen_tok, chosen_mask, "sum")
        l_l = sequence_logp(rejected_tok, rejected_mask, "sum")
        r_w, r_l = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        gather = self.accelerator.gather_for_metrics
        self._metrics[mode]["logratio/chosen"].append(gather((l_w - r_w).detach()).mean().item())
        self._metrics[mode]["logratio/rejected"].append(gather((l_l - r_l).detach()).mean().item())
        # loss parts, unweighted, from the same log-probs (tests/test_trainer_parity.py: they sum to TRL's loss)
        with torch.no_grad():
            if self._dpo_part:
                dpo = dpo_sigmoid(l_w, l_l, r_w, r_l, self.beta)
                self._metrics[mode]["loss/dpo"].append(gather(dpo.reshape(1)).mean().item())
            if self._nll_part:
                nll = nll_per_token(chosen_tok, chosen_mask)
                self._metrics[mode]["loss/nll"].append(gather(nll.reshape(1)).mean().item())

        if self.term == "budget":
            delta = self.objective.budget
            norm = self.regularizer["normalize"]
            pol = sequence_logp(chosen_tok, chosen_mask, norm)
            ref = r_w if norm == "sum" else r_w / chosen_mask.sum(dim=1).clamp(min=1)
            penalty = bcr_penalty(pol, ref, delta)
            loss = loss + self.regularizer["lambda"] * penalty
            over = ((ref - pol) > delta).float()
            self._metrics[mode]["bcr/penalty"].append(gather(penalty.detach().reshape(1)).mean().item())
            self._metrics[mode]["bcr/over_budget"].append(gather(over).mean().item())
        elif self.term == "length":  # R-DPO replaces TRL's (zero-weighted) sigmoid loss
            len_w, len_l = chosen_mask.sum(dim=1), rejected_mask.sum(dim=1)
            loss = loss + rdpo(l_w, l_l, r_w, r_l, self.beta, self.regularizer["alpha"], len_w, len_l)
        return (loss, result[1]) if return_outputs else loss


def compile_decoder_layers(model) -> int:
    """torch.compile each decoder layer of ``model`` in place (``training.compile``): regional
    compilation, so one layer's graph is compiled at the first step and reused by the others; the
    fused LM head and the loss stay eager. Returns the number of layers."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # under peft
    layers = getattr(getattr(base, "model", None), "layers", None)
    if layers is None:
        raise ValueError(f"training.compile: {type(base).__name__} has no decoder layers at .model.layers")
    for layer in layers:
        layer.compile()
    return len(layers)
