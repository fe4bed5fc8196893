"""Step `downstream`: accuracy on downstream tasks through lm-evaluation-harness (the alignment tax).

Every task is run by lm-eval's own ``simple_evaluate`` on one model (the base policy or a trained
cell): its HF model (``lm_eval.models.huggingface.HFLM``) or, on GPUs, its vLLM model, loaded once and
evaluated per few-shot count. Tasks are named in config with the lm-eval task version they were
pinned at (a different version stops the step) and the metric the table reports; the paper config
runs the Open LLM Leaderboard v1 set with its few-shot counts. Tasks of the project's own (the demo
world's, in harness/evaluation/lm_eval_tasks/) are lm-eval YAML files whose data file is the prepared
``downstream.data`` set; the step copies them into a temporary folder with that path filled in, so
lm-eval loads them offline like any other task.

Outputs: lm-eval's results JSON (``results``, ``versions``, ``n-shot``, ``configs``, ...) with our
provenance added, and a metrics file with each task's chosen metric and its stderr in percent.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from harness.core.io import RecordError, dumps, write_json, write_text
from harness.core.provenance import provenance

log = logging.getLogger(__name__)
TASK_DIR = Path(__file__).parent / "lm_eval_tasks"
DATA_PLACEHOLDER = "HARNESS_DOWNSTREAM_DATA"

BENCHMARK = "downstream"


def task_folder(include: str | None, data: str | None) -> str | None:
    """A temporary copy of the project's task YAMLs with their data file set to ``data``."""
    if not include:
        return None
    src = Path(include) if Path(include).is_absolute() else Path(__file__).parents[2] / include
    if not src.is_dir():
        raise RecordError(f"evaluation/downstream/include_path: no folder {src}")
    out = Path(tempfile.mkdtemp(prefix="harness-lm-eval-"))
    for f in sorted(src.glob("*.yaml")):
        text = f.read_text(encoding="utf-8")
        if DATA_PLACEHOLDER in text:
            if not data:
                raise RecordError(
                    f"{f}: its data file comes from evaluation/downstream/data, which is not set"
                )
            text = text.replace(DATA_PLACEHOLDER, str(Path(data).resolve()))
        write_text(out / f.name, text)
    return str(out)


def _model(job: dict):
    """lm-eval's model object for the job's model: HFLM, or its vLLM model on GPUs."""
    import torch

    d, ref = job["downstream"], job["model"]
    kwargs = {"revision": ref["revision"]} if ref.get("revision") else {}
    if d["backend"] == "vllm":
        from lm_eval.models.vllm_causallms import VLLM

        return VLLM(
            pretrained=ref["source"],
            dtype=ref.get("dtype", "auto"),
            tensor_parallel_size=max(1, int(os.environ.get("HARNESS_GPUS", "1"))),
            batch_size="auto",
            trust_remote_code=ref.get("trust_remote_code", False),
            **kwargs,
        )
    from lm_eval.models.huggingface import HFLM

    from harness.core.hub import hub_asset

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = ref.get("dtype", "auto") if device == "cuda" else "float32"
    with hub_asset(f"model {ref['source']}"):
        return HFLM(
            pretrained=ref["source"],
            device=device,
            dtype=dtype,
            batch_size=d["batch_size"],
            trust_remote_code=ref.get("trust_remote_code", False),
            **kwargs,
        )


def _per_sample(task: str, logged: list[dict]) -> list[dict]:
    """lm-eval's per-sample log of a task as one row per document, filter and metric:
    ``{task, doc_id, filter, metric, value}`` (the documents' texts and responses left out)."""
    rows = []
    for rec in logged:
        for metric in rec.get("metrics", []):
            value = rec.get(metric)
            if isinstance(value, int | float) and not isinstance(value, bool):
                rows.append({"task": task, "doc_id": rec["doc_id"], "filter": rec.get("filter", "none"),
                             "metric": metric, "value": float(value)})  # fmt: skip
    return rows


def _value(results: dict, task: dict) -> tuple[float, float | None]:
    """The task's chosen metric and its stderr (lm-eval's ``<metric>`` and ``<metric>_stderr`` keys)."""
    row = results["results"].get(task["name"])
    if row is None:
        raise RecordError(f"lm-eval returned no results for task '{task['name']}'")
    metric, _, filt = task["metric"].partition(",")
    key = f"{metric},{filt or 'none'}"
    if key not in row:
        found = sorted(k for k in row if "," in k and "_stderr" not in k)
        raise RecordError(
            f"task '{task['name']}': no metric '{key}' in lm-eval's results; found {', '.join(found)}"
        )
    stderr = row.get(f"{metric}_stderr,{filt or 'none'}")
    return float(row[key]), (None if stderr in (None, "N/A") else float(stderr))


def run(
    job: dict, data: str | None, output: str, metrics_output: str, samples_output: str | None = None
) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable

    started = time.time()
    d = job["downstream"]
    include = task_folder(d.get("include_path"), data)
    manager = TaskManager(include_path=include, include_defaults=d["include_defaults"])
    known = set(manager.all_tasks)
    unknown = [t["name"] for t in d["tasks"] if t["name"] not in known]
    if unknown:
        where = "lm-eval's tasks" + (f" and {d['include_path']}" if include else "")
        raise RecordError(
            f"evaluation/downstream/tasks: unknown task(s) {', '.join(unknown)} (not in {where})"
        )
    lm = _model(job)
    merged: dict = {}
    samples: list[dict] = []
    for shots in sorted({t["num_fewshot"] for t in d["tasks"]}):
        names = [t["name"] for t in d["tasks"] if t["num_fewshot"] == shots]
        log.info("lm-eval: %s at %d-shot", ", ".join(names), shots)
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=names,
            num_fewshot=shots,
            task_manager=manager,
            apply_chat_template=d["apply_chat_template"],
            fewshot_as_multiturn=d["apply_chat_template"],
            limit=d.get("limit"),
            bootstrap_iters=d["bootstrap_iters"],
            log_samples=samples_output is not None,
            random_seed=job["seed"],
            numpy_random_seed=job["seed"],
            torch_random_seed=job["seed"],
            fewshot_random_seed=job["seed"],
        )
        for task, logged in (out.pop("samples", None) or {}).items():
            samples += _per_sample(task, logged)
        for key, value in out.items():
            if isinstance(value, dict) and key != "config":
                merged.setdefault(key, {}).update(value)
            else:
                merged.setdefault(key, value)
    tasks = {}
    for t in d["tasks"]:
        version = merged["versions"].get(t["name"])
        if t.get("version") is not None and str(version) != str(t["version"]):
            raise RecordError(
                f"evaluation/downstream/tasks: {t['name']} is version {version} in lm-eval "
                f"{lm_eval.__version__}, config pins {t['version']}"
            )
        value, stderr = _value(merged, t)
        tasks[t["name"]] = {
            "metric": t["metric"],
            "value": 100 * value,
            "stderr": None if stderr is None else 100 * stderr,
            "num_fewshot": t["num_fewshot"],
            "version": version,
        }
    prov = provenance(job, seed=job["seed"], started=started)
    merged["provenance"] = prov
    if (
        samples_output is not None
    ):  # per document, what paired comparisons resample (harness/reporting/compare.py)
        write_text(
            samples_output,
            "".join(
                dumps(r, f"{samples_output}:{i}", ensure_ascii=True) + "\n" for i, r in enumerate(samples, 1)
            ),
        )
    write_text(
        output, dumps(merged, output, indent=2, default=handle_non_serializable, ensure_ascii=True) + "\n"
    )
    write_json(
        metrics_output,
        {
            "benchmark": BENCHMARK,
            "cell": job["cell"],
            "metrics": {
                "tasks": tasks,
                "mean": sum(v["value"] for v in tasks.values()) / len(tasks),
                "lm_eval_version": lm_eval.__version__,
            },
            "provenance": prov,
        },
    )


def paired_cells(files: dict, job: dict, difficulty: dict) -> list[tuple]:
    """The paired comparisons' families (harness/reporting/compare.py), one per task: its label, its
    units (documents), each cell's per-document metric (lm-eval's per-sample logs), the resample count."""
    import numpy as np

    from harness.core.io import read_jsonl
    from harness.core.stats import aligned, mean_cell, seed_order

    b = job["benchmarks"][BENCHMARK]
    out = []
    for t in b["tasks"]:
        metric, _, filt = t["metric"].partition(",")
        order, cells_ = None, {}
        for cell, seeds in files.items():
            rows = []
            for seed in seed_order(seeds):
                path = seeds[seed]
                values = {
                    rec["doc_id"]: 100 * float(rec["value"])
                    for _, rec in read_jsonl(path)
                    if rec["task"] == t["name"]
                    and rec["metric"] == metric
                    and rec["filter"] == (filt or "none")
                }
                if not values:
                    raise RecordError(f"{path}: no per-sample '{t['metric']}' of task {t['name']}")
                keys = sorted(values)
                order = order or keys
                rows.append([values[keys[i]] for i in aligned(keys, order, path, "documents")])
            cells_[cell] = mean_cell(np.array(rows))
        out.append((f"{t['name']} (%)", order, cells_, b["samples"]))
    return out


def table_values(m: dict) -> dict:
    """A metrics file's columns of the tables (harness/reporting/report.py): each task's metric, with a
    95% normal interval from lm-eval's standard error."""
    out = {}
    for task, t in m["tasks"].items():
        out[f"ds_{task}"] = t["value"]
        se = t.get("stderr")
        out[f"ds_{task}_ci"] = [t["value"] - 1.96 * se, t["value"] + 1.96 * se] if se else None
    return out


def compare_job(cfg: dict) -> dict:
    """Its settings in the comparisons job config: each task's metric, documents resampled 1000 times."""
    tasks = [{"name": t["name"], "metric": t["metric"]} for t in cfg["evaluation"][BENCHMARK]["tasks"]]
    return {"samples": 1000, "tasks": tasks}
