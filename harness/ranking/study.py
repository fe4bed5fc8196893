"""The ranker study: how rankers agree on the same completions, how consistent an LLM judge is, and
how accurate each ranker is on labelled preferences in and out of the reward model's distribution.

Steps: ``gold-accuracy`` (one ranker on one labelled set) and ``study-table`` (everything into
``results/tables/ranker_study.{csv,md}``). Full rankings come from ``rank --rankings`` run with the
study's procedure (round robin by default, so every pair is judged and cycles can be counted).
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from harness.core.io import read_json, read_jsonl, write_json, write_text
from harness.core.provenance import provenance
from harness.core.records import load_preferences
from harness.ranking import kinds
from harness.ranking.ipr import Request, decide, intransitive_triples


def gold_accuracy(job: dict, preferences_path: str, output: str, cache: str | None = None) -> None:
    """Fraction of labelled pairs where the ranker prefers ``chosen``; a tie counts one half."""
    started = time.time()
    prefs = load_preferences(preferences_path)
    ranker = job["ranker"]
    stats: dict = {}
    if not kinds.kind(ranker).pairwise:
        from harness.ranking.rank import score_reward_model

        convs = [
            [{"role": "user", "content": p["prompt"]}, {"role": "assistant", "content": p[side]}]
            for p in prefs
            for side in ("chosen", "rejected")
        ]
        s = score_reward_model(ranker["model"], convs, ranker["batch_size"])
        outcome = [np.sign(s[2 * n] - s[2 * n + 1]) for n in range(len(prefs))]  # +1 right, 0 tie, -1 wrong
    else:
        from harness.ranking.judge import PairwiseJudge

        judge = PairwiseJudge.from_config(ranker["judge"], cache)
        triples = [
            t
            for p in prefs
            for t in ((p["prompt"], p["chosen"], p["rejected"]), (p["prompt"], p["rejected"], p["chosen"]))
        ]
        pa = judge.prob_a(triples, desc=f"gold {job['preference_set']}")
        verdicts = [decide(Request(0, 1, "gold"), pa[2 * n], 1 - pa[2 * n + 1]) for n in range(len(prefs))]
        # a tie broken only because an incumbent must stay is no preference: score it one half
        outcome = [0 if v.tie_break == "incumbent" else (1 if v.winner == 0 else -1) for v in verdicts]
        stats = {**judge.stats(), "ties": sum(v.tie for v in verdicts)}
    outcome = np.asarray(outcome, dtype=float)
    write_json(
        output,
        {
            "ranker": ranker["name"],
            "preference_set": job["preference_set"],
            "distribution": job["distribution"],
            "n": len(prefs),
            "accuracy": float(np.mean((outcome + 1) / 2)),
            "exact_ties": int((outcome == 0).sum()),
            **stats,
            "provenance": provenance(job, started=started),
        },
    )


def kendall_tau(order_a: list[int], order_b: list[int]) -> float:
    """Kendall tau-a between two best-first orders of the same items."""
    pos_b = {x: n for n, x in enumerate(order_b)}
    pairs = list(itertools.combinations(order_a, 2))  # x ranked above y by A
    if not pairs:
        return float("nan")
    concordant = sum(pos_b[x] < pos_b[y] for x, y in pairs)
    return (2 * concordant - len(pairs)) / len(pairs)


def _cycles(comparisons: list[dict]) -> int:
    return intransitive_triples(
        (c["winner"], c["j"] if c["winner"] == c["i"] else c["i"]) for c in comparisons
    )


def _per_ranker(rows: list[dict]) -> dict:
    comps = [c for r in rows for c in r["comparisons"]]
    ranked = [r for r in rows if r["order"]]
    return {
        "prompts": len(ranked),
        # the study's round robin: every pair of completions, both orders (not the pipeline's IPR,
        # whose calls are in results/tables/cost.md)
        "round_robin_judge_calls_per_prompt": 2 * len(comps) / max(len(ranked), 1),
        "position_flip_rate": float(np.mean([(c["p_i_as_a"] > 0.5) != (c["p_i_as_b"] > 0.5) for c in comps]))
        if comps
        else None,
        "intransitive_triples_per_prompt": float(np.mean([_cycles(r["comparisons"]) for r in ranked]))
        if comps
        else None,
    }


def table(job: dict, rankings: list[str], gold: list[str], output_csv: str, output_md: str) -> None:
    import pandas as pd

    started = time.time()
    runs: dict[tuple[str, str], dict[str, dict]] = {}
    for path in rankings:
        for _, row in read_jsonl(path):
            runs.setdefault((row["policy"], row["ranker"]), {})[row["prompt_id"]] = row
    acc: dict[tuple[str, str], list[float]] = {}
    for path in gold:
        g = read_json(path)
        acc.setdefault((g["ranker"], g["distribution"]), []).append(g["accuracy"])

    per = []
    for (policy, ranker), rows in sorted(runs.items()):
        per.append(
            {
                "policy": policy,
                "ranker": ranker,
                **_per_ranker(list(rows.values())),
                "gold_accuracy_in": _mean(acc.get((ranker, "in"))),
                "gold_accuracy_out": _mean(acc.get((ranker, "out"))),
            }
        )
    agree = []
    for (pa, ra), (pb, rb) in itertools.combinations(sorted(runs), 2):
        if pa != pb:
            continue
        shared = [
            k for k in runs[pa, ra] if runs[pa, ra][k]["order"] and (runs[pb, rb].get(k) or {}).get("order")
        ]
        a = [runs[pa, ra][k]["order"] for k in shared]
        b = [runs[pb, rb][k]["order"] for k in shared]
        agree.append(
            {
                "policy": pa,
                "ranker_a": ra,
                "ranker_b": rb,
                "prompts": len(shared),
                "kendall_tau": _mean([kendall_tau(x, y) for x, y in zip(a, b, strict=True)]),
                "top1_agreement": _mean([x[0] == y[0] for x, y in zip(a, b, strict=True)]),
                "bottom1_agreement": _mean([x[-1] == y[-1] for x, y in zip(a, b, strict=True)]),
            }
        )
    per_df, agree_df = pd.DataFrame(per), pd.DataFrame(agree)
    from harness.core.io import atomic_path

    with atomic_path(output_csv) as tmp:
        pd.concat([per_df.assign(table="rankers"), agree_df.assign(table="agreement")]).to_csv(
            tmp, index=False, float_format="%.4f"
        )
    from harness.core.timing import footer

    md = (
        "## Rankers\n\n"
        + _md(per_df)
        + "\n## Agreement between rankers (same completions)\n\n"
        + _md(agree_df)
        + "\nGold accuracy: share of labelled pairs where the ranker prefers the chosen answer (a tie counts "
        "one half), averaged over the sets of each distribution. Judge calls per prompt are this study's round "
        "robin (every pair of completions, both orders); the pipeline's own ranking calls (IPR's procedure, "
        "fewer) are in cost.md beside this table. A reward model makes no judge calls.\n"
        + footer(job, started)
    )
    write_text(output_md, md)


def _mean(values) -> float | None:
    values = [v for v in (values or []) if v == v]
    return float(np.mean(values)) if values else None


def _md(df) -> str:
    if df.empty:
        return "(none)\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = ["—" if v is None or v != v else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
