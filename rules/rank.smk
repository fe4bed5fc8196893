# Stage 2: K completions -> one chosen/rejected pair per prompt: `rank` for reward models, `rank_ipr`
# (the same step) for judge rankers, which a profile can size for a 70B-class judge.


rule rank:
    input:
        config=job_config("rank", "{policy}/{ranker}"),
        completions=run_path("completions/{policy}/completions.jsonl"),
        models=lambda wc: built_models_input(ranker_models(wc.ranker)),
    output:
        pairs=run_path("pairs/{policy}/{ranker}/pairs.jsonl"),
        judgments=run_path("pairs/{policy}/{ranker}/judgments.jsonl"),
        meta=run_path("pairs/{policy}/{ranker}/pairs.meta.json"),
    log:
        run_path("logs/rank/{policy}/{ranker}.log"),
    benchmark:
        run_path("benchmarks/rank/{policy}/{ranker}.tsv")
    wildcard_constraints:
        ranker=RM_RANKERS,
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
        ranker=IPR_RANKERS,
    conda:
        "../envs/sample.yaml"  # the vLLM stack, for a vllm judge


# rankers.<name>.shards > 1: one job per part of the prompts (each with its own judge-call cache),
# then one merge job
use rule rank as rank_shard with:
    output:
        pairs=run_path("pairs/{policy}/{ranker}/shards/{shard}-of-{shards}.pairs.jsonl"),
        judgments=run_path(
            "pairs/{policy}/{ranker}/shards/{shard}-of-{shards}.judgments.jsonl"
        ),
        meta=run_path("pairs/{policy}/{ranker}/shards/{shard}-of-{shards}.meta.json"),
    log:
        run_path("logs/rank/{policy}/{ranker}/{shard}-of-{shards}.log"),
    benchmark:
        run_path("benchmarks/rank/{policy}/{ranker}/{shard}-of-{shards}.tsv")
    wildcard_constraints:
        ranker=RM_SHARDED,
    conda:
        "../envs/train.yaml"
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        shard=lambda wc: f"--shard {wc.shard}/{wc.shards}",
        cache=shared_path("cache/rank/{policy}/{ranker}/{shard}-of-{shards}.jsonl"),
        step_version=3,


use rule rank_shard as rank_ipr_shard with:
    wildcard_constraints:
        ranker=IPR_SHARDED,
    conda:
        "../envs/sample.yaml"


rule merge_pairs:
    input:
        pairs=rank_shards("pairs.jsonl"),
        judgments=rank_shards("judgments.jsonl"),
        metas=rank_shards("meta.json"),
    output:
        pairs=run_path("pairs/{policy}/{ranker}/pairs.jsonl"),
        judgments=run_path("pairs/{policy}/{ranker}/judgments.jsonl"),
        meta=run_path("pairs/{policy}/{ranker}/pairs.meta.json"),
    log:
        run_path("logs/merge_pairs/{policy}/{ranker}.log"),
    wildcard_constraints:
        ranker=SHARDED_RANKERS,
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
