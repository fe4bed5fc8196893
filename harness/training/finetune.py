"""Step `finetune`: train a model of ``models`` before the pipeline uses it.

- ``kind: sft``: supervised fine-tuning of a policy on demonstrations ``{id, prompt, completion}``
  (TRL SFTTrainer; the loss counts the completion tokens only). The demo's base policy is a tiny
  random-init model fine-tuned on the world's noisy demonstrations.
- ``kind: reward``: a Bradley-Terry reward model on labelled preferences ``{id, prompt, chosen,
  rejected}`` (TRL RewardTrainer: -log sigmoid(r_chosen - r_rejected)). The demo's reward model learns
  from some task groups only and then ranks completions of all of them.

The trained model and its tokenizer go to ``--output`` (whole or not at all), loadable exactly like a
hub model; ``--summary`` has the per-step loss, the final training accuracy (reward) and provenance.
"""

from __future__ import annotations

import logging
import tempfile
import time

from harness.core.io import atomic_dir, write_json
from harness.core.provenance import provenance
from harness.core.seeding import seed_everything

log = logging.getLogger(__name__)


def _common_args(ft: dict, output_dir: str) -> dict:
    return dict(
        output_dir=output_dir,
        seed=ft["seed"],
        data_seed=ft["seed"],
        num_train_epochs=ft["epochs"],
        per_device_train_batch_size=ft["batch_size"],
        learning_rate=ft["learning_rate"],
        lr_scheduler_type=ft["lr_scheduler_type"],
        warmup_steps=float(ft["warmup_ratio"]),  # transformers 5: a float below 1 is a ratio of the steps
        max_length=ft["max_length"],
        logging_steps=ft["logging_steps"],
        save_strategy="no",
        report_to=[],
        bf16=False,
    )


def _trainer(job: dict, data_path: str, workdir: str):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from harness.backends.hf import load_pretrained, load_tokenizer, torch_dtype

    ft, ref = job["finetune"], job["model"]
    tokenizer = load_tokenizer(ref)
    if ft["kind"] == "sft":
        from trl import SFTConfig, SFTTrainer

        from harness.core.records import load_demonstrations

        rows = load_demonstrations(data_path)
        data = Dataset.from_list(
            [
                {
                    "prompt": [{"role": "user", "content": r["prompt"]}],
                    "completion": [{"role": "assistant", "content": r["completion"]}],
                }
                for r in rows
            ]
        )
        model = load_pretrained(
            AutoModelForCausalLM, ref, role="causal LM", dtype=torch_dtype(ref.get("dtype"))
        )
        args = SFTConfig(**_common_args(ft, workdir), completion_only_loss=True)
        return SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer), len(rows)
    from trl import RewardConfig, RewardTrainer

    from harness.core.records import load_preferences

    rows = load_preferences(data_path)
    data = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["prompt"]}],
                "chosen": [{"role": "assistant", "content": r["chosen"]}],
                "rejected": [{"role": "assistant", "content": r["rejected"]}],
            }
            for r in rows
        ]
    )
    model = load_pretrained(AutoModelForSequenceClassification, ref, num_labels=1)
    args = RewardConfig(**_common_args(ft, workdir))
    return RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer), len(rows)


def run(job: dict, data_path: str, output: str, summary: str) -> None:
    started = time.time()
    ft = job["finetune"]
    seed_everything(ft["seed"])
    with atomic_dir(output) as tmp, tempfile.TemporaryDirectory() as work:
        trainer, n = _trainer(job, data_path, work)
        trainer.train()
        trainer.save_model(str(tmp))
        trainer.processing_class.save_pretrained(str(tmp))
    history = trainer.state.log_history
    steps = [
        {k: e[k] for k in ("step", "loss", "accuracy", "margin") if k in e} for e in history if "loss" in e
    ]
    final = steps[-1] if steps else {}
    result = {
        "name": job["name"],
        "kind": ft["kind"],
        "examples": n,
        "steps": trainer.state.global_step,
        "final_loss": final.get("loss"),
        "final_train_accuracy": final.get("accuracy"),
        "log": steps,
        "provenance": provenance(job, started=started),
    }
    write_json(summary, result)
    log.info("finetuned %s (%s) on %d examples in %d steps", job["name"], ft["kind"], n, result["steps"])
