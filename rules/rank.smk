# Stage 2: K completions -> one chosen/rejected pair per prompt: `rank` for reward models, `rank_ipr`
# (the same step) for judge rankers, which a profile can size for a 70B-class judge.


PAIRS = {
    "pairs": out("pairs", file="pairs.jsonl"),
    "judgments": out("pairs", file="judgments.jsonl"),
    "meta": out("pairs", file="pairs.meta.json"),
}
# rankers.<name>.shards > 1: one job per part of the prompts (each with its own judge-call cache),
# then one merge job
RANK_SHARDS = lambda wc: T.ranker_shards(wc.ranker)
PAIRS_SHARD = {
    "pairs": out("pairs", file=f"shards/{SHARD}.pairs.jsonl"),
    "judgments": out("pairs", file=f"shards/{SHARD}.judgments.jsonl"),
    "meta": out("pairs", file=f"shards/{SHARD}.meta.json"),
}


rule rank:
    input:
        config=job_config("rank", "{policy}/{ranker}"),
        completions=out("completions", file="completions.jsonl"),
        models=lambda wc: T.built_models(T.ranker_models(wc.ranker)),
    output:
        **PAIRS,
    log:
        run_path("logs/rank/{policy}/{ranker}.log"),
    benchmark:
        timing("rank", "{policy}/{ranker}")
    wildcard_constraints:
        ranker=T.rankers_where(pairwise=False, sharded=False),
    conda:
        "../envs/train.yaml"
    resources:
        **sized(GPUS["ranker"]),
        api_jobs=lambda wc: ranker_api(wc.ranker),  # `--resources api_jobs=N` caps API-judge jobs
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        shard="",
        cache=shared_path("cache/rank/{policy}/{ranker}.jsonl"),
        # 2: IPR makes no pair where every comparison was a tie; 3: reward-model batches stay inside
        # chunks of batch_size prompts (shards cut there)
        step_version=3,
    shell:
        "{params.run} -m harness rank --config {input.config} {params.shard}"
        " --completions {input.completions} --output {output.pairs}"
        " --judgments {output.judgments} --meta {output.meta} --cache {params.cache} > {log} 2>&1"


use rule rank as rank_ipr with:
    wildcard_constraints:
        ranker=T.rankers_where(pairwise=True, sharded=False),
    conda:
        "../envs/sample.yaml"  # the vLLM stack, for a vllm judge


use rule rank as rank_shard with:
    output:
        **PAIRS_SHARD,
    log:
        run_path(f"logs/rank/{{policy}}/{{ranker}}/{SHARD}.log"),
    benchmark:
        timing("rank", f"{{policy}}/{{ranker}}/{SHARD}")
    wildcard_constraints:
        ranker=T.rankers_where(pairwise=False, sharded=True),
    conda:
        "../envs/train.yaml"
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        shard=lambda wc: f"--shard {wc.shard}/{wc.shards}",
        cache=shared_path(f"cache/rank/{{policy}}/{{ranker}}/{SHARD}.jsonl"),
        step_version=3,


use rule rank_shard as rank_ipr_shard with:
    wildcard_constraints:
        ranker=T.rankers_where(pairwise=True, sharded=True),
    conda:
        "../envs/sample.yaml"


rule merge_pairs:
    input:
        pairs=shards_of(PAIRS_SHARD["pairs"], RANK_SHARDS),
        judgments=shards_of(PAIRS_SHARD["judgments"], RANK_SHARDS),
        metas=shards_of(PAIRS_SHARD["meta"], RANK_SHARDS),
    output:
        **PAIRS,
    log:
        run_path("logs/merge_pairs/{policy}/{ranker}.log"),
    wildcard_constraints:
        ranker=T.rankers_where(sharded=True),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness merge --inputs {input.judgments} --output {output.judgments} > {log} 2>&1"
        " && python -m harness merge --inputs {input.pairs} --metas {input.metas}"
        " --output {output.pairs} --meta {output.meta} >> {log} 2>&1"
