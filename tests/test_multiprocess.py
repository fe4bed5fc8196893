"""The multi-process training path, run for real: ``accelerate launch --multi_gpu --num_processes 2`` on CPU (gloo),
as every GPU user trains (the rules' own launch command), against one process reaching the same effective batch by accumulation.

Two processes x 1 pair and one process x 1 pair x 2 accumulation steps see the same pairs in the same
optimizer steps, so their per-step losses, logged log-ratio changes and BCR penalty and over-budget
share (averaged over all ranks) agree to float tolerance, and so do the final weights. The reference
log-probs given to the train step are shifted per pair (a different shift for each of three pairs),
so that BCR's budget binds and a reference log-prob read for the wrong pair (when the sampler splits
the data across ranks) would change the losses. The two-process run writes one checkpoint, one log
and one summary. A two-process run killed after a checkpoint resumes to the uninterrupted run's end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from harness.workflow.config import section_defaults

from .conftest import ROOT, model_ref, pythonpath
from .test_training import PAIRS as TRAINING_PAIRS

PAIRS = TRAINING_PAIRS[:8]  # 4 optimizer steps of 2 pairs
REGULARIZERS = {
    "dpo": {"name": "dpo", "kind": "none"},
    "nll": {"name": "nll", "kind": "nll", "alpha": 1.0},
    "bcr": {"name": "bcr", "kind": "bcr", "lambda": 1.0, "delta": 0.5, "normalize": "sum"},
}
COMPARED = ("loss", "logratio/chosen", "logratio/rejected", "loss/dpo", "loss/nll", "bcr/penalty",
            "bcr/over_budget", "rewards/accuracies")  # fmt: skip

pytestmark = pytest.mark.slow


def _job(model, reg: str, per_device: int, **training) -> dict:
    return {
        "step": "train",
        "cell": {"policy": "policy", "ranker": "rk", "regularizer": reg, "seed": 0},
        "seed": 0,
        "model": model_ref(model),
        "regularizer": REGULARIZERS[reg],
        "training": {
            **section_defaults("training"),
            "beta": 0.1,
            "learning_rate": training.pop("learning_rate", 1e-2),
            "num_train_epochs": 1,
            "per_device_train_batch_size": per_device,
            "effective_batch_size": 2,
            "lr_scheduler_type": "constant",
            "warmup_ratio": 0.0,
            "max_length": 96,
            "logging_steps": 1,
            "save_steps": 0,
            **training,
        },
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_models):
    """The pairs file and a reference file shifted per pair: the tiny policy's own reference log-probs
    plus 0, 3 or 6 nats on the chosen side (pair i: 3 * (i mod 3)), so the budget binds unevenly."""
    d = tmp_path_factory.mktemp("mp")
    pairs = d / "pairs.jsonl"
    pairs.write_text("".join(
        json.dumps({"prompt": [{"role": "user", "content": p}], "chosen": [{"role": "assistant", "content": c}],
                    "rejected": [{"role": "assistant", "content": r}]}) + "\n" for p, c, r in PAIRS))  # fmt: skip
    return d, pairs


def _reference(model, data_dir, pairs) -> str:
    from harness.training import train

    path = data_dir / f"reference-{model.name}.json"
    if not path.exists():
        train.reference_logps(_job(model, "dpo", 2), str(pairs), str(path))
        ref = json.loads(path.read_text())
        ref["chosen"] = [v + 3.0 * (i % 3) for i, v in enumerate(ref["chosen"])]
        path.write_text(json.dumps(ref))
    return str(path)


def _run(job: dict, pairs, reference: str, out, processes: int, script=None, **env):
    """``python -m harness train`` (or ``script`` with the same arguments), under ``accelerate launch``
    with ``processes`` processes on CPU (gloo) when more than one."""
    out.mkdir(parents=True, exist_ok=True)
    config = out / "job.yaml"
    config.write_text(yaml.safe_dump(job))
    target = [str(script)] if script else ["-m", "harness", "train"]
    # the workflow's launch (rules/common.smk, run_harness: accelerate launch --multi_gpu --num_processes N;
    # the other flags only state accelerate's defaults); without a GPU the processes meet over gloo
    launcher = [sys.executable] if processes == 1 else [
        shutil.which("accelerate") or "accelerate", "launch", "--multi_gpu", "--num_processes", str(processes),
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    args = ["--config", str(config), "--pairs", str(pairs), "--reference", reference, "--output",
            str(out / "model"), "--log", str(out / "log.jsonl"), "--summary", str(out / "summary.json")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": pythonpath(), "OMP_NUM_THREADS": "1", **env}
    env.pop("WORLD_SIZE", None)
    return subprocess.run([*launcher, *target, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=900)  # fmt: skip


def _ok(r):
    """A run that ended well; else every rank's own error lines (torchrun's summary alone names none)."""
    lines = r.stderr.splitlines()
    ours = [x for x in lines if re.match(r"(\[rank\d\]: )?error: ", x)]  # the harness's own one-line errors
    errors = ours + [x for x in lines if re.search(r"Error|\[rank\d\]", x)][-40:]
    assert r.returncode == 0, "\n".join(errors) + "\n" + r.stderr[-3000:]


def _log(out) -> list[dict]:
    return [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]


def _weights(out) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "model" / "model.safetensors"))


def _same_run(one, two, rel=1e-5):
    import torch

    a, b = _log(one), _log(two)
    assert [r["step"] for r in a] == [r["step"] for r in b] and len(a) >= 2
    for ra, rb in zip(a, b, strict=True):
        for key in COMPARED:
            assert (key in ra) == (key in rb), key
            if key in ra:
                assert rb[key] == pytest.approx(ra[key], rel=rel, abs=1e-6), (ra["step"], key)
    wa, wb = _weights(one), _weights(two)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-4, atol=1e-5)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (one, two))
    for key in ("final_chosen_logratio", "final_rejected_logratio", "final_over_budget", "steps"):
        assert (sa[key] is None) == (sb[key] is None), key  # over budget: BCR's only
        assert sa[key] is None or sb[key] == pytest.approx(sa[key], rel=rel, abs=1e-6), key
    return a, sb


@pytest.mark.parametrize("reg", ["dpo", "nll", "bcr"])
def test_two_processes_equal_one_with_accumulation_tiny(reg, data, tiny_models, tmp_path):
    d, pairs = data
    ref = _reference(tiny_models / "policy", d, pairs)
    one, two = tmp_path / "one", tmp_path / "two"
    _ok(_run(_job(tiny_models / "policy", reg, 1), pairs, ref, one, 1))
    _ok(_run(_job(tiny_models / "policy", reg, 1), pairs, ref, two, 2))
    log, summary = _same_run(one, two)
    assert summary["batch"] == {"per_device": 1, "accumulation": 1, "processes": 2}
    assert json.loads((one / "summary.json").read_text())["batch"]["accumulation"] == 2
    if reg == "bcr":  # the budget binds for some pairs and not others: the shares average over ranks
        assert any(0 < r["bcr/over_budget"] < 1 for r in log) and any(r["bcr/penalty"] > 0 for r in log)
    # one checkpoint, one log (a line per step), one summary, nothing else: the main rank wrote them
    assert sorted(p.name for p in two.iterdir()) == ["job.yaml", "log.jsonl", "model", "summary.json"]
    assert len(log) == summary["steps"] == len(PAIRS) // 2


def test_two_processes_equal_one_on_the_real_model(data, smollm2, tmp_path):
    """SmolLM2-135M-Instruct (real tokenizer and chat template), BCR, two optimizer steps on 4 pairs."""
    d, pairs = data
    four = d / "pairs4.jsonl"
    four.write_text("".join(pairs.read_text().splitlines(keepends=True)[:4]))
    ref = _reference(smollm2, d, four)
    one, two = tmp_path / "one", tmp_path / "two"
    job = _job(smollm2, "bcr", 1, learning_rate=1e-5)
    _ok(_run(job, four, ref, one, 1))
    _ok(_run(job, four, ref, two, 2))
    log, _ = _same_run(one, two, rel=1e-4)
    assert any(r["bcr/penalty"] > 0 for r in log)


KILLED = """
import os, signal, sys
from transformers import TrainerCallback
from harness import cli
from harness.training import trainer

class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == int(os.environ["KILL_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)

class Dying(trainer.HarnessDPOTrainer):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.add_callback(Kill())

trainer.HarnessDPOTrainer = Dying
cli.main(["train", *sys.argv[1:]])
"""


def test_two_process_run_killed_after_a_checkpoint_resumes_to_the_same_end(data, tiny_models, tmp_path):
    d, pairs = data
    ref = _reference(tiny_models / "policy", d, pairs)
    job = _job(tiny_models / "policy", "bcr", 1, save_steps=2)  # 4 steps, a checkpoint after step 2
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _ok(_run(job, pairs, ref, whole, 2))
    script = tmp_path / "killed_train.py"
    script.write_text(KILLED)
    r = _run(job, pairs, ref, killed, 2, script=script, KILL_AT="3")  # both ranks die after step 3
    assert r.returncode != 0 and not (killed / "summary.json").exists()
    checkpoints = [p.name for p in (killed / "model.partial" / "trainer").iterdir()]
    assert "checkpoint-2" in checkpoints
    _ok(_run(job, pairs, ref, killed, 2))
    _, summary = _same_run(whole, killed)
    assert summary["resumed_from"] == "checkpoint-2"
