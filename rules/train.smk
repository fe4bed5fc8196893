# Stage 3: reference log-probs once per pairs file (for the objectives that read them); one training
# job per policy x ranker x objective x seed (harness/training/objectives.py: DPO, NLL, BCR, DPOP, baselines).


rule reference_logps:
    input:
        config=job_config("reference_logps", "{policy}/{ranker}"),
        pairs=out("pairs", file="pairs.jsonl"),
        models=lambda wc: T.built_models([wc.policy]),
    output:
        out("ref_logps"),
    log:
        run_path("logs/reference_logps/{policy}/{ranker}.log"),
    benchmark:
        timing("reference_logps", "{policy}/{ranker}")
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
        pairs=out("pairs", file="pairs.jsonl"),
        # none for reference-free objectives (SimPO, CPO, ORPO, ...)
        reference=lambda wc: T.reference(wc.policy, wc.ranker, wc.regularizer) or [],
        models=lambda wc: T.built_models([wc.policy]),
        deepspeed=[d for d in [config["training"]["deepspeed"]] if d],  # an edit reruns training
    output:
        model=directory(out("checkpoint")),
        log=out("training", model=CELL, file="train_log.jsonl"),
        summary=out("training", model=CELL, file="summary.json"),
    log:
        run_path(f"logs/train/{{policy}}/{CELL}.log"),
    benchmark:
        timing("train", f"{{policy}}/{CELL}")
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
