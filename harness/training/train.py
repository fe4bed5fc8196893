"""Step `train`: DPO on one pairs file with one regularizer and seed (TRL DPOTrainer).

Writes the trained policy and tokenizer to ``--output`` (a directory that appears whole or not at
all), a per-step JSONL log of loss parts and chosen/rejected log-likelihood change against the
reference, and a summary with the final changes measured over the whole training set.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from harness.core.io import RecordError, file_sha256, read_json, write_json, write_jsonl
from harness.core.provenance import provenance
from harness.core.records import load_pairs
from harness.core.seeding import seed_everything
from harness.training.args import dpo_config, processes, trl_config, weights_dtype
from harness.training.batch import describe
from harness.training.resume import resume_point

log = logging.getLogger(__name__)


def count_over_length(rows: list[dict], tokenizer, max_length: int) -> int:
    """Pairs whose prompt + longer answer exceeds ``max_length`` tokens; TRL truncates them, we count them."""
    over = 0
    for r in rows:
        texts = [
            tokenizer.apply_chat_template(r["prompt"] + r[side], tokenize=False)
            for side in ("chosen", "rejected")
        ]
        lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
        over += max(lengths) > max_length
    return over


def _as_saved(trainer, job: dict) -> None:
    """Trained float32 weights (``weights_dtype``) back in the model's own dtype before saving, so a
    checkpoint is the size and dtype of the model it came from (bf16 for a hub model on a GPU)."""
    from harness.backends.hf import torch_dtype

    dtype = torch_dtype(job["model"].get("dtype"))
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not job["training"]["deepspeed"] and next(model.parameters()).dtype != dtype:
        model.to(dtype)


def reference_logps(job: dict, pairs_path: str, output: str) -> None:
    """Step `reference-logps`: the reference model's summed log-probs of every chosen and rejected
    answer, computed once per pairs file with TRL's own precompute path; every regularizer and seed
    trained on these pairs reads them instead of recomputing them."""
    import tempfile

    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from harness.backends.hf import load_pretrained, load_tokenizer
    from harness.training.trainer import HarnessDPOTrainer

    started = time.time()
    pairs = Dataset.from_list(load_pairs(pairs_path))
    tokenizer = load_tokenizer(job["model"])
    # the same weights as the policy starts from (weights_dtype), so that at step 0 they agree
    model = load_pretrained(AutoModelForCausalLM, job["model"], dtype=weights_dtype(job))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = HarnessDPOTrainer(
            model=model,
            args=dpo_config(job, tmp, ["sigmoid"], [1.0], accumulate=False),
            train_dataset=pairs,
            processing_class=tokenizer,
            regularizer={"kind": "none"},
        )
        data = trainer.train_dataset
        if trainer.is_world_process_zero():
            write_json(
                output,
                {
                    "pairs": len(data),
                    "pairs_sha256": file_sha256(pairs_path),
                    "chosen": [float(x) for x in data["ref_chosen_logps"]],
                    "rejected": [float(x) for x in data["ref_rejected_logps"]],
                    "provenance": provenance(job, seed=job["seed"], started=started),
                },
            )


def load_reference(path, pairs_path) -> dict:
    """Reference log-probs from ``reference-logps``: one finite number per pair and side, computed
    for this very pairs file."""
    import math

    ref = read_json(path)
    if not isinstance(ref, dict) or "pairs_sha256" not in ref:
        raise RecordError(
            f"{path}: not a reference log-probs file from `reference-logps` (no 'pairs_sha256')"
        )
    if ref["pairs_sha256"] != file_sha256(pairs_path):
        raise RecordError(f"{path}: computed for another version of {pairs_path}; rerun reference-logps")
    for side in ("chosen", "rejected"):
        values = ref.get(side)
        if not isinstance(values, list) or len(values) != ref.get("pairs"):
            raise RecordError(f"{path}: field '{side}' must hold one log-prob per pair ({ref.get('pairs')})")
        bad = next(
            (i for i, v in enumerate(values) if not isinstance(v, int | float) or not math.isfinite(v)), None
        )
        if bad is not None:
            raise RecordError(f"{path}: field '{side}' [{bad}] is {values[bad]!r}, not a finite log-prob")
    return {"chosen": ref["chosen"], "rejected": ref["rejected"]}


def _fingerprint(job: dict, pairs_path: str, reference: str | None) -> str:
    """What a checkpoint was trained from: a partial run resumes only under the same job and inputs."""
    import hashlib

    parts = [
        json.dumps(job, sort_keys=True),
        file_sha256(pairs_path),
        file_sha256(reference) if reference else "",
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def lora_config(lora: dict):
    """peft LoraConfig from the job's ``training.lora``, or None when r = 0 (all weights train)."""
    if not lora.get("r"):
        return None
    try:
        from peft import LoraConfig
    except ImportError:
        raise ImportError(
            "training.lora needs peft: pip install peft (it is in the harness dependencies)"
        ) from None
    return LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=lora["target_modules"],
        task_type="CAUSAL_LM",
    )


def run(
    job: dict, pairs_path: str, output: str, log_path: str, summary_path: str, reference: str | None = None
) -> None:
    import os

    import torch
    from accelerate import PartialState
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from harness.backends.hf import load_pretrained, load_tokenizer
    from harness.training import objectives
    from harness.training.trainer import HarnessDPOTrainer

    started = time.time()
    seed, reg, t = job["seed"], job["regularizer"], job["training"]
    resolved = objectives.resolve(reg)  # once: the trainer holds it
    objective = resolved.objective
    if reference and not objective.reference:
        log.info("kind %s is reference-free: %s is not read", reg["kind"], reference)
    log.info("batch: %s", describe(t["effective_batch_size"], t["per_device_train_batch_size"], processes()))
    peft_config = lora_config(t["lora"])
    if peft_config is not None and t["deepspeed"]:
        raise ValueError(
            "training.lora with training.deepspeed is not supported: merging adapters needs gathered weights"
        )
    seed_everything(seed)
    rows = load_pairs(pairs_path)
    pairs = Dataset.from_list(rows)
    tokenizer = load_tokenizer(job["model"])
    over_length = count_over_length(rows, tokenizer, t["max_length"])
    if over_length:
        log.warning(
            "%d of %d pairs exceed max_length=%d tokens and are truncated",
            over_length,
            len(rows),
            t["max_length"],
        )
    model = load_pretrained(AutoModelForCausalLM, job["model"], dtype=weights_dtype(job))

    # Under `accelerate launch` every rank runs this function: all ranks save into one partial
    # directory (ZeRO-3 gathers weights collectively); only the main rank writes files and renames.
    # The partial directory survives a kill, so that a rerun resumes from its last checkpoint.
    tmp = Path(f"{output}.partial")
    # the main rank cleans up; the others then find it clean. On CPU, accelerate's state is distributed
    # (gloo) only when asked for with cpu=True: without it every rank ran this at once, and one could
    # read the fingerprint while another rewrote it, and delete the checkpoint it was resuming from
    state = PartialState(cpu=not torch.cuda.is_available())
    with state.main_process_first():
        resume = resume_point(tmp, _fingerprint(job, pairs_path, reference))
    if resume:
        log.info("resuming from %s", resume)
    if "tensorboard" in t["report_to"]:
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(tmp / "tensorboard")  # kept beside the weights
    if objective.trainer == "dpo":
        trainer = HarnessDPOTrainer(
            model=model,
            args=dpo_config(
                job,
                str(tmp / "trainer"),
                list(resolved.loss_types),
                list(resolved.loss_weights),
                resolved=resolved,
            ),
            train_dataset=pairs,
            eval_dataset=pairs,
            processing_class=tokenizer,
            peft_config=peft_config,
            regularizer=resolved,
            reference_logps=load_reference(reference, pairs_path) if reference else None,
            compile_layers=t["compile"],
        )
    else:
        trainer = _trl_trainer(objective.trainer)(
            model=model,
            args=trl_config(job, str(tmp / "trainer"), resolved),
            train_dataset=pairs,
            eval_dataset=pairs,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
    # reference-free trainers log the policy's own log-probs: their change is measured from here
    initial = trainer.evaluate() if objective.trainer != "dpo" and not resume else None
    trainer.train(resume_from_checkpoint=resume)
    final = trainer.evaluate()  # the trained policy on every training pair, against the reference
    change = _logp_change(objective, final, initial, tmp / "initial_eval.json")
    if peft_config is None:
        _as_saved(trainer, job)
        trainer.save_model(str(tmp))
    elif trainer.is_world_process_zero():  # adapters merged, so downstream steps load a plain model
        trainer.accelerator.unwrap_model(trainer.model).merge_and_unload().save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    steps = [{**job["cell"], **e} for e in trainer.state.log_history if "loss" in e]  # restored on resume
    summary = {
        "cell": job["cell"],
        "pairs": len(pairs),
        "pairs_truncated": over_length,  # longer than max_length: TRL cuts them (truncation_mode)
        "steps": trainer.state.global_step,
        # the batch this run trained with: per device x accumulation x processes = effective
        "effective_batch_size": trainer.args.per_device_train_batch_size
        * trainer.args.gradient_accumulation_steps
        * trainer.args.world_size,
        "batch": {
            "per_device": trainer.args.per_device_train_batch_size,
            "accumulation": trainer.args.gradient_accumulation_steps,
            "processes": trainer.args.world_size,
        },
        "resumed_from": resume and Path(resume).name,
        "final_chosen_logratio": change["chosen"],
        "final_rejected_logratio": change["rejected"],
        "logratio_unit": change["unit"],  # sum: summed log-likelihood; token: its per-token mean
        "final_reward_accuracy": final.get("eval_rewards/accuracies"),
        # budget objectives: the fraction of training pairs whose chosen log-likelihood ends more than
        # delta below the reference (where the penalty acts)
        "final_over_budget": final.get("eval_bcr/over_budget"),
        "final_eval_loss": final.get("eval_loss"),
        "tokens_per_second": _mean(steps, "tokens_per_second"),
        "mfu": _mean(steps, "mfu"),
        "regularizer": reg,
        "provenance": provenance(job, seed=seed, started=started),
    }
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        log.info("final: %s", json.dumps({k: v for k, v in summary.items() if k.startswith("final")}))
        for leftover in ("trainer", "fingerprint", "initial_eval.json"):
            path = tmp / leftover
            if path.exists():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        # the checkpoint first, then its log, the summary last: a kill between them leaves no summary
        # beside an older checkpoint (the workflow reruns the job: its outputs are incomplete)
        if Path(output).exists():
            shutil.rmtree(output)
        tmp.rename(output)
        write_jsonl(log_path, steps)
        write_json(summary_path, summary)


def _trl_trainer(name: str):
    if name == "cpo":
        from trl.experimental.cpo import CPOTrainer

        return CPOTrainer
    if name == "kto":
        from trl import KTOTrainer

        return KTOTrainer
    from trl.experimental.orpo import ORPOTrainer

    return ORPOTrainer


def _logp_change(objective, final: dict, initial: dict | None, stamp: Path) -> dict:
    """Final change of the chosen and rejected log-likelihoods over the training pairs. DPOTrainer
    measures it against the reference log-probs; a reference-free trainer's own log-probs
    (``eval_logps/*``, per-token means where its loss averages) are compared with the evaluation
    before training, kept in the partial directory so that a resumed run compares with the same one."""
    if objective.trainer == "dpo":
        return {
            "chosen": final.get("eval_logratio/chosen"),
            "rejected": final.get("eval_logratio/rejected"),
            "unit": "sum",
        }
    if initial is not None:
        write_json(stamp, initial)
    elif stamp.exists():
        initial = read_json(stamp)
    out = {"unit": objective.own_logps}
    for side in ("chosen", "rejected"):
        key = f"eval_logps/{side}"
        out[side] = final[key] - initial[key] if initial and key in final and key in initial else None
    return out


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None
