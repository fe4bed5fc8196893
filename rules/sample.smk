# Stage 1: models built from code (demo), converted from GGUF files and fine-tuned (the demo's base
# policy and reward model),
# datasets in local record format, K samples per prompt.


rule build_tiny_models:
    input:
        config=job_config("build_tiny_models", "tiny"),
        corpus=config.get("tiny_tokenizer", {}).get("corpus", []),
    output:
        directory(out("built_models")),
    log:
        run_path("logs/build_tiny_models/tiny.log"),
    conda:
        "../envs/train.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness build-tiny-models --config {input.config} --output {output} > {log} 2>&1"


rule convert_gguf:
    """Once for every run: results/shared/models/gguf/<file stem>.<digest of its bytes and scorer>."""
    input:
        config=job_config("convert_gguf", "{gguf_key}", shared=True),
    output:
        directory(shared_path("models/gguf/{gguf_key}")),
    log:
        shared_path("logs/convert_gguf/{gguf_key}.log"),
    conda:
        "../envs/train.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness convert-gguf --config {input.config} --output {output} > {log} 2>&1"


localrules:
    converted_model,


rule converted_model:
    """The run's models/gguf/<name>: hard links to the shared conversion (no second 540 MB)."""
    input:
        lambda wc: shared_path(f"models/gguf/{converted_key(wc.converted)}"),
    output:
        directory(out("converted_model", name="{converted}")),
    log:
        run_path("logs/converted_model/{converted}.log"),
    conda:
        "../envs/train.yaml"
    resources:
        **sized(0),
    shell:
        "python -m harness link-model --source {input} --output {output} > {log} 2>&1"


rule finetune:
    input:
        config=job_config("finetune", "{tuned}"),
        data=run_path("data/finetune/{tuned}.jsonl"),
        models=lambda wc: T.built_models([wc.tuned], tuned=False),
    output:
        model=directory(out("tuned_model", name="{tuned}")),
        summary=run_path("models/tuned/{tuned}.summary.json"),
    log:
        run_path("logs/finetune/{tuned}.log"),
    benchmark:
        timing("finetune", "{tuned}")
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
        config=job_config("prepare_data", "{dataset_file}"),
        source=lambda wc: source_input(
            jobs.resolve(config, "prepare_data", wc.dataset_file, PATHS)["source"]
        ),
    output:
        out("data", file="{dataset_file}"),
    log:
        run_path("logs/prepare_data/{dataset_file}.log"),
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
        prompts=out("data", file="prompts.jsonl"),
        models=lambda wc: T.built_models([wc.policy]),
    output:
        completions=out("completions", file="completions.jsonl"),
        meta=out("completions", file="completions.meta.json"),
    log:
        run_path("logs/sample/{policy}.log"),
    benchmark:
        timing("sample", "{policy}")
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
SAMPLE_SHARD = {
    "completions": out("completions", file=f"shards/{SHARD}.jsonl"),
    "meta": out("completions", file=f"shards/{SHARD}.meta.json"),
}


use rule sample as sample_shard with:
    output:
        **SAMPLE_SHARD,
    log:
        run_path(f"logs/sample/{{policy}}/{SHARD}.log"),
    benchmark:
        timing("sample", f"{{policy}}/{SHARD}")
    wildcard_constraints:
        policy=POLICIES,
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        shard=lambda wc: f"--shard {wc.shard}/{wc.shards}",
        step_version=1,


rule merge_completions:
    input:
        shards=shards_of(SAMPLE_SHARD["completions"], lambda wc: SAMPLE_SHARDS),
        metas=shards_of(SAMPLE_SHARD["meta"], lambda wc: SAMPLE_SHARDS),
    output:
        completions=out("completions", file="completions.jsonl"),
        meta=out("completions", file="completions.meta.json"),
    log:
        run_path("logs/merge_completions/{policy}.log"),
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
