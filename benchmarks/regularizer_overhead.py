"""Per-step cost of the NLL and BCR regularizers against plain DPO, and what precomputed reference
log-probs save, side by side in one run on a ~25M-parameter random-init Llama (on CPU,
or on the GPU where there is one).

Each variant trains the same pairs for the same number of steps from the same initial weights; a
variant's time is its median step time after warm-up, the lowest over ``--rounds`` rounds that run
dpo, nll and bcr in turn, each round starting with the next one (so that drift in the machine's
speed, and being first, fall on all three alike). The last
line is the larger of the two regularizer overheads (target: at most 3%).

    .venv/bin/python benchmarks/regularizer_overhead.py [--steps 12] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import DPOTrainer

    from harness.backends.hf import load_tokenizer
    from harness.core import throughput
    from harness.core.records import load_prompts
    from harness.demo import tiny
    from harness.training.args import dpo_config
    from harness.training.objectives import loss_types
    from harness.training.trainer import HarnessDPOTrainer
    from harness.workflow.config import section_defaults

    work = Path(tempfile.mkdtemp())
    spec = {
        "kind": "causal_lm",
        "hidden_size": 512,
        "num_layers": 6,
        "num_heads": 8,
        "max_position_embeddings": 512,
        "seed": 0,
    }
    path = tiny.build_one(work / "tiny", "policy", spec, [str(ROOT / "data/demo/prompts.jsonl")])
    ref = {"source": str(path), "revision": None, "dtype": "float32"}
    tok = load_tokenizer(ref)
    prompts = load_prompts(ROOT / "data/demo/prompts.jsonl")
    rows = [
        {
            "prompt": [{"role": "user", "content": p.prompt}],
            "chosen": [{"role": "assistant", "content": (p.prompt + " ") * 6}],
            "rejected": [{"role": "assistant", "content": (p.prompt[::-1] + " ") * 5}],
        }
        for p in prompts
    ]
    data = Dataset.from_list(rows * 2)
    n_params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(ref["source"]).parameters())

    class Clock(TrainerCallback):
        def __init__(self):
            self.times, self.start = [], None

        def on_step_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter() - self.start)

    def step_time(regularizer: dict | None, precompute: bool = True) -> float:
        job = {
            "seed": 0,
            "training": {
                **section_defaults("training"),
                "beta": 0.1,
                "learning_rate": 1e-5,
                "per_device_train_batch_size": args.batch,
                "effective_batch_size": args.batch,
                "lr_scheduler_type": "constant",
                "warmup_ratio": 0.0,
                "max_length": 256,
            },
        }
        kind = regularizer or {"kind": "none"}
        cfg = dpo_config(job, str(work / "out"), *loss_types(kind))
        cfg.max_steps, cfg.precompute_ref_log_probs, cfg.disable_tqdm = args.steps, precompute, True
        clock = Clock()
        model = AutoModelForCausalLM.from_pretrained(ref["source"])
        kwargs = dict(model=model, args=cfg, train_dataset=data, processing_class=tok, callbacks=[clock])
        trainer = HarnessDPOTrainer(regularizer=kind, **kwargs) if regularizer else DPOTrainer(**kwargs)
        trainer.train()
        return statistics.median(clock.times[2:])  # after warm-up

    variants = {
        "dpo": {"kind": "none"},
        "nll": {"kind": "nll", "alpha": 0.2},
        "bcr": {"kind": "bcr", "lambda": 1.0, "delta": 0.5, "normalize": "sum"},
    }
    rounds = []
    for r in range(args.rounds):  # each round starts with another variant, so none always runs first
        names = list(variants)[r % 3 :] + list(variants)[: r % 3]
        rounds.append({name: step_time(variants[name]) for name in names})
    t_dpo, t_nll, t_bcr = (min(r[name] for r in rounds) for name in variants)
    t_trl_ref = step_time(None, precompute=False)  # TRL's DPO with a reference forward every step
    t_trl_pre = step_time(None, precompute=True)
    print(
        f"model: {n_params / 1e6:.1f}M parameters, batch {args.batch} pairs, {args.steps} steps, "
        f"best of {args.rounds} rounds, {throughput.device_name() or 'CPU'}"
    )
    print(f"dpo {t_dpo * 1e3:.0f} ms/step | nll {t_nll * 1e3:.0f} ms/step | bcr {t_bcr * 1e3:.0f} ms/step")
    print(
        f"reference forward every step {t_trl_ref * 1e3:.0f} ms/step vs precomputed {t_trl_pre * 1e3:.0f} "
        f"ms/step: precomputing saves {1 - t_trl_pre / t_trl_ref:.0%} ({t_trl_ref / t_trl_pre:.2f}x)"
    )
    over_nll, over_bcr = t_nll / t_dpo - 1, t_bcr / t_dpo - 1
    print(f"overhead vs dpo: nll {over_nll:+.1%}, bcr {over_bcr:+.1%}")
    print(f"max regularizer overhead: {max(over_nll, over_bcr):+.1%}")


if __name__ == "__main__":
    main()
