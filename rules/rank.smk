# Stage 2: K completions -> one chosen/rejected pair per prompt: `rank` for reward models, `rank_ipr`
# (the same step) for judge rankers, which a profile can size for a 70B-class judge.


rule rank:
    input:
        config=job_config("rank", "{policy}/{ranker}"),
        completions="results/completions/{policy}/completions.jsonl",
        models=lambda wc: built_models_input(ranker_models(wc.ranker)),
    output:
        pairs="results/pairs/{policy}/{ranker}/pairs.jsonl",
        judgments="results/pairs/{policy}/{ranker}/judgments.jsonl",
        meta="results/pairs/{policy}/{ranker}/pairs.meta.json",
    log:
        "logs/rank/{policy}/{ranker}.log",
    benchmark:
        "benchmarks/rank/{policy}/{ranker}.tsv"
    wildcard_constraints:
        ranker=RM_RANKERS,
    conda:
        "../envs/train.yaml"
    resources:
        **sized(GPUS["ranker"]),
        api_jobs=lambda wc: ranker_api(wc.ranker),  # `--resources api_jobs=N` caps API-judge jobs
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        step_version=2,  # 2: IPR makes no pair where every comparison was a tie
    shell:
        "{params.run} -m harness rank --config {input.config}"
        " --completions {input.completions} --output {output.pairs}"
        " --judgments {output.judgments} --meta {output.meta}"
        " --cache results/cache/rank/{wildcards.policy}/{wildcards.ranker}.jsonl > {log} 2>&1"


use rule rank as rank_ipr with:
    wildcard_constraints:
        ranker=IPR_RANKERS,
    conda:
        "../envs/sample.yaml"  # the vLLM stack, for a vllm judge
