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

from harness.io import RecordError, read_json, read_jsonl, write_json, write_jsonl
from harness.provenance import provenance
from harness.seeding import seed_everything

log = logging.getLogger(__name__)


def load_pairs(path) -> list[dict]:
    """TRL conversational pairs; every record needs non-empty prompt, chosen and rejected."""
    rows = []
    for lineno, rec in read_jsonl(path):
        for field in ("prompt", "chosen", "rejected"):
            msgs = rec.get(field)
            if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
                raise RecordError(f"{path}:{lineno}: field '{field}' must be a non-empty list of messages")
            if field != "prompt" and not str(msgs[-1].get("content", "")).strip():
                raise RecordError(f"{path}:{lineno}: field '{field}' has an empty answer")
        rows.append({k: rec[k] for k in ("prompt", "chosen", "rejected")})
    if not rows:
        raise RecordError(f"{path}: no preference pairs to train on (see the ranker's meta file)")
    return rows


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


def dpo_config(job: dict, output_dir: str, loss_type: list[str], loss_weights: list[float]):
    """TRL DPOConfig from the job's training settings. Reference log-probs are computed once, before
    training (the reference is the initial policy), and read from the batch by the BCR term."""
    import torch
    from trl import DPOConfig

    t, seed = job["training"], job["seed"]
    return DPOConfig(
        output_dir=output_dir,
        seed=seed,
        data_seed=seed,
        beta=t["beta"],
        learning_rate=t["learning_rate"],
        num_train_epochs=t["num_train_epochs"],
        per_device_train_batch_size=t["per_device_train_batch_size"],
        per_device_eval_batch_size=t["per_device_train_batch_size"],
        gradient_accumulation_steps=t["gradient_accumulation_steps"],
        lr_scheduler_type=t["lr_scheduler_type"],
        warmup_steps=float(t["warmup_ratio"]),  # transformers 5: a float below 1 is a ratio
        max_length=t["max_length"],
        bf16=t["bf16"],
        gradient_checkpointing=t["gradient_checkpointing"],
        logging_steps=t["logging_steps"],
        loss_type=loss_type,
        loss_weights=loss_weights,
        precompute_ref_log_probs=True,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
    )


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def reference_logps(job: dict, pairs_path: str, output: str) -> None:
    """Step `reference-logps`: the reference model's summed log-probs of every chosen and rejected
    answer, computed once per pairs file with TRL's own precompute path; every regularizer and seed
    trained on these pairs reads them instead of recomputing them."""
    import tempfile

    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from harness.backends.hf import load_pretrained, load_tokenizer, torch_dtype
    from harness.trainer import HarnessDPOTrainer

    started = time.time()
    pairs = Dataset.from_list(load_pairs(pairs_path))
    tokenizer = load_tokenizer(job["model"])
    model = load_pretrained(AutoModelForCausalLM, job["model"], dtype=torch_dtype(job["model"].get("dtype")))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = HarnessDPOTrainer(
            model=model,
            args=dpo_config(job, tmp, ["sigmoid"], [1.0]),
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
                    "pairs_sha256": _sha256(pairs_path),
                    "chosen": [float(x) for x in data["ref_chosen_logps"]],
                    "rejected": [float(x) for x in data["ref_rejected_logps"]],
                    "provenance": provenance(job, seed=job["seed"], started=started),
                },
            )


def load_reference(path, pairs_path) -> dict:
    ref = read_json(path)
    if ref["pairs_sha256"] != _sha256(pairs_path):
        raise RecordError(f"{path}: computed for another version of {pairs_path}; rerun reference-logps")
    return {"chosen": ref["chosen"], "rejected": ref["rejected"]}


def run(
    job: dict, pairs_path: str, output: str, log_path: str, summary_path: str, reference: str | None = None
) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback

    from harness.backends.hf import load_pretrained, load_tokenizer, torch_dtype
    from harness.trainer import HarnessDPOTrainer, loss_types

    started = time.time()
    seed, reg = job["seed"], job["regularizer"]
    seed_everything(seed)
    rows = load_pairs(pairs_path)
    pairs = Dataset.from_list(rows)
    tokenizer = load_tokenizer(job["model"])
    over_length = count_over_length(rows, tokenizer, job["training"]["max_length"])
    if over_length:
        log.warning(
            "%d of %d pairs exceed max_length=%d tokens and are truncated",
            over_length,
            len(rows),
            job["training"]["max_length"],
        )
    model = load_pretrained(AutoModelForCausalLM, job["model"], dtype=torch_dtype(job["model"].get("dtype")))
    steps: list[dict] = []

    class JsonlLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                steps.append({**job["cell"], "step": state.global_step, "epoch": state.epoch, **logs})

    # Under `accelerate launch` every rank runs this function: all ranks save into one partial
    # directory (ZeRO-3 gathers weights collectively); only the main rank writes files and renames.
    tmp = Path(f"{output}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    trainer = None
    try:
        trainer = HarnessDPOTrainer(
            model=model,
            args=dpo_config(job, str(tmp / "trainer"), *loss_types(reg)),
            train_dataset=pairs,
            eval_dataset=pairs,
            processing_class=tokenizer,
            callbacks=[JsonlLog()],
            regularizer=reg,
            reference_logps=load_reference(reference, pairs_path) if reference else None,
        )
        trainer.train()
        final = trainer.evaluate()  # the trained policy on every training pair, against the reference
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        summary = {
            "cell": job["cell"],
            "pairs": len(pairs),
            "pairs_truncated": over_length,  # longer than max_length: TRL cuts them (truncation_mode)
            "steps": trainer.state.global_step,
            "final_chosen_logratio": final.get("eval_logratio/chosen"),
            "final_rejected_logratio": final.get("eval_logratio/rejected"),
            "final_reward_accuracy": final.get("eval_rewards/accuracies"),
            "final_eval_loss": final.get("eval_loss"),
            "regularizer": reg,
            "provenance": provenance(job, seed=seed, started=started),
        }
        trainer.accelerator.wait_for_everyone()
        if trainer.is_world_process_zero():
            log.info("final: %s", json.dumps({k: v for k, v in summary.items() if k.startswith("final")}))
            write_jsonl(log_path, steps)
            write_json(summary_path, summary)
            if Path(output).exists():
                shutil.rmtree(output)
            tmp.rename(output)
    finally:
        if tmp.exists() and (trainer is None or trainer.is_world_process_zero()):
            shutil.rmtree(tmp)
