"""TRL's training arguments from a job config: the DPOConfig (or another trainer's config) of an
objective, the weights' dtype and the gradient accumulation that reaches the effective batch with the
processes this run has."""

from __future__ import annotations

from harness.training.batch import accumulation


def _training_args(job: dict, output_dir: str, accumulate: bool = True) -> dict:
    """The TrainingArguments every trainer shares, from the job's training settings; an objective's
    own ``beta`` and ``learning_rate`` (harness/training/objectives.py) replace the training section's."""
    import torch

    t, seed, reg = job["training"], job["seed"], job.get("regularizer", {})
    cell = job.get("cell", {})
    return dict(
        output_dir=output_dir,
        seed=seed,
        data_seed=seed,
        beta=reg.get("beta", t["beta"]),
        learning_rate=reg.get("learning_rate", t["learning_rate"]),
        num_train_epochs=t["num_train_epochs"],
        per_device_train_batch_size=t["per_device_train_batch_size"],
        per_device_eval_batch_size=t["per_device_train_batch_size"],
        gradient_accumulation_steps=accumulation_steps(t) if accumulate else 1,
        lr_scheduler_type=t["lr_scheduler_type"],
        warmup_steps=float(t["warmup_ratio"]),  # transformers 5: a float below 1 is a ratio
        max_length=t["max_length"],
        bf16=t["bf16"],
        gradient_checkpointing=t["gradient_checkpointing"],
        logging_steps=t["logging_steps"],
        # a resumable checkpoint every save_steps (weights, optimizer, scheduler, RNG, log history)
        save_strategy="steps" if t["save_steps"] else "no",
        save_steps=t["save_steps"] or 500,
        save_total_limit=1,
        eval_strategy="no",
        report_to=t["report_to"] or "none",
        run_name="/".join(str(cell[k]) for k in ("policy", "ranker", "regularizer", "seed"))
        if cell
        else None,
        deepspeed=t["deepspeed"],
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
    )


def dpo_config(
    job: dict,
    output_dir: str,
    loss_type: list[str],
    loss_weights: list[float],
    accumulate: bool = True,
    resolved=None,
):
    """TRL DPOConfig from the job's training settings. Reference log-probs are computed once, before
    training (the reference is the initial policy), and read from the batch by our terms.
    ``accumulate=False`` (the reference pass: no optimizer steps) skips the effective-batch arithmetic.
    ``resolved``: the job's objective as the trainer holds it (resolved from the job where not given)."""
    from trl import DPOConfig

    from harness.training import objectives

    reg = job.get("regularizer")
    if resolved is None and reg:
        resolved = objectives.resolve(reg)
    extra = resolved.trainer_args if resolved is not None else {}
    return DPOConfig(
        **_training_args(job, output_dir, accumulate),
        loss_type=loss_type,
        loss_weights=loss_weights,
        precompute_ref_log_probs=True,
        use_liger_kernel=job["training"]["liger_kernel"],
        **extra,
    )


def trl_config(job: dict, output_dir: str, resolved=None):
    """The TRL config of an objective trained by a TRL trainer other than DPOTrainer, without the DAG's reference log-probs
    (trl.experimental CPO or ORPO; KTO, which computes its own). ``resolved`` as for dpo_config."""
    from harness.training import objectives

    r = resolved if resolved is not None else objectives.resolve(job["regularizer"])
    args = _training_args(job, output_dir)
    if r.objective.trainer == "cpo":
        from trl.experimental.cpo import CPOConfig

        return CPOConfig(**args, loss_type=r.loss_types[0], **r.trainer_args)
    if r.objective.trainer == "orpo":
        from trl.experimental.orpo import ORPOConfig

        return ORPOConfig(**{**args, **r.trainer_args})
    if r.objective.trainer == "kto":
        from trl import KTOConfig

        return KTOConfig(**args, loss_type=r.loss_types[0], precompute_ref_log_probs=True, **r.trainer_args)
    raise ValueError(f"kind {r.kind} trains with DPOTrainer")


def processes() -> int:
    """Data-parallel processes of this run: accelerate launch's WORLD_SIZE, else 1."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))


def weights_dtype(job: dict):
    """The dtype the trained weights are held in. Full fine-tuning without DeepSpeed keeps float32
    weights and trains in bf16 autocast (``training.bf16``): weights held in bf16 barely move at the
    field's learning rates (at 5e-7, 0.9% of a 1B model's weights changed in a step on an H200,
    against 93.7% with float32 weights; benchmarks/results/gpu_dpo_h200.txt). DeepSpeed keeps its own
    float32 master copy and LoRA trains float32 adapters, so there the model's own dtype stays."""
    import torch

    from harness.backends.hf import torch_dtype

    t = job["training"]
    if t["deepspeed"] or t["lora"].get("r"):  # r = 0: all weights train
        return torch_dtype(job["model"].get("dtype"))
    return torch.float32


def accumulation_steps(t: dict) -> int:
    """Accumulation that reaches ``training.effective_batch_size`` with this run's processes."""
    return accumulation(t["effective_batch_size"], t["per_device_train_batch_size"], processes())
