"""Training throughput: tokens per second and model FLOPs utilisation (MFU).

MFU = achieved model FLOP/s / peak FLOP/s of the devices. Model FLOPs per trained token follow the
PaLM paper's count (Chowdhery et al. 2022, appendix B): 6 N for the matmuls of forward and backward
(N = parameters outside the input embedding, whose lookup is not a matmul) plus 12 L d T for
attention over a context of T tokens. Recomputation under gradient checkpointing is not counted, by
definition; reference log-probs are precomputed, so no reference forward is counted either.
"""

from __future__ import annotations

import os

# Dense bf16 tensor-core peaks from the vendors' data sheets (TFLOP/s, without sparsity). Matched
# against torch.cuda.get_device_name() in order, so the more specific names come first.
PEAK_BF16_TFLOPS = (
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("A6000", 155.0),
    ("L4", 121.0),
)


def peak_flops(device_name: str | None) -> float | None:
    """Peak dense bf16 FLOP/s of one device, or None when unknown (CPU, an unlisted GPU).

    ``HARNESS_PEAK_TFLOPS`` overrides the table for a device it does not list.
    """
    if os.environ.get("HARNESS_PEAK_TFLOPS"):
        return float(os.environ["HARNESS_PEAK_TFLOPS"]) * 1e12
    if not device_name:
        return None
    for name, tflops in PEAK_BF16_TFLOPS:
        if name in device_name:
            return tflops * 1e12
    return None


def flops_per_token(model, context: float) -> float:
    """Model FLOPs to train on one token (forward + backward) at a mean context of ``context`` tokens."""
    cfg = model.config

    def numel(p):  # under DeepSpeed ZeRO-3 a parameter is partitioned; ds_numel is its full size
        return getattr(p, "ds_numel", p.numel())

    embed = numel(model.get_input_embeddings().weight)
    n = sum(numel(p) for p in model.parameters()) - embed
    if getattr(cfg, "tie_word_embeddings", False):
        n += embed  # the tied output projection is a matmul
    return 6.0 * n + 12.0 * cfg.num_hidden_layers * cfg.hidden_size * context


def device_name() -> str | None:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else None
