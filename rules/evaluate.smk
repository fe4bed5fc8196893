# Stage 4: answers, judgments and metrics per model (base policy or trained cell) and benchmark.


ANSWERS = {
    "answers": out("eval", file="answers{ext}"),
    "meta": out("eval", file="answers{ext}.meta.json"),
}
# evaluation.<benchmark>.generation.shards > 1: one job per part of the eval set, then one merge job
GEN_SHARDS = lambda wc: T.generation_shards(wc.benchmark)
ANSWERS_SHARD = {
    "answers": out("eval", file=f"shards/{SHARD}/answers{{ext}}"),
    "meta": out("eval", file=f"shards/{SHARD}/answers{{ext}}.meta.json"),
}


rule generate:
    input:
        config=job_config("generate", "{benchmark}/{policy}/{model}"),
        eval_set=lambda wc: T.eval_set(wc.benchmark),
        model=lambda wc: T.checkpoint(wc.policy, wc.model),
        ext_ok=check_ext,
    output:
        **ANSWERS,
    log:
        run_path("logs/generate/{policy}/{model}/{benchmark}{ext}.log"),
    benchmark:
        timing("generate", "{policy}/{model}/{benchmark}{ext}")
    wildcard_constraints:
        benchmark=T.judged_where(sharded=False),
    conda:
        "../envs/sample.yaml"
    resources:
        **sized(GPUS["eval"]),
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        shard="",
        step_version=2,  # 2: a meta file (empty and truncated answers, provenance)
    shell:
        "{params.run} -m harness generate --config {input.config} {params.shard}"
        " --eval-set {input.eval_set} --output {output.answers} --meta {output.meta} > {log} 2>&1"


use rule generate as generate_shard with:
    output:
        **ANSWERS_SHARD,
    log:
        run_path(f"logs/generate/{{policy}}/{{model}}/{{benchmark}}/{SHARD}{{ext}}.log"),
    benchmark:
        timing("generate", f"{{policy}}/{{model}}/{{benchmark}}/{SHARD}{{ext}}")
    wildcard_constraints:
        benchmark=T.judged_where(sharded=True),
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        shard=lambda wc: f"--shard {wc.shard}/{wc.shards}",
        step_version=2,


rule merge_answers:
    input:
        answers=shards_of(ANSWERS_SHARD["answers"], GEN_SHARDS),
        metas=shards_of(ANSWERS_SHARD["meta"], GEN_SHARDS),
    output:
        **ANSWERS,
    log:
        run_path("logs/merge_answers/{policy}/{model}/{benchmark}{ext}.log"),
    wildcard_constraints:
        benchmark=T.judged_where(sharded=True),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness merge --inputs {input.answers} --metas {input.metas}"
        " --output {output.answers} --meta {output.meta} > {log} 2>&1"


rule judge:
    input:
        unpack(lambda wc: T.judge_files(wc.benchmark)),
        config=job_config("judge", "{benchmark}/{policy}/{model}"),
        eval_set=lambda wc: T.judge_reference(wc.policy, wc.benchmark),
        answers=ANSWERS["answers"],
        models=lambda wc: T.built_models(T.eval_judge_models(wc.benchmark)),
    output:
        judgments=out("eval", file="judgments{ext}"),
        meta=out("eval", file="judgments{ext}.meta.json"),
    log:
        run_path("logs/judge/{policy}/{model}/{benchmark}{ext}.log"),
    benchmark:
        timing("judge", "{policy}/{model}/{benchmark}{ext}")
    wildcard_constraints:
        benchmark=T.judged_where(),
    conda:
        "../envs/evaluate.yaml"
    resources:
        **sized(GPUS["judge"]),
        api_jobs=lambda wc: judge_api(wc.benchmark),
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        step_version=2,  # 2: FastChat's MT-Bench templates; alpaca_eval annotators; a meta file
        extra=lambda wc: cli_args(T.judge_files(wc.benchmark)),
        cache=shared_path("cache/judge/{policy}/{model}/{benchmark}.jsonl"),
    shell:
        "{params.run} -m harness judge --config {input.config}"
        " --eval-set {input.eval_set} --answers {input.answers} --output {output.judgments}"
        " --meta {output.meta} {params.extra}"
        " --cache {params.cache}"
        " > {log} 2>&1"


# AlpacaEval's joint LC: the instruction difficulty, fitted once over the models of one reference
LC = T.lc.name if T.lc else "none"


rule lc_difficulty:
    input:
        config=job_config("lc_difficulty", f"{LC}/{{group}}"),
        eval_set=lambda wc: T.eval_set(LC),
        judgments=lambda wc: T.difficulty_judgments(wc.group),
    output:
        out("difficulty", benchmark=LC),
    log:
        run_path("logs/lc_difficulty/{group}.log"),
    benchmark:
        timing("lc_difficulty", "{group}")
    wildcard_constraints:
        group=alt(GROUPS_TO_FIT) or NEVER,
    conda:
        "../envs/evaluate.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness lc-difficulty --config {input.config} --eval-set {input.eval_set}"
        " --judgments {input.judgments} --output {output} > {log} 2>&1"


rule metrics:
    input:
        unpack(lambda wc: T.metrics_files(wc.policy, wc.model, wc.benchmark)),
        config=job_config("metrics", "{benchmark}/{policy}/{model}"),
        eval_set=lambda wc: T.eval_set(wc.benchmark),
        judgments=lambda wc: T.eval_file(
            wc.policy, wc.model, wc.benchmark, f"judgments{T.ext(wc.benchmark)}"
        ),
        lc_data=lambda wc: T.lc_data(wc.benchmark),
    output:
        out("eval", file="metrics.json"),
    log:
        run_path("logs/metrics/{policy}/{model}/{benchmark}.log"),
    wildcard_constraints:
        benchmark=T.judged_where(),
    conda:
        "../envs/evaluate.yaml"
    resources:
        **sized(0),
    params:
        # 2: bootstrap intervals, the official LC GLM from a local file; 3: upstream cost; 4: joint
        # LC, avg_length from answers; 5: the cost of the jobs behind it left to step `cost`
        step_version=5,
        extra=lambda wc: cli_args(T.metrics_files(wc.policy, wc.model, wc.benchmark)),
    shell:
        "python -m harness metrics --config {input.config} --eval-set {input.eval_set}"
        " --judgments {input.judgments} {params.extra} --output {output} > {log} 2>&1"


# Downstream tasks through lm-evaluation-harness: one job per model (lm-eval's results JSON + metrics)
rule downstream:
    input:
        config=job_config("downstream", "{policy}/{model}"),
        model=lambda wc: T.checkpoint(wc.policy, wc.model),
        data=lambda wc: T.downstream_data("downstream"),
    output:
        results=out("eval", benchmark="downstream", file="results.json"),
        metrics=out("eval", benchmark="downstream", file="metrics.json"),
        samples=out("eval", benchmark="downstream", file="samples.jsonl"),
    log:
        run_path("logs/downstream/{policy}/{model}.log"),
    benchmark:
        timing("downstream", "{policy}/{model}")
    conda:
        "../envs/evaluate.yaml"
    resources:
        **sized(GPUS["eval"]),
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        data=lambda wc, input: f"--data {input.data}" if input.data else "",
        step_version=2,  # 2: lm-eval's per-sample results (samples.jsonl) for paired comparisons
    shell:
        "{params.run} -m harness downstream --config {input.config} {params.data}"
        " --output {output.results} --metrics {output.metrics} --samples {output.samples} > {log} 2>&1"
