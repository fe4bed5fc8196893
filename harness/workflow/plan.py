"""``python -m harness plan``: what a config will cost before it runs.

Per stage: jobs, prompts, judge calls, prompt and answer tokens, GPU-hours and API cost, and the hours
of its longest job against the SLURM profile's time limit for that rule (flagged when past it).

Counted parts are exact where the inputs exist: prompts from a world source or a local file (hub
datasets from ``plan.counts``), judge calls from the completions once sampled (distinct non-empty
candidates per prompt, as ``rank`` keeps them), training steps from the pairs once ranked. Before
that they are upper bounds (K distinct candidates, a pair from every prompt). Tokens, times and prices
are estimates from ``plan`` in config, each figure with its source: throughput is derived from model
size, the GPU's peak and an assumed MFU (2 x params FLOP per inference token, 6 x for training).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness.backends import spec
from harness.core.benchmarks import get
from harness.core.cells import cells
from harness.ranking import ipr
from harness.ranking.kinds import kind as ranker_kind
from harness.training import batch
from harness.workflow import sizing

# the judges' max_tokens (harness/ranking/judge.py; Arena-Hard's verdict after an explanation: its v0.1 config's)
JUDGE_REPLY_TOKENS = {"pairwise": 16, "rating": 512, "verdict": 4096}


def _comparisons(procedure: str, k: int) -> int:
    """Comparisons a procedure makes for ``k`` candidates (insertion: with the first-shown answer
    always winning, a typical count; the others are fixed)."""
    if k < 2:
        return 0
    gen, n = ipr.PROCEDURES[procedure](k), 0
    try:
        req = next(gen)
        while True:
            n += 1
            req = gen.send(ipr.decide(req, 1.0, 0.0))
    except StopIteration:
        return n


def _count(source: dict, key: str, counts: dict) -> int | None:
    """Records a source yields: a world source's n, a local file's lines or list, else plan.counts."""
    if "world" in source:
        return source["world"]["n"]
    if "path" in source and Path(source["path"]).exists():
        text = Path(source["path"]).read_text(encoding="utf-8")
        n = len(json.loads(text)) if text.lstrip().startswith("[") else len(text.splitlines())
        n = max(0, n - (source.get("skip") or 0))
        return min(n, source["limit"]) if source.get("limit") else n
    return counts.get(key)


def _candidates(rundir: Path, policy: str, k: int, n_prompts: int) -> tuple[list[int], bool]:
    """Distinct non-empty completions per prompt, from the completions if sampled (exact), else K each."""
    path = rundir / f"completions/{policy}/completions.jsonl"
    if not path.exists():
        return [k] * n_prompts, False
    sizes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        texts = [c["text"] for c in json.loads(line)["completions"] if c["text"].strip()]
        sizes.append(len(set(texts)))
    return sizes, True


def _pairs(rundir: Path, policy: str, ranker: str, n_prompts: int) -> tuple[int, bool]:
    meta = rundir / f"pairs/{policy}/{ranker}/pairs.meta.json"
    return (json.loads(meta.read_text())["pairs"], True) if meta.exists() else (n_prompts, False)


def train_steps(pairs: int, t: dict, processes: int) -> int:
    """Optimizer steps of one training job, as transformers' Trainer counts them."""
    accum = batch.accumulation(t["effective_batch_size"], t["per_device_train_batch_size"], processes)
    batches = math.ceil(pairs / (t["per_device_train_batch_size"] * max(processes, 1)))
    per_epoch = max(batches // accum + int(batches % accum > 0), 1)
    return math.ceil(t["num_train_epochs"] * per_epoch)


def plan(cfg: dict, workdir: Path = Path("."), limits: dict | None = None) -> dict:
    """The plan as data: ``stages`` (rule -> row), ``train_steps`` (cell -> steps), totals."""
    from harness.workflow.config import run_dir

    rundir = workdir / run_dir(cfg)  # the run's finished outputs, where there are any
    p = cfg.get("plan", {})
    tok, counts, limits = p.get("tokens", {}), p.get("counts", {}), limits or {}
    gpu_peak = p.get("gpu", {}).get("peak_tflops", 0) * 1e12
    mfu = p.get("mfu", {})
    params = p.get("params_b", {})

    def seconds(model: str | None, gpus: int, prefill: float, decode: float = 0.0, train: float = 0.0):
        if not gpus or not model or model not in params or not gpu_peak:
            return None  # CPU jobs and unsized models: no estimate
        flops_s = gpus * gpu_peak
        n = params[model] * 1e9
        return sum(
            tokens * factor * n / (flops_s * mfu[kind])
            for tokens, factor, kind in ((prefill, 2, "prefill"), (decode, 2, "decode"), (train, 6, "train"))
            if tokens
        )

    stages: dict[str, dict] = {}

    def add(
        rule, jobs, prompts, calls=0, prompt_tok=0.0, answer_tok=0.0, secs=None, gpus=0, cost=None, shards=1
    ):
        row = stages.setdefault(
            rule,
            {"jobs": 0, "prompts": 0, "judge_calls": 0, "prompt_tokens": 0.0, "answer_tokens": 0.0,
             "gpu_hours": 0.0, "api_cost": None, "job_hours": 0.0, "estimated": secs is not None},
        )  # fmt: skip
        row["jobs"] += jobs
        row["prompts"] += prompts
        row["judge_calls"] += calls
        row["prompt_tokens"] += prompt_tok
        row["answer_tokens"] += answer_tok
        if secs is not None:
            row["gpu_hours"] += secs * gpus / 3600
            row["job_hours"] = max(row["job_hours"], secs / shards / 3600)
        if cost is not None:
            row["api_cost"] = (row["api_cost"] or 0.0) + cost

    s, k = cfg["sampling"], cfg["sampling"]["k"]
    n_prompts = _count(cfg["prompts"], "prompts", counts) or 0
    pt, at = tok.get("prompt", 0), tok.get("answer", 0)
    for policy in cfg["policies"]:
        g = sizing.model_gpus(cfg, policy)
        n = s.get("shards", 1)
        add("sample", n, n_prompts, 0, n_prompts * pt, n_prompts * k * at,
            seconds(policy, g, n_prompts * pt, n_prompts * k * at), g, shards=n)  # fmt: skip
        sizes, _ = _candidates(rundir, policy, k, n_prompts)
        study = cfg["ranker_study"]
        for r in cfg["rankers"].values():
            # the main ranking (sharded as configured) and the ranker study's (one job, maybe fewer prompts)
            for rule, part, n, procedure in (
                ("rank", sizes, r.get("shards", 1), r.get("procedure")),
                ("rank_study", sizes[: study.get("prompts") or None], 1, study["procedure"]),
            ):
                cand = sum(part)
                if not ranker_kind(r).pairwise:
                    g = sizing.model_gpus(cfg, r["model"])
                    add(rule, n, len(part), 0, cand * (pt + at), 0,
                        seconds(r["model"], g, cand * (pt + at)), g, shards=n)  # fmt: skip
                    continue
                j = r["judge"]
                calls = 2 * sum(_comparisons(procedure, c) for c in part)
                judge_tok = calls * (tok.get("judge_template", 0) + pt + 2 * at)
                reply = calls * _reply_tokens(j, "pairwise")
                g = sizing.judge_gpus(cfg, j)
                api = spec(j["backend"]).endpoint
                model = j.get("model") if not api else None
                add(f"{rule}_ipr", n, len(part), calls, judge_tok, reply, seconds(model, g, judge_tok, reply), g,
                    _price(p, j.get("model"), judge_tok, reply) if api else None, shards=n)  # fmt: skip
    trained, evaluated = cells(cfg)
    steps = {}
    from harness.training import objectives

    referenced = [c for c in trained if objectives.needs_reference(cfg["regularizers"][c[2]]["kind"])]
    for policy, ranker in dict.fromkeys((c[0], c[1]) for c in referenced):
        pairs, _ = _pairs(rundir, policy, ranker, n_prompts)
        g = sizing.model_gpus(cfg, policy)
        add(
            "reference_logps",
            1,
            pairs,
            0,
            2 * pairs * (pt + at),
            0,
            seconds(policy, g, 2 * pairs * (pt + at)),
            g,
        )
    t = cfg["training"]
    for c in trained:
        pairs, _ = _pairs(rundir, c[0], c[1], n_prompts)
        g = sizing.training_gpus(cfg, c[0])
        per_pair = objectives.get(cfg["regularizers"][c[2]]["kind"]).examples_per_pair
        steps["/".join(map(str, c[:3])) + f"/seed{c[3]}"] = train_steps(pairs * per_pair, t, g)
        tokens = t["num_train_epochs"] * 2 * pairs * (pt + at)
        add("train", 1, pairs, 0, tokens, 0, seconds(c[0], g, 0, 0, tokens), g)
    for bench, b in cfg["evaluation"].items():
        models = [(pol, "base") for pol in cfg["policies"]] + [(c[0], "cell") for c in cells(cfg, bench)[1]]
        if not get(bench).judged:  # lm-eval's tasks, sized by plan.<benchmark> (prefill of every request)
            sizes = p.get(bench, {})
            sized = [sizes.get(t["name"]) for t in b["tasks"]]
            known = all(isinstance(z, dict) for z in sized) and bool(sized)
            prefill = sum(z["docs"] * z["requests"] * z["prompt_tokens"] for z in sized) if known else 0
            decode = sum(z["docs"] * z.get("answer_tokens", 0) for z in sized) if known else 0
            docs = sum(z["docs"] for z in sized) if known else 0
            for policy, _ in models:
                g = sizing.model_gpus(cfg, policy)
                secs = seconds(policy, g, prefill, decode) if known else None
                add(bench, 1, docs, 0, prefill, decode, secs, g)
            continue
        if get(bench).length_controlled:
            from harness.evaluation.lc import lc_group, lc_resolved

            groups = {lc_group(cfg, pol) for pol in cfg["policies"] if lc_resolved(cfg, pol) == "joint"}
            for _ in groups:
                add("lc_difficulty", 1, 0)
        n_eval = _count(b[get(bench).prompts], bench, counts) or 0
        turns = get(bench).turns
        gen = b.get("generation", {})
        e_at = tok.get("eval_answer", at)
        for policy, _ in models:
            g, n = sizing.model_gpus(cfg, policy), gen.get("shards", 1)
            add("generate", n, n_eval, 0, turns * n_eval * pt, turns * n_eval * e_at,
                seconds(policy, g, turns * n_eval * pt, turns * n_eval * e_at), g, shards=n)  # fmt: skip
            calls = n_eval * turns * get(bench).games
            kind = (
                "rating"
                if get(bench).rating
                else "verdict"
                if get(bench).judge_prompts_in_data
                else "pairwise"
            )
            frame = tok.get("judge_template", 0)  # Arena-Hard's own system prompt and template: longer
            frame = tok.get("verdict_template", frame) if kind == "verdict" else frame
            judge_tok = calls * (frame + pt + 2 * e_at)
            reply = calls * _reply_tokens(b.get("judge", {}), kind, tok)
            api = "annotator" in b or spec(b["judge"]["backend"]).endpoint
            name = b["annotator"]["name"] if "annotator" in b else b["judge"].get("model")
            g = sizing.eval_judge_gpus(cfg, bench)
            add("judge", 1, n_eval, calls, judge_tok, reply,
                None if api else seconds(name, g, judge_tok, reply), g,
                _price(p, name, judge_tok, reply) if api else None)  # fmt: skip
    for rule, row in stages.items():
        limit = limits.get(rule, limits.get("default"))
        row["limit_hours"] = limit / 60 if limit else None
        row["over_limit"] = bool(limit and row["job_hours"] > limit / 60)
    return {
        "stages": stages,
        "train_steps": steps,
        "gpu_hours": sum(r["gpu_hours"] for r in stages.values()),
        "api_cost": sum(r["api_cost"] or 0.0 for r in stages.values()),
        "over_limit": sorted(r for r, row in stages.items() if row["over_limit"]),
    }


def _reply_tokens(judge: dict, kind: str, tok: dict | None = None) -> float:
    """The tokens a judge's reply takes: one with log-prob verdicts; an explained verdict (Arena-Hard)
    the estimate plan.tokens.verdict_reply, at most its cap; else the cap: reply_tokens or the default."""
    if judge.get("verdict") == "logprobs":
        return 1
    cap = judge.get("reply_tokens") or JUDGE_REPLY_TOKENS[kind]
    if kind == "verdict" and (tok or {}).get("verdict_reply") is not None:
        return min(cap, tok["verdict_reply"])
    return cap


def _price(p: dict, model: str | None, prompt_tokens: float, reply_tokens: float) -> float | None:
    price = p.get("prices", {}).get(model or "")
    if not price:
        return None
    return (prompt_tokens * price["input_per_mtok"] + reply_tokens * price["output_per_mtok"]) / 1e6


def profile_limits(profile: Path) -> dict:
    """Rule -> runtime (minutes) from a Snakemake profile's set-resources, plus ``default``."""
    import yaml

    if not profile.exists():
        return {}
    prof = yaml.safe_load(profile.read_text()) or {}
    out = {r: v["runtime"] for r, v in (prof.get("set-resources") or {}).items() if "runtime" in v}
    if "runtime" in (prof.get("default-resources") or {}):
        out["default"] = prof["default-resources"]["runtime"]
    return out


def render(result: dict, p: dict) -> str:
    """The plan as a Markdown table with the assumptions and their sources under it."""

    def num(x, nd=1):
        return "—" if x is None else (f"{x:,.0f}" if abs(x) >= 100 or nd == 0 else f"{x:,.{nd}f}")

    head = "| stage | jobs | prompts | judge calls | prompt tokens | answer tokens | GPU-hours | API cost | longest job (h) | limit (h) |"
    lines = [head, "|" + "---|" * 10]
    for rule, r in result["stages"].items():
        flag = " **over**" if r["over_limit"] else ""
        cost = "—" if r["api_cost"] is None else f"${r['api_cost']:,.0f}"
        lines.append(
            f"| {rule} | {r['jobs']} | {r['prompts']:,} | {r['judge_calls']:,} | {num(r['prompt_tokens'], 0)}"
            f" | {num(r['answer_tokens'], 0)} | {num(r['gpu_hours']) if r['estimated'] else '—'}"
            f" | {cost}"
            f" | {num(r['job_hours'], 2) if r['estimated'] else '—'}{flag} | {num(r['limit_hours'])} |"
        )
    lines.append("")
    lines.append(f"Total: {result['gpu_hours']:,.0f} GPU-hours, ${result['api_cost']:,.0f} of API calls.")
    if result["over_limit"]:
        lines.append(
            f"Past the profile's time limit: {', '.join(result['over_limit'])} (raise `shards` or the limit)."
        )
    else:
        lines.append("No job is past its profile time limit.")
    steps = result["train_steps"]
    if steps:
        lines.append(
            f"Training steps per job: {min(steps.values())} to {max(steps.values())} ({len(steps)} jobs)."
        )
    lines.append("")
    lines.append("Assumptions (config `plan`):")
    for key in ("gpu", "mfu", "tokens", "counts", "params_b", "prices"):
        if key in p:
            lines.append(f"- {key}: {json.dumps(p[key], sort_keys=True)}")
    return "\n".join(lines) + "\n"


# The README's plan of the paper config, between these two lines: one generated source for its cost
# figures (`python -m harness plan --configfile config/config.yaml --readme README.md` rewrites it;
# tests/test_plan.py checks that it is what the plan gives now).
README_BEGIN = (
    "<!-- generated by: python -m harness plan --configfile config/config.yaml --readme README.md -->"
)
README_END = "<!-- end of the generated plan -->"


def summary(rendered: str) -> str:
    """The table and its totals, without the assumptions under them."""
    return rendered.split("\nAssumptions")[0].rstrip() + "\n"


def readme_block(text: str, where: str = "README.md") -> tuple[int, int]:
    """Where the generated plan sits in ``text`` (start and end of what lies between the markers)."""
    from harness.core.io import marked_block

    return marked_block(text, README_BEGIN, README_END, where)


def update_readme(path: Path, block: str) -> bool:
    """Put ``block`` between the README's markers; whether anything changed."""
    from harness.core.io import replace_marked_block

    return replace_marked_block(path, README_BEGIN, README_END, block)
