# Stage 3: reference log-probs once per pairs file (for the objectives that read them); one training
# job per policy x ranker x objective x seed (harness/training/objectives.py: DPO, NLL, BCR, DPOP, baselines).


rule reference_logps:
    input:
        config=job_config("reference", "{policy}/{ranker}"),
        pairs=run_path("pairs/{policy}/{ranker}/pairs.jsonl"),
        models=lambda wc: built_models_input([wc.policy]),
    output:
        run_path("reference/{policy}/{ranker}/ref_logps.json"),
    log:
        run_path("logs/reference_logps/{policy}/{ranker}.log"),
    benchmark:
        run_path("benchmarks/reference_logps/{policy}/{ranker}.tsv")
    conda:
        "../envs/train.yaml"
    resources:
        **sized(lambda wc: GPUS["model"](wc.policy)),
    params:
        step_version=1,
        run=lambda wc, resources: run_harness(resources.gpu, processes=True),
    shell:
        "{params.run} -m harness reference-logps --config {input.config}"
        " --pairs {input.pairs} --output {output} > {log} 2>&1"


rule train:
    input:
        config=job_config("train", "{policy}/{ranker}/{regularizer}/seed{seed}"),
        pairs=run_path("pairs/{policy}/{ranker}/pairs.jsonl"),
        reference=reference_input,  # none for reference-free objectives (SimPO, CPO, ORPO, ...)
        models=lambda wc: built_models_input([wc.policy]),
        deepspeed=deepspeed_input(),
    output:
        model=directory(
            run_path("checkpoints/{policy}/{ranker}/{regularizer}/seed{seed}")
        ),
        log=run_path(
            "training/{policy}/{ranker}/{regularizer}/seed{seed}/train_log.jsonl"
        ),
        summary=run_path(
            "training/{policy}/{ranker}/{regularizer}/seed{seed}/summary.json"
        ),
    log:
        run_path("logs/train/{policy}/{ranker}/{regularizer}/seed{seed}.log"),
    benchmark:
        run_path("benchmarks/train/{policy}/{ranker}/{regularizer}/seed{seed}.tsv")
    conda:
        "../envs/train.yaml"
    resources:
        **sized(GPUS["train"]),
    params:
        step_version=3,  # 2: log rows carry their cell; 3: accumulation derived from effective_batch_size
        run=lambda wc, resources: run_harness(resources.gpu, processes=True),
        batch=train_batch,  # shown in a dry run; a GPU count that cannot reach the batch stops the plan
        reference=lambda wc, input: (
            f"--reference {shlex.quote(input.reference)}" if input.reference else ""
        ),
    shell:
        "{params.run} -m harness train --config {input.config} --pairs {input.pairs}"
        " {params.reference} --output {output.model} --log {output.log}"
        " --summary {output.summary} > {log} 2>&1"
