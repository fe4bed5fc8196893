"""Steps `judge` and `metrics` for AlpacaEval 2: each model output against the reference output.

Judging, chosen in config:
- ``annotator``: through the alpaca_eval library. ``name`` is one of its annotator configs (the
  published setting is ``weighted_alpaca_eval_gpt4_turbo``); ``model`` and ``base_url`` turn it into
  an open judge on any OpenAI-compatible endpoint (e.g. a 70B instruct model behind ``vllm serve``),
  with the same prompt and log-prob parser. The key comes from the variable named by ``api_key_env``.
  alpaca_eval caches annotations in its own JSON file, so a rerun pays nothing.
- ``judge``: our own pairwise judge (any backend, label log-probs; the offline demo's tiny judge).
  Which answer it sees first is drawn from the instruction's hash and recorded.

``preference`` follows alpaca_eval: 1 = reference (output_1) wins, 2 = model (output_2) wins,
continuous in between for a weighted judge. Metrics are in harness.evaluation.alpaca_metrics.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import yaml

from harness.backends import spec
from harness.core.io import RecordError, write_json
from harness.core.provenance import provenance
from harness.core.records import load_alpaca_instructions
from harness.core.seeding import subseed


def _matched(reference_path: str, outputs_path: str) -> tuple[list[dict], dict]:
    refs = load_alpaca_instructions(reference_path)
    outs = {r["instruction"]: r for r in load_alpaca_instructions(outputs_path)}
    missing = [r["instruction"] for r in refs if r["instruction"] not in outs]
    extra = sorted(set(outs) - {r["instruction"] for r in refs})
    if missing or extra:
        raise RecordError(
            f"{outputs_path}: {len(missing)} reference instructions have no output and {len(extra)} outputs "
            f"match no reference instruction (first: {(missing or extra)[0]!r})"
        )
    return refs, outs


def judge_step(job: dict, f: dict) -> None:
    """The `judge` step (its files by option name, harness/cli.py)."""
    judge(job, f["eval_set"], f["answers"], f["output"], f["meta"], f["cache"])


def judge(job: dict, reference_path: str, outputs_path: str, output: str, meta: str, cache=None) -> None:
    """Annotate every instruction; write alpaca_eval annotations to ``output`` and counts to ``meta``."""
    started = time.time()
    refs, outs = _matched(reference_path, outputs_path)
    if job.get("annotator"):
        rows, stats = _annotate_with_alpaca_eval(job["annotator"], refs, outs, cache)
    else:
        rows, stats = _annotate_with_judge(job, refs, outs, cache)
    # alpaca_eval's rows hold NaN for "none" (no verdict: counted as unannotated; no price): null here
    write_json(output, rows, quiet=bool(job.get("annotator")))
    write_json(meta, {"annotations": len(rows), **stats, "provenance": provenance(job, started=started)})


def _annotate_with_judge(job: dict, refs: list[dict], outs: dict, cache) -> tuple[list[dict], dict]:
    from harness.ranking.judge import PairwiseJudge

    judge = PairwiseJudge.from_config(job["judge"], cache)
    swaps = [subseed("alpaca_eval_order", r["instruction"], 0) & 1 == 1 for r in refs]
    triples = []
    for r, swap in zip(refs, swaps, strict=True):
        model_out = outs[r["instruction"]]["output"]
        triples.append(
            (r["instruction"], model_out, r["output"]) if swap else (r["instruction"], r["output"], model_out)
        )
    p_a = judge.prob_a(triples, desc="alpaca_eval judge")
    rows = []
    for idx, (r, swap, pa) in enumerate(zip(refs, swaps, p_a, strict=True)):
        out = outs[r["instruction"]]
        rows.append(
            {
                "index": idx,
                "instruction": r["instruction"],
                "output_1": r["output"],
                "generator_1": r["generator"],
                "output_2": out["output"],
                "generator_2": out["generator"],
                "annotator": f"{job['judge_name']}:{job['judge'].get('template', job['judge']['backend'])}",
                "preference": 1.0 + float(pa if swap else 1.0 - pa),
                "model_shown_first": swap,
            }
        )
        if spec(job["judge"]["backend"]).ground_truth:  # the demo world: each answer's own quality, too
            from harness.demo import world

            rows[-1]["oracle_score_1"] = world.score_text(r["instruction"], r["output"])
            rows[-1]["oracle_score_2"] = world.score_text(r["instruction"], out["output"])
    return rows, judge.stats()


def alpaca_eval_configs() -> Path:
    """alpaca_eval's directory of annotator configs (found without importing the package)."""
    import importlib.util

    spec = importlib.util.find_spec("alpaca_eval")
    if spec is None:
        raise ImportError("the annotator option needs alpaca-eval: pip install alpaca-eval==0.6.6")
    return Path(next(iter(spec.submodule_search_locations))) / "evaluators_configs"


def annotator_config(annotator: dict, workdir: Path) -> Path:
    """The annotator config alpaca_eval will run: its own, or a copy pointing at ``model``/``base_url``.

    Returns the directory holding ``configs.yaml``. The API key is never written: the OpenAI client
    reads it from the environment.
    """
    name, base = annotator["name"], alpaca_eval_configs()
    source = base / name / "configs.yaml"
    if not source.exists():
        names = sorted(p.name for p in base.iterdir() if (p / "configs.yaml").exists())
        raise ValueError(f"unknown alpaca_eval annotator '{name}'; available: {', '.join(names)}")
    configs = yaml.safe_load(source.read_text())
    cfg = configs[name]
    kwargs = cfg.setdefault("completions_kwargs", {})
    if annotator.get("model"):  # an open judge: a chat model behind an OpenAI-compatible endpoint
        kwargs["model_name"] = annotator["model"]
        kwargs["requires_chatml"] = True
    client = workdir / "client_configs.yaml"
    client.write_text(
        yaml.safe_dump({"default": [{"base_url": annotator["base_url"] or "https://api.openai.com/v1"}]})
    )
    kwargs["client_config_path"] = str(client)
    cfg["prompt_template"] = str(base / cfg["prompt_template"])
    out = workdir / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "configs.yaml").write_text(yaml.safe_dump({name: cfg}, sort_keys=False))
    return out


def _annotator_class():
    """alpaca_eval's PairwiseAnnotator, keeping its cache exact.

    alpaca_eval 0.6.6 writes its JSON cache with ``DataFrame.to_json`` (10 decimals) and reads it with
    ``pd.read_json`` (a fast float parser): a preference served from the cache came back moved by about
    1e-11 (1.7502601055951175 as 1.7502601056). Here the cache is written with Python's own float
    text (shortest round-trip, null for NaN) through a temp file, and read with ``json``, so a cached
    annotation is bit-identical to the fresh one. ``read_json`` also gave a column of whole numbers
    (-1.0, 1.0/2.0) the dtype int64, which then refused the 1.5 of identical outputs under pandas 3:
    the preference column is float on load.
    """
    import pandas as pd
    from alpaca_eval.annotators import PairwiseAnnotator

    from harness.core.io import read_json

    class ExactCacheAnnotator(PairwiseAnnotator):
        def save(self, path=None):
            path = path or self.caching_path
            if path is None:
                return
            self._refresh_annotations_()  # as alpaca_eval's save: what another run stored is kept
            df = self.df_annotations
            if not self.is_store_missing_annotations:
                df = self.df_annotations = df[~df[self.annotation_key].isna()]
            write_json(path, df.to_dict(orient="records"), quiet=True)

        def load_(self, path=None):
            path = Path(path or self.caching_path or "")
            if path.is_file():
                df = pd.DataFrame(read_json(path))
                for k in self.all_keys:
                    if k in df.columns:
                        df[k] = df[k].astype(str)
                if self.annotation_key in df.columns:
                    df[self.annotation_key] = df[self.annotation_key].astype(float)
                self.df_annotations = df

    return ExactCacheAnnotator


def _annotate_with_alpaca_eval(
    annotator: dict, refs: list[dict], outs: dict, cache
) -> tuple[list[dict], dict]:
    env = annotator["api_key_env"]
    if not os.environ.get(env):
        raise ValueError(
            f"alpaca_eval annotator {annotator['name']}: environment variable {env} (the API key) is not set"
        )
    os.environ["OPENAI_API_KEY"] = os.environ[env]  # the name alpaca_eval's OpenAI client reads
    import openai

    caching_path = cache and Path(f"{cache}.alpaca_eval.json")
    if caching_path:  # alpaca_eval writes it after the calls and does not make its directory
        caching_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        config_dir = annotator_config(annotator, Path(tmp))
        ann = _annotator_class()(annotators_config=str(config_dir), caching_path=caching_path)
        keep = ("instruction", "output", "generator")
        try:
            rows = ann.annotate_head2head(
                outputs_1=[{k: r[k] for k in keep} for r in refs],
                outputs_2=[{k: outs[r["instruction"]][k] for k in keep} for r in refs],
            )
        except openai.OpenAIError as e:  # alpaca_eval cached each finished chunk of 128 instructions
            from harness.core.errors import EndpointError

            where = annotator.get("base_url") or "https://api.openai.com/v1"
            raise EndpointError(
                f"alpaca_eval annotator {annotator['name']} at {where}: {type(e).__name__}: {e}"
            ) from None
    index = {r["instruction"]: i for i, r in enumerate(refs)}
    rows = sorted(({**r, "index": index[r["instruction"]]} for r in rows), key=lambda r: r["index"])
    missing = sum(r.get("preference") is None or r["preference"] != r["preference"] for r in rows)
    return rows, {
        "annotator": annotator["name"],
        "judge_model": annotator.get("model"),
        "unannotated": missing,
    }
