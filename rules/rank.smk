# Stage 2: K completions -> one chosen/rejected pair per prompt (reward model or IPR judge).


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
    conda:
        "../envs/train.yaml"
    resources:
        gpu=1,
    params:
        step_version=1,
    shell:
        "HARNESS_GPUS={resources.gpu} python -m harness rank --config {input.config}"
        " --completions {input.completions} --output {output.pairs}"
        " --judgments {output.judgments} --meta {output.meta}"
        " --cache results/cache/rank/{wildcards.policy}/{wildcards.ranker}.jsonl > {log} 2>&1"
