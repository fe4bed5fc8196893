# Stage 1: models built from code (demo), converted from GGUF files and fine-tuned (the demo's base
# policy and reward model),
# datasets in local record format, K samples per prompt.


rule build_tiny_models:
    input:
        config=job_config("build", "tiny"),
        corpus=config.get("tiny_tokenizer", {}).get("corpus", []),
    output:
        directory(RUN_DIR + "/models/tiny"),
    log:
        RUN_DIR + "/logs/build_tiny_models/tiny.log",
    conda:
        "../envs/train.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness build-tiny-models --config {input.config} --output {output} > {log} 2>&1"


rule convert_gguf:
    input:
        config=job_config("convert", "{converted}"),
    output:
        directory(RUN_DIR + "/models/gguf/{converted}"),
    log:
        RUN_DIR + "/logs/convert_gguf/{converted}.log",
    conda:
        "../envs/train.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness convert-gguf --config {input.config} --output {output} > {log} 2>&1"


rule finetune:
    input:
        config=job_config("finetune", "{tuned}"),
        data=RUN_DIR + "/data/finetune/{tuned}.jsonl",
        models=lambda wc: built_models_input([wc.tuned], tuned=False),
    output:
        model=directory(RUN_DIR + "/models/tuned/{tuned}"),
        summary=RUN_DIR + "/models/tuned/{tuned}.summary.json",
    log:
        RUN_DIR + "/logs/finetune/{tuned}.log",
    benchmark:
        RUN_DIR + "/benchmarks/finetune/{tuned}.tsv"
    conda:
        "../envs/train.yaml"
    resources:
        **sized(lambda wc: GPUS["model"](wc.tuned)),
    params:
        run=lambda wc, resources: run_harness(resources.gpu, processes=True),
        step_version=1,
    shell:
        "{params.run} -m harness finetune --config {input.config} --data {input.data}"
        " --output {output.model} --summary {output.summary} > {log} 2>&1"


rule prepare_data:
    input:
        config=job_config("prepare", "{dataset_file}"),
        source=lambda wc: source_input(
            jobs.resolve(config, "prepare", wc.dataset_file, PATHS)["source"]
        ),
    output:
        RUN_DIR + "/data/{dataset_file}",
    log:
        RUN_DIR + "/logs/prepare_data/{dataset_file}.log",
    conda:
        "../envs/evaluate.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness prepare-data --config {input.config} --output {output} > {log} 2>&1"


rule sample:
    input:
        config=job_config("sample", "{policy}"),
        prompts=RUN_DIR + "/data/prompts.jsonl",
        models=lambda wc: built_models_input([wc.policy]),
    output:
        completions=RUN_DIR + "/completions/{policy}/completions.jsonl",
        meta=RUN_DIR + "/completions/{policy}/completions.meta.json",
    log:
        RUN_DIR + "/logs/sample/{policy}.log",
    benchmark:
        RUN_DIR + "/benchmarks/sample/{policy}.tsv"
    wildcard_constraints:
        policy=POLICIES if SAMPLE_SHARDS == 1 else NEVER,
    conda:
        "../envs/sample.yaml"
    resources:
        **sized(lambda wc: GPUS["model"](wc.policy)),
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        shard="",
        step_version=1,
    shell:
        "{params.run} -m harness sample --config {input.config} {params.shard}"
        " --prompts {input.prompts} --output {output.completions} --meta {output.meta} > {log} 2>&1"


# sampling.shards > 1: one job per part of the prompts, then one merge job
use rule sample as sample_shard with:
    output:
        completions=RUN_DIR + "/completions/{policy}/shards/{shard}-of-{shards}.jsonl",
        meta=RUN_DIR + "/completions/{policy}/shards/{shard}-of-{shards}.meta.json",
    log:
        RUN_DIR + "/logs/sample/{policy}/{shard}-of-{shards}.log",
    benchmark:
        RUN_DIR + "/benchmarks/sample/{policy}/{shard}-of-{shards}.tsv"
    wildcard_constraints:
        policy=POLICIES,
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        shard=lambda wc: f"--shard {wc.shard}/{wc.shards}",
        step_version=1,


rule merge_completions:
    input:
        shards=lambda wc: shard_paths(
            RUN_DIR + "/completions/{policy}/shards/{shard}-of-{shards}.jsonl",
            SAMPLE_SHARDS,
            policy=wc.policy,
        ),
        metas=lambda wc: shard_paths(
            RUN_DIR + "/completions/{policy}/shards/{shard}-of-{shards}.meta.json",
            SAMPLE_SHARDS,
            policy=wc.policy,
        ),
    output:
        completions=RUN_DIR + "/completions/{policy}/completions.jsonl",
        meta=RUN_DIR + "/completions/{policy}/completions.meta.json",
    log:
        RUN_DIR + "/logs/merge_completions/{policy}.log",
    wildcard_constraints:
        policy=NEVER if SAMPLE_SHARDS == 1 else POLICIES,
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness merge --inputs {input.shards} --metas {input.metas}"
        " --output {output.completions} --meta {output.meta} > {log} 2>&1"
