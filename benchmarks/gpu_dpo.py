"""DPO + BCR on a ~1B-parameter random-init Llama in bf16 at sequence length 1024 on one GPU: tokens
per second and model FLOPs utilisation, as the training step logs them (harness.throughput).

The model has Llama-3-8B's layout at a smaller width (GQA with 8 key-value heads, SwiGLU); the pairs
are demo text repeated to fill the length; reference log-probs are precomputed as in the workflow.

    python benchmarks/gpu_dpo.py            # on a GPU: ~1.0B parameters, 30 steps
    python benchmarks/gpu_dpo.py --smoke    # a tiny shape on CPU, to check the script itself
"""

from __future__ import annotations

import argparse
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
    model = LlamaForCausalLM(
        LlamaConfig(
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
    )
    n_params = sum(p.numel() for p in model.parameters())
    data = Dataset.from_list(pairs(tokenizer, s["batch"] * (steps + 2), s["seq"]))
    job = {
        "seed": 0,
        "training": {
            **section_defaults("training"),
            "beta": 0.01,
            "learning_rate": 5e-7,
            "per_device_train_batch_size": s["batch"],
            "gradient_accumulation_steps": 1,
            "lr_scheduler_type": "constant",
            "warmup_ratio": 0.0,
            "max_length": s["seq"],
            # the GPU run's settings in the CPU smoke run too, so CI exercises the same code path
            "bf16": True,
            "gradient_checkpointing": True,
        },
    }
    reg = {"kind": "bcr", "lambda": 1.0, "delta": 0.5, "normalize": "sum"}
    with tempfile.TemporaryDirectory() as work:
        cfg = dpo_config(job, work, *loss_types(reg))
        cfg.max_steps, cfg.disable_tqdm = steps, True
        trainer = HarnessDPOTrainer(
            model=model, args=cfg, train_dataset=data, processing_class=tokenizer, regularizer=reg
        )
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        trainer.train()
    logs = [e for e in trainer.state.log_history if "tokens_per_second" in e][2:]  # after warm-up
    tps = statistics.median(e["tokens_per_second"] for e in logs)
    mfu = [e["mfu"] for e in logs if e.get("mfu") is not None]
    device = throughput.device_name() or "CPU"
    peak = throughput.peak_flops(throughput.device_name())
    print(
        f"model: {n_params / 1e6:,.1f}M parameters, bf16, sequence length {s['seq']}, "
        f"batch {s['batch']} pairs, {steps} steps, {device}"
    )
    memory = f" | peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if gpu else ""
    print(f"tokens/s {tps:,.0f} (median of {len(logs)} steps after warm-up){memory}")
    if mfu:
        print(f"MFU {statistics.median(mfu):.1%} of {peak / 1e12:.0f} TFLOP/s dense bf16")
    else:
        print("MFU n/a: no known peak for this device (set HARNESS_PEAK_TFLOPS)")


if __name__ == "__main__":
    main()
