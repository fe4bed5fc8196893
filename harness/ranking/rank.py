"""Step `rank`: turn K completions per prompt into one chosen/rejected pair.

Candidate policy (counted in the meta file, never silent): empty completions are not ranked; of
identical completions only the first is ranked; length-truncated completions are ranked like any
other (they are what the policy produces) and counted. A prompt with fewer than two candidates left,
or whose chosen and rejected tie under a reward model, yields no pair.

Each ranker gives a best-first order of the candidates (a reward model by score; IPR by its
procedure); the pair strategy (``choose_pair``) then picks chosen and rejected from that order.
"""

from __future__ import annotations

import logging
import random
import time

from harness.core.io import write_json, write_jsonl
from harness.core.provenance import provenance
from harness.core.records import load_completions, pair_record
from harness.core.seeding import subseed
from harness.core.shards import take
from harness.ranking import ipr, kinds

log = logging.getLogger(__name__)


def candidates(pc) -> tuple[list[int], dict]:
    """Indices of the completions that take part in ranking, and counts of what was left out."""
    keep, seen, counts = [], set(), {"empty": 0, "duplicate": 0, "truncated": 0}
    for i, c in enumerate(pc.completions):
        if not c.text.strip():
            counts["empty"] += 1
            continue
        if c.text in seen:
            counts["duplicate"] += 1
            continue
        seen.add(c.text)
        counts["truncated"] += c.finish_reason == "length"
        keep.append(i)
    return keep, counts


def _encode(tok, texts: list[str], context: int | None, counts: dict):
    """A batch for the scorer; a conversation past the scorer's context is cut to it (from the right,
    as the tokenizer cuts) and counted in ``counts['truncated']``."""
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    if context is not None:
        counts["truncated"] += sum(len(x) > context for x in ids)
        ids = [x[:context] for x in ids]
    return tok.pad({"input_ids": ids}, return_tensors="pt", padding=True)


def score_reward_model(
    model_ref: dict,
    conversations: list[list[dict]],
    batch_size: int,
    breaks: list[int] | None = None,
    counts: dict | None = None,
) -> list[float]:
    """One scalar per conversation from an ``AutoModelForSequenceClassification`` scorer.

    ``breaks``: conversation indices where a new batch must start (chunk boundaries), so that a
    shard's batches are the unsharded run's batches and its scores the same floats. ``counts``
    receives ``truncated``: conversations cut to the scorer's context.
    """
    counts = {} if counts is None else counts
    counts.setdefault("truncated", 0)
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification

    from harness.backends.hf import load_pretrained, load_tokenizer, torch_dtype

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = load_tokenizer(model_ref)
    tok.padding_side = "right"
    dtype = torch_dtype(model_ref.get("dtype"))
    # a causal LM loads here with a newly initialised `score` head: refused, naming the weights
    model = load_pretrained(AutoModelForSequenceClassification, model_ref, role="reward model", dtype=dtype)
    model = model.to(device).eval()
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    texts = [tok.apply_chat_template(c, tokenize=False) for c in conversations]
    context = getattr(model.config, "max_position_embeddings", None)
    scores: list[float] = []
    with torch.no_grad():
        edges = sorted({0, len(texts), *(breaks or [])})
        spans = [
            (s, min(s + batch_size, b))
            for a, b in zip(edges, edges[1:], strict=False)
            for s in range(a, b, batch_size)
        ]
        for start, end in tqdm(spans, desc="reward model", unit="batch"):
            enc = _encode(tok, texts[start:end], context, counts).to(device)
            out = model(**enc)
            # ArmoRM's remote code returns `.score`; standard heads return `.logits` [batch, 1]
            values = getattr(out, "score", None)
            values = out.logits if values is None else values
            scores.extend(values.float().reshape(len(enc["input_ids"]), -1)[:, 0].tolist())
    return scores


def align(job: dict) -> int:
    """Prompts per chunk that shards are cut at: a reward model scores each chunk of ``batch_size``
    prompts in batches of its own; IPR judges each prompt on its own (any cut)."""
    return 1 if kinds.kind(job["ranker"]).pairwise else job["ranker"]["batch_size"]


def _rank_reward_model(job, groups, cache=None):
    convs, owners, breaks, chunk = [], [], [], align(job)
    for g, (pc, keep) in enumerate(groups):
        if g % chunk == 0:
            breaks.append(len(convs))
        for i in keep:
            convs.append(
                [
                    {"role": "user", "content": pc.prompt},
                    {"role": "assistant", "content": pc.completions[i].text},
                ]
            )
            owners.append((g, i))
    scored: dict = {}  # score_reward_model fills in "truncated"
    flat = (
        score_reward_model(job["ranker"]["model"], convs, job["ranker"]["batch_size"], breaks, scored)
        if convs
        else []
    )
    per_group = [dict() for _ in groups]
    for (g, i), s in zip(owners, flat, strict=True):
        per_group[g][i] = s
    orders, records = [], []
    for pc, scores in zip((pc for pc, _ in groups), per_group, strict=True):
        records.append(
            {"prompt_id": pc.id, "kind": "score", "scores": {str(k): v for k, v in scores.items()}}
        )
        orders.append(sorted(scores, key=lambda i: (-scores[i], i)) if len(scores) >= 2 else None)
    stats = {"reward_model_calls": len(convs), "reward_model_truncated": scored.get("truncated", 0)}
    return orders, per_group, records, stats


def _rank_ipr(job, groups, cache=None):
    from harness.ranking.judge import PairwiseJudge

    judge = PairwiseJudge.from_config(job["ranker"]["judge"], cache)

    def judge_round(batch):
        triples = []
        for g, req in batch:
            pc, keep = groups[g]
            a, b = pc.completions[keep[req.i]].text, pc.completions[keep[req.j]].text
            triples += [(pc.prompt, a, b), (pc.prompt, b, a)]
        p = judge.prob_a(triples, desc=f"ipr round ({len(batch)} comparisons)")
        return [(p[2 * n], 1.0 - p[2 * n + 1]) for n in range(len(batch))]

    procedure = ipr.PROCEDURES[job["ranker"]["procedure"]]
    results, verdicts, rounds = ipr.run_batched([len(keep) for _, keep in groups], judge_round, procedure)
    orders, records = [], []
    for (pc, keep), res, vs in zip(groups, results, verdicts, strict=True):
        for v in vs:  # indices in the record are positions among all K completions
            rec = v.to_dict()
            rec.update(prompt_id=pc.id, kind="pairwise", i=keep[v.i], j=keep[v.j], winner=keep[v.winner])
            records.append(rec)
        orders.append(None if res is None else [keep[i] for i in res])
    flat = [v for vs in verdicts for v in vs]
    stats = {
        **judge.stats(),
        "judge_prompts": 2 * len(flat),
        "judge_rounds": rounds,
        "comparisons": len(flat),
        "ties": sum(v.tie for v in flat),
        "position_flips": sum((v.p_i_as_a > 0.5) != (v.p_i_as_b > 0.5) for v in flat),
    }
    return orders, [None] * len(groups), records, stats


RANKERS = {"reward_model": _rank_reward_model, "ipr": _rank_ipr}


def choose_pair(order, scores, pairs: dict, prompt_id: str, seed: int):
    """(chosen, rejected) from a best-first ``order``, or None and the reason (counted in meta).

    best_worst: first vs last. best_random: first vs a random other, drawn from (prompt id, seed).
    With reward-model ``scores``, equal scores make no pair ("tied"), and a margin below
    ``min_margin`` makes none ("below_margin"). (IPR's own "tied": see ``run``.)
    """
    if order is None or len(order) < 2:
        return None, "too_few_candidates"
    best = order[0]
    if pairs["strategy"] == "best_worst":
        rejected = order[-1]
    else:
        rejected = random.Random(subseed("pair", prompt_id, seed)).choice(order[1:])
    if scores is not None:
        margin = scores[best] - scores[rejected]
        if margin <= 0:
            return None, "tied"
        if pairs.get("min_margin") is not None and margin < pairs["min_margin"]:
            return None, "below_margin"
    return (best, rejected), None


def run(
    job: dict,
    completions_path: str,
    output: str,
    judgments: str,
    meta: str,
    cache: str | None = None,
    rankings: str | None = None,
    shard: str | None = None,
) -> None:
    """Rank the completions in ``completions_path``; write pairs, per-prompt judgments and meta.

    ``cache``: a judge-call cache file (IPR); a rerun after a crash pays only the calls not yet made.
    ``rankings``: also write each prompt's best-first order (completion indices) and scores.
    ``shard``: "i/N", only the i-th part of the prompts (cut at multiples of ``align``).
    """
    started = time.time()
    data = take(load_completions(completions_path), shard, align(job))
    if job["ranker"].get("limit"):  # the ranker study on the first N prompts
        data = data[: job["ranker"]["limit"]]
    groups, counts = [], {"empty": 0, "duplicate": 0, "truncated": 0}
    for pc in data:
        keep, c = candidates(pc)
        groups.append((pc, keep))
        for key in counts:
            counts[key] += c[key]
    kind = job["ranker"]["kind"]
    pairwise = kinds.kind(job["ranker"]).pairwise
    orders, scores, records, stats = RANKERS[kind](job, groups, cache)
    # IPR: a prompt whose every comparison was a tie (the judge preferred nothing) makes no pair, as
    # equal reward-model scores make none
    decided = {r["prompt_id"] for r in records if r.get("kind") == "pairwise" and not r["tie"]}
    # a tie broken by the mean probability carries a preference; one at exactly 0.5 (failed, unparsable
    # or undecided in both orders) carries none, and keep_tied never pairs by position alone
    leaning = {
        r["prompt_id"] for r in records if r.get("kind") == "pairwise" and r.get("tie_break") == "mean_prob"
    }
    pairs, no_pair = [], {"too_few_candidates": 0, "tied": 0, "below_margin": 0}
    tied_kept = 0  # pairs.keep_tied: all-tie prompts paired by the ties' mean probabilities
    for (pc, _keep), order, sc in zip(groups, orders, scores, strict=True):
        choice, reason = choose_pair(order, sc, job["ranker"]["pairs"], pc.id, job["seed"])
        if choice is not None and pairwise and pc.id not in decided:
            if job["ranker"]["pairs"].get("keep_tied") and pc.id in leaning:
                tied_kept += 1
            else:
                choice, reason = None, "tied"
        if choice is None:
            no_pair[reason] += 1
            continue
        best, worst = choice
        pairs.append(
            pair_record(
                pc.id,
                pc.prompt,
                pc.completions[best].text,
                pc.completions[worst].text,
                chosen_index=best,
                rejected_index=worst,
            )
        )
    log.info(
        "ranker %s: %d pairs from %d prompts; no pair: %s; left out: %s",
        job["ranker"]["name"],
        len(pairs),
        len(data),
        no_pair,
        counts,
    )
    # the pairs first, the judgments and rankings next, the meta last: a kill between them leaves no
    # meta beside an older pairs file (the workflow reruns the job: its outputs are incomplete)
    write_jsonl(output, pairs)
    write_jsonl(judgments, records)
    if rankings:  # self-contained rows for the ranker study
        by_prompt: dict[str, list] = {}
        for rec in records:
            if rec["kind"] == "pairwise":
                by_prompt.setdefault(rec["prompt_id"], []).append(
                    {k: rec[k] for k in ("i", "j", "winner", "p_i_as_a", "p_i_as_b", "tie")}
                )
        write_jsonl(
            rankings,
            [
                {
                    "policy": job["policy"],
                    "ranker": job["ranker"]["name"],
                    "prompt_id": pc.id,
                    "order": order,
                    "scores": None if sc is None else {str(k): v for k, v in sc.items()},
                    "comparisons": by_prompt.get(pc.id, []),
                }
                for (pc, _keep), order, sc in zip(groups, orders, scores, strict=True)
            ],
        )
    write_json(
        meta,
        {
            "ranker": job["ranker"]["name"],
            "kind": kind,
            "prompts": len(data),
            "pairs": len(pairs),
            "no_pair": no_pair,
            **({"pairs_from_ties": tied_kept} if pairwise else {}),
            "completions_left_out": counts,
            **stats,
            "provenance": provenance(job, started=started),
        },
    )
