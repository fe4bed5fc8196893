"""DPO + BCR on a ~1B-parameter random-init Llama in bf16 at sequence length 1024 on one GPU: tokens
per second and model FLOPs utilisation, as the training step logs them (harness.throughput).

The model has Llama-3-8B's layout at a smaller width (GQA with 8 key-value heads, SwiGLU); the pairs
are demo text repeated to fill the length; reference log-probs are precomputed as in the workflow.

    python benchmarks/gpu_dpo.py            # on a GPU: ~1.0B parameters, 30 steps
    python benchmarks/gpu_dpo.py --compare  # also plain DPO and NLL from the same weights, side by side
    python benchmarks/gpu_dpo.py --smoke    # a tiny shape on CPU, to check the script itself

With --compare, the three variants run in turn for --rounds rounds, each round starting with the next
one; each variant's figure is its best round's median, and the last line is the larger regularizer
overhead in step time against plain DPO (target: at most 3%).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent

SHAPES = {
    "1b": dict(hidden=2048, layers=20, heads=32, kv_heads=8, ffn=5632, vocab=32000, seq=1024, batch=4),
    "smoke": dict(hidden=64, layers=2, heads=4, kv_heads=2, ffn=256, vocab=640, seq=128, batch=2),
}


def pairs(tokenizer, n: int, seq: int) -> list[dict]:
    """``n`` pairs whose prompt takes a quarter of ``seq`` tokens and each answer the rest."""
    from harness.records import load_prompts

    words = " ".join(p.prompt for p in load_prompts(ROOT / "data/demo/prompts.jsonl")).split()

    def text(tokens: int, offset: int) -> str:
        out, i = [], offset
        while len(tokenizer(" ".join(out), add_special_tokens=False)["input_ids"]) < tokens:
            out.extend(words[(i + k) % len(words)] for k in range(32))
            i += 32
        ids = tokenizer(" ".join(out), add_special_tokens=False)["input_ids"][:tokens]
        return tokenizer.decode(ids)

    prompt_len, answer_len = seq // 4, seq - seq // 4 - 8  # 8 tokens of chat markup
    return [
        {
            "prompt": [{"role": "user", "content": text(prompt_len, 7 * i)}],
            "chosen": [{"role": "assistant", "content": text(answer_len, 11 * i + 1)}],
            "rejected": [{"role": "assistant", "content": text(answer_len, 13 * i + 2)}],
        }
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny shape on CPU")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--compare", action="store_true", help="dpo, nll and bcr side by side")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the comparison")
    args = ap.parse_args()

    import torch
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness import throughput, tiny
    from harness.config import section_defaults
    from harness.train import dpo_config
    from harness.trainer import HarnessDPOTrainer, loss_types

    gpu = torch.cuda.is_available()
    if not gpu and not args.smoke:
        raise SystemExit("no GPU: run with --smoke to check the script on CPU")
    s = SHAPES["smoke" if args.smoke else "1b"]
    steps = args.steps or (4 if args.smoke else 30)
    tokenizer = tiny.train_tokenizer(tiny.corpus_texts([str(ROOT / "data/demo/prompts.jsonl")]), 640)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=s["vocab"],
        hidden_size=s["hidden"],
        intermediate_size=s["ffn"],
        num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"],
        num_key_value_heads=s["kv_heads"],
        max_position_embeddings=s["seq"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    initial = LlamaForCausalLM(config).state_dict()
    n_params = sum(v.numel() for v in initial.values())
    data = Dataset.from_list(pairs(tokenizer, s["batch"] * (steps + 2), s["seq"]))
    job = {
        "seed": 0,
        "training": {
            **section_defaults("training"),
            "beta": 0.01,
            "learning_rate": 5e-7,
            "per_device_train_batch_size": s["batch"],
            "effective_batch_size": s["batch"],
            "lr_scheduler_type": "constant",
            "warmup_ratio": 0.0,
            "max_length": s["seq"],
            # the GPU run's settings in the CPU smoke run too, so CI exercises the same code path
            "bf16": True,
            "gradient_checkpointing": True,
        },
    }
    variants = {
        "bcr": {"kind": "bcr", "lambda": 1.0, "delta": 0.5, "normalize": "sum"},
        "dpo": {"kind": "none"},
        "nll": {"kind": "nll", "alpha": 1.0},
    }

    def run(name: str) -> tuple[float, float | None, int, float]:
        """Median tokens/s and MFU, steps counted, and seconds per step of one variant's steps after warm-up.

        Each run builds its own model from ``initial``: in an H100 run that handed one model object to
        successive Trainers, every run after the first took about 5x longer (48 s for 30 steps, not 10 s).
        """
        model = LlamaForCausalLM(config)
        model.load_state_dict(initial)
        reg = variants[name]
        with tempfile.TemporaryDirectory() as work:
            cfg = dpo_config(job, work, *loss_types(reg))
            cfg.max_steps, cfg.disable_tqdm = steps, True
            trainer = HarnessDPOTrainer(
                model=model, args=cfg, train_dataset=data, processing_class=tokenizer, regularizer=reg
            )
            trainer.train()
        logs = [e for e in trainer.state.log_history if "tokens_per_second" in e][2:]  # after warm-up
        del trainer, model
        gc.collect()
        if gpu:
            torch.cuda.empty_cache()
        tps = statistics.median(e["tokens_per_second"] for e in logs)
        mfu = [e["mfu"] for e in logs if e.get("mfu") is not None]
        step_tokens = s["batch"] * 2 * s["seq"]
        return tps, (statistics.median(mfu) if mfu else None), len(logs), step_tokens / tps

    if gpu:
        torch.cuda.reset_peak_memory_stats()
    names = list(variants) if args.compare else ["bcr"]
    rounds = []
    for r in range(args.rounds if args.compare else 1):
        order = names[r % len(names) :] + names[: r % len(names)]
        rounds.append({name: run(name) for name in order})
    best = {name: min((rd[name] for rd in rounds), key=lambda x: x[3]) for name in names}
    device = throughput.device_name() or "CPU"
    peak = throughput.peak_flops(throughput.device_name())
    print(
        f"model: {n_params / 1e6:,.1f}M parameters, bf16, sequence length {s['seq']}, "
        f"batch {s['batch']} pairs, {steps} steps, {device}"
    )
    memory = f" | peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if gpu else ""
    for name in names:
        tps, mfu, n, _ = best[name]
        mfu_text = (
            f"MFU {mfu:.1%} of {peak / 1e12:.0f} TFLOP/s dense bf16"
            if mfu is not None
            else ("MFU n/a: no known peak for this device (set HARNESS_PEAK_TFLOPS)")
        )
        print(f"{name}: tokens/s {tps:,.0f} (median of {n} steps after warm-up) | {mfu_text}{memory}")
    if args.compare:
        over = {name: best[name][3] / best["dpo"][3] - 1 for name in ("nll", "bcr")}
        print(f"step time overhead vs dpo: nll {over['nll']:+.1%}, bcr {over['bcr']:+.1%}")
        print(f"max regularizer overhead: {max(over.values()):+.1%}")


if __name__ == "__main__":
    main()
