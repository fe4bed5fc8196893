"""The train step beyond the loss: checkpoint resume after SIGKILL, LoRA, trackers, throughput, the
budget-sweep figure and the DeepSpeed config."""

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from harness.core.errors import ConfigError
from harness.workflow.config import section_defaults, validate

from .conftest import ROOT, model_ref, pythonpath

PAIRS = [
    ("Explain why the sky looks blue.", "Light scatters in the air.", "The sky is a colour."),
    ("Give a simple recipe for tomato soup.", "Cook tomatoes with onion, then blend.", "Soup."),
    ("What is photosynthesis?", "Plants make sugar from light, water and air.", "A word about plants."),
    ("How do bees make honey?", "Bees turn nectar into honey in the hive.", "They just do."),
] * 3


def _job(tiny_models, reg=None, **training):
    reg = reg or {"name": "bcr", "kind": "bcr", "lambda": 1.0, "delta": 0.5, "normalize": "sum"}
    return {
        "step": "train",
        "cell": {"policy": "policy", "ranker": "rk", "regularizer": reg["name"], "seed": 0},
        "seed": 0,
        "model": model_ref(tiny_models / "policy"),
        "regularizer": reg,
        "training": {
            **section_defaults("training"),
            "beta": 0.1,
            "learning_rate": 1e-3,
            "num_train_epochs": 2,
            "per_device_train_batch_size": 2,
            "effective_batch_size": 2,
            "lr_scheduler_type": "constant",
            "warmup_ratio": 0.0,
            "max_length": 64,
            **training,
        },
    }


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [
        {
            "prompt": [{"role": "user", "content": p}],
            "chosen": [{"role": "assistant", "content": c}],
            "rejected": [{"role": "assistant", "content": r}],
        }
        for p, c, r in PAIRS
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _train(job, pairs, out):
    from harness.training import train

    train.run(job, str(pairs), str(out / "model"), str(out / "log.jsonl"), str(out / "summary.json"))
    return [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()], json.loads(
        (out / "summary.json").read_text()
    )


# A training run in its own process that SIGKILLs itself right after the optimizer step `kill_at`.
KILLED_RUN = textwrap.dedent(
    """
    import json, os, signal, sys
    from transformers import TrainerCallback
    from harness.training import train, trainer

    job, pairs, out, kill_at = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    class Dying(trainer.HarnessDPOTrainer):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.add_callback(Kill())

    trainer.HarnessDPOTrainer = Dying  # train.run imports it from harness.training.trainer when called
    train.run(job, pairs, out + "/model", out + "/log.jsonl", out + "/summary.json")
    """
)


def test_killed_training_resumes_from_its_last_checkpoint(tiny_models, pairs_file, tmp_path, caplog):
    job = _job(tiny_models, save_steps=4)  # 12 pairs / 2 = 6 steps per epoch, 12 steps in all
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    steps_whole, summary_whole = _train(job, pairs_file, whole)

    env = {**os.environ, "PYTHONPATH": pythonpath()}
    r = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, json.dumps(job), str(pairs_file), str(killed), "10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == -9, r.stderr[-3000:]
    partial = killed / "model.partial"
    # killed after step 10: checkpoint-8 is the last complete one; nothing looks finished
    assert sorted(p.name for p in (partial / "trainer").glob("checkpoint-*")) == ["checkpoint-8"]
    assert not (killed / "model").exists() and not (killed / "summary.json").exists()

    # the same kill with a damaged file in its checkpoint (issue 30, case 3): set aside in one line and
    # trained afresh, to the uninterrupted run's model, instead of a traceback on every rerun
    damaged = tmp_path / "damaged"
    shutil.copytree(killed, damaged)
    optimizer = damaged / "model.partial/trainer/checkpoint-8/optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING, logger="harness.training.resume"):
        _, summary_damaged = _train(job, pairs_file, damaged)
    said = [r.getMessage() for r in caplog.records if r.name == "harness.training.resume"]
    assert said == [
        f"{optimizer.parent}: optimizer.pt is cut off or not a torch archive (1000 bytes); set aside as "
        "damaged-checkpoint-8; training starts afresh"
    ]
    assert summary_damaged["resumed_from"] is None
    assert summary_damaged["final_chosen_logratio"] == summary_whole["final_chosen_logratio"]

    steps, summary = _train(job, pairs_file, killed)
    assert summary["resumed_from"] == "checkpoint-8" and summary["steps"] == 12
    assert [s["step"] for s in steps] == list(range(1, 13))  # the log before the kill is kept
    assert all(s["tokens_per_second"] > 0 for s in steps[1:])
    for a, b in zip(steps, steps_whole, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    # the resumed log counts tokens on from the checkpoint: every row as the uninterrupted run's
    assert [s["num_tokens"] for s in steps] == [s["num_tokens"] for s in steps_whole]
    assert summary["final_chosen_logratio"] == pytest.approx(summary_whole["final_chosen_logratio"], abs=1e-4)
    assert not partial.exists()
    assert sorted(p.name for p in (killed / "model").iterdir()) == sorted(
        p.name for p in (whole / "model").iterdir()
    )


def test_partial_run_of_another_job_is_not_resumed(tmp_path):
    from harness.training.resume import resume_point

    partial = tmp_path / "model.partial"
    (partial / "trainer" / "checkpoint-4").mkdir(parents=True)
    (partial / "trainer" / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (partial / "trainer" / "checkpoint-6").mkdir()  # killed while saving: no trainer_state.json
    (partial / "fingerprint").write_text("job-a")
    assert resume_point(partial, "job-a").endswith("checkpoint-4")
    assert not (partial / "trainer" / "checkpoint-6").exists()
    assert resume_point(partial, "job-b") is None  # another config or other pairs: start afresh
    assert list(partial.iterdir()) == [partial / "fingerprint"]


def test_a_damaged_checkpoint_falls_back_to_the_one_before(tmp_path, caplog, monkeypatch):
    """A complete-looking checkpoint whose file does not load (cut off, or a pickle that is more than
    tensors) is set aside with one line naming the file, and the run resumes from the checkpoint before
    it (issue 30, case 3); an error of reading itself is no damage: it stops the step, moving nothing."""
    import torch
    from safetensors.torch import save_file

    from harness.training.resume import resume_point

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/ran",))

    partial = tmp_path / "model.partial"
    for step in (2, 4, 6):
        ckpt = partial / "trainer" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        save_file({"w": torch.zeros(64)}, str(ckpt / "model.safetensors"))
        torch.save(
            {"state": {0: {"exp_avg": torch.zeros(64)}}, "param_groups": [{"lr": 1e-3}]},
            ckpt / "optimizer.pt",
        )
    trainer = partial / "trainer"
    weights = trainer / "checkpoint-6" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    torch.save({"lr": Hostile()}, trainer / "checkpoint-4" / "scheduler.pt")
    (partial / "fingerprint").write_text("job-a")
    with caplog.at_level(logging.WARNING, logger="harness.training.resume"):
        assert resume_point(partial, "job-a") == str(trainer / "checkpoint-2")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "harness.training.resume"]
    assert line.startswith(f"{trainer}/checkpoint-6: model.safetensors does not load (SafetensorError: ")
    assert (
        f"; set aside as damaged-checkpoint-6; {trainer}/checkpoint-4: scheduler.pt holds more than tensors "
        "(refused by torch.load's weights_only, as on resume); set aside as damaged-checkpoint-4; resuming "
        "from checkpoint-2"
    ) in line
    assert sorted(p.name for p in trainer.iterdir()) == [
        "checkpoint-2",
        "damaged-checkpoint-4",
        "damaged-checkpoint-6",
    ]
    assert not (tmp_path / "ran").exists()
    # a read that fails for the machine's reasons (here EIO) is no verdict on the checkpoint

    def failing(*a, **kw):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(torch, "load", failing)
    with pytest.raises(OSError, match="Input/output error"):
        resume_point(partial, "job-a")
    assert (trainer / "checkpoint-2").exists()


def test_lora_saves_a_merged_model_and_tensorboard_events(tiny_models, pairs_file, tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("HARNESS_PEAK_TFLOPS", "0.5")  # CPU has no peak in the table: MFU from a stated one
    job = _job(tiny_models, lora={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"})
    job["training"]["report_to"] = ["tensorboard"]
    steps, summary = _train(job, pairs_file, tmp_path)
    out = tmp_path / "model"
    assert not (out / "adapter_config.json").exists()  # merged: later steps load a plain model
    trained = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_models / "policy")
    changed = [
        n for n, p in trained.named_parameters() if not torch.equal(p, dict(base.named_parameters())[n])
    ]
    assert changed and all("proj" in n for n in changed)  # only adapted linear layers moved
    assert any((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert 0 < summary["mfu"] < 1 and summary["tokens_per_second"] > 0
    assert all("mfu" in s for s in steps[1:])


def test_lora_with_deepspeed_is_refused(tiny_models, pairs_file, tmp_path):
    job = _job(tiny_models, lora={**section_defaults("training")["lora"], "r": 4})
    job["training"]["deepspeed"] = "config/deepspeed/zero3.json"
    with pytest.raises(ValueError, match="lora with training.deepspeed"):
        _train(job, pairs_file, tmp_path)


def test_deepspeed_zero3_config_is_shipped():
    cfg = json.loads((ROOT / "config/deepspeed/zero3.json").read_text())
    assert cfg["zero_optimization"]["stage"] == 3
    assert cfg["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True  # one saved model
    assert cfg["train_micro_batch_size_per_gpu"] == "auto"  # sizes come from the job's DPOConfig


def test_throughput_by_hand(tiny_models, monkeypatch):
    from transformers import AutoModelForCausalLM

    from harness.core.throughput import flops_per_token, peak_flops

    model = AutoModelForCausalLM.from_pretrained(tiny_models / "policy")
    c = model.config
    h, v, L = c.hidden_size, c.vocab_size, c.num_hidden_layers
    # per layer: q, k, v, o (h x h each), gate/up/down (h x 4h), two RMSNorm weights; a final norm;
    # the output projection is tied to the embedding and counted once
    n = L * (4 * h * h + 3 * h * 4 * h + 2 * h) + h + v * h
    assert flops_per_token(model, context=100) == 6 * n + 12 * L * h * 100
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops(None) is None and peak_flops("Some Future GPU") is None
    monkeypatch.setenv("HARNESS_PEAK_TFLOPS", "100")
    assert peak_flops(None) == 100e12


def _summary(path, reg, seed, chosen):
    path.write_text(
        json.dumps(
            {
                "cell": {"policy": "p", "ranker": "ipr", "regularizer": reg["name"], "seed": seed},
                "regularizer": reg,
                "final_chosen_logratio": chosen,
                "final_rejected_logratio": chosen - 3,
                "final_reward_accuracy": 0.9,
            }
        )
    )
    return str(path)


def test_budget_sweep_table_and_figure(tmp_path):
    from harness.reporting.figures import budget_sweep

    regs = [
        {"name": "dpo", "kind": "none"},
        {"name": "bcr-d1", "kind": "bcr", "lambda": 1.0, "delta": 1.0, "normalize": "sum"},
        {"name": "dpop", "kind": "dpop", "lambda": 1.0, "normalize": "sum"},
    ]
    inputs = [
        _summary(tmp_path / f"{r['name']}-{s}.json", r, s, -float(i) - s)
        for i, r in enumerate(regs)
        for s in (0, 1)
    ]
    png, pdf, csv = (tmp_path / f"sweep.{e}" for e in ("png", "pdf", "csv"))
    budget_sweep(inputs, str(png), str(pdf), str(csv))
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert [(r["regularizer"], float(r["delta"])) for r in rows] == [
        ("dpop", 0.0),
        ("bcr-d1", 1.0),
        ("dpo", math.inf),
    ]
    assert float(rows[0]["chosen_logratio"]) == pytest.approx(-2.5)  # seeds 0 and 1: -2 and -3
    assert rows[0]["seeds"] == "2"


def test_budget_sweep_config_errors():
    import yaml

    raw = yaml.safe_load((ROOT / "config/demo_pipeline.yaml").read_text())
    good = json.loads(json.dumps(raw))
    validate(good)
    for sweep, message in [
        ([{"policy": "tiny-policy", "ranker": "ipr", "regularizers": ["dpo", "nll"]}], "of kind nll"),
        (
            [{"policy": "tiny-policy", "ranker": "ipr", "regularizers": ["dpo", "bcr-d9"]}],
            "'bcr-d9' is not a key",
        ),
        (
            [{"policy": "tiny-policy", "ranker": "nope", "regularizers": ["dpo", "bcr"]}],
            "budget_sweep/0/ranker",
        ),
    ]:
        bad = json.loads(json.dumps(raw))
        bad["budget_sweep"] = sweep
        with pytest.raises(ConfigError, match=message):
            validate(bad)
    bad = json.loads(json.dumps(raw))
    bad["regularizers"]["bcr-d2"]["normalize"] = "token"
    with pytest.raises(ConfigError, match="both summed and per-token"):
        validate(bad)
    bad = json.loads(json.dumps(raw))
    bad["regularizers"]["bcr"]["delta"] = -0.5
    with pytest.raises(ConfigError, match="regularizers/bcr/delta"):
        validate(bad)


def _gpu_benchmark(*flags):
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/gpu_dpo.py"), *flags],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": pythonpath()},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_gpu_benchmark_script_runs_on_cpu():
    out = _gpu_benchmark("--smoke")
    assert "tokens/s" in out and "MFU" in out


@pytest.mark.gpu
def test_gpu_benchmark_reports_mfu():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    out = _gpu_benchmark()
    assert "MFU" in out and "n/a" not in out


def test_full_fine_tuning_holds_float32_weights_unless_deepspeed_or_lora(tiny_models):
    """bf16 weights barely move at 5e-7 (0.9% changed in a step on an H200, 93.7% in float32): a full
    fine-tune without DeepSpeed loads float32 and trains in bf16 autocast; DeepSpeed and LoRA keep the
    model's dtype (DeepSpeed's own float32 master copy, float32 adapters)."""
    import torch

    from harness.training.args import weights_dtype

    job = _job(tiny_models)
    job["model"]["dtype"] = "bfloat16"
    assert weights_dtype(job) == torch.float32
    job["training"]["deepspeed"] = "config/deepspeed/zero3.json"
    assert weights_dtype(job) == torch.bfloat16
    job["training"]["deepspeed"], job["training"]["lora"] = None, {"r": 8}
    assert weights_dtype(job) == torch.bfloat16
