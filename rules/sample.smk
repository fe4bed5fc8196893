# Stage 1: models built from code (demo), datasets in local record format, K samples per prompt.


rule build_tiny_models:
    input:
        config=job_config("build", "tiny"),
        corpus=config.get("tiny_tokenizer", {}).get("corpus", []),
    output:
        directory("results/models/tiny"),
    log:
        "logs/build_tiny_models/tiny.log",
    conda:
        "../envs/train.yaml"
    params:
        step_version=1,
    shell:
        "python -m harness build-tiny-models --config {input.config} --output {output} > {log} 2>&1"


rule prepare_data:
    input:
        config=job_config("prepare", "{dataset_file}"),
        source=lambda wc: source_input(
            jobs.resolve(config, "prepare", wc.dataset_file, PATHS)["source"]
        ),
    output:
        "results/data/{dataset_file}",
    log:
        "logs/prepare_data/{dataset_file}.log",
    conda:
        "../envs/evaluate.yaml"
    params:
        step_version=1,
    shell:
        "python -m harness prepare-data --config {input.config} --output {output} > {log} 2>&1"


rule sample:
    input:
        config=job_config("sample", "{policy}"),
        prompts="results/data/prompts.jsonl",
        models=lambda wc: built_models_input([wc.policy]),
    output:
        completions="results/completions/{policy}/completions.jsonl",
        meta="results/completions/{policy}/completions.meta.json",
    log:
        "logs/sample/{policy}.log",
    benchmark:
        "benchmarks/sample/{policy}.tsv"
    conda:
        "../envs/sample.yaml"
    resources:
        gpu=1,
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        step_version=1,
    shell:
        "{params.run} -m harness sample --config {input.config}"
        " --prompts {input.prompts} --output {output.completions} --meta {output.meta} > {log} 2>&1"
