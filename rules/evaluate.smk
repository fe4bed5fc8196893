# Stage 4: answers, judgments and metrics per model (base policy or trained cell) and benchmark.


rule generate:
    input:
        config=job_config("generate", "{benchmark}/{policy}/{model}"),
        eval_set=lambda wc: eval_set(wc.benchmark),
        model=checkpoint_input,
        ext_ok=check_ext,
    output:
        answers=run_path("eval/{policy}/{model}/{benchmark}/answers{ext}"),
        meta=run_path("eval/{policy}/{model}/{benchmark}/answers{ext}.meta.json"),
    log:
        run_path("logs/generate/{policy}/{model}/{benchmark}{ext}.log"),
    benchmark:
        run_path("benchmarks/generate/{policy}/{model}/{benchmark}{ext}.tsv")
    wildcard_constraints:
        benchmark=benchmarks_where(sharded=False),
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


# evaluation.<benchmark>.generation.shards > 1: one job per part of the eval set, then one merge job
use rule generate as generate_shard with:
    output:
        answers=run_path(
            "eval/{policy}/{model}/{benchmark}/shards/{shard}-of-{shards}/answers{ext}"
        ),
        meta=run_path(
            "eval/{policy}/{model}/{benchmark}/shards/{shard}-of-{shards}/answers{ext}.meta.json"
        ),
    log:
        run_path(
            "logs/generate/{policy}/{model}/{benchmark}/{shard}-of-{shards}{ext}.log"
        ),
    benchmark:
        run_path(
            "benchmarks/generate/{policy}/{model}/{benchmark}/{shard}-of-{shards}{ext}.tsv"
        )
    wildcard_constraints:
        benchmark=benchmarks_where(sharded=True),
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        shard=lambda wc: f"--shard {wc.shard}/{wc.shards}",
        step_version=2,


rule merge_answers:
    input:
        answers=answer_shards(""),
        metas=answer_shards(".meta.json"),
    output:
        answers=run_path("eval/{policy}/{model}/{benchmark}/answers{ext}"),
        meta=run_path("eval/{policy}/{model}/{benchmark}/answers{ext}.meta.json"),
    log:
        run_path("logs/merge_answers/{policy}/{model}/{benchmark}{ext}.log"),
    wildcard_constraints:
        benchmark=benchmarks_where(sharded=True),
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
        unpack(judge_extra_inputs),
        config=job_config("judge", "{benchmark}/{policy}/{model}"),
        eval_set=judge_reference,
        answers=run_path("eval/{policy}/{model}/{benchmark}/answers{ext}"),
        models=lambda wc: built_models_input(eval_judge_models(wc.benchmark)),
    output:
        judgments=run_path("eval/{policy}/{model}/{benchmark}/judgments{ext}"),
        meta=run_path("eval/{policy}/{model}/{benchmark}/judgments{ext}.meta.json"),
    log:
        run_path("logs/judge/{policy}/{model}/{benchmark}{ext}.log"),
    benchmark:
        run_path("benchmarks/judge/{policy}/{model}/{benchmark}{ext}.tsv")
    wildcard_constraints:
        benchmark=_alt(JUDGED) or NEVER,
    conda:
        "../envs/evaluate.yaml"
    resources:
        **sized(GPUS["judge"]),
        api_jobs=lambda wc: judge_api(wc.benchmark),
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        step_version=2,  # 2: FastChat's MT-Bench templates; alpaca_eval annotators; a meta file
        extra=lambda wc: cli_args(judge_extra_inputs(wc)),
        cache=shared_path("cache/judge/{policy}/{model}/{benchmark}.jsonl"),
    shell:
        "{params.run} -m harness judge --config {input.config}"
        " --eval-set {input.eval_set} --answers {input.answers} --output {output.judgments}"
        " --meta {output.meta} {params.extra}"
        " --cache {params.cache}"
        " > {log} 2>&1"


rule lc_difficulty:
    input:
        config=job_config("difficulty", "alpaca_eval/{group}"),
        eval_set=eval_set("alpaca_eval"),
        judgments=difficulty_judgments,
    output:
        run_path("eval/difficulty/alpaca_eval/{group}.json"),
    log:
        run_path("logs/lc_difficulty/{group}.log"),
    benchmark:
        run_path("benchmarks/lc_difficulty/{group}.tsv")
    wildcard_constraints:
        group=_alt(GROUPS_TO_FIT) or NEVER,
    conda:
        "../envs/evaluate.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness difficulty --config {input.config} --eval-set {input.eval_set}"
        " --judgments {input.judgments} --output {output} > {log} 2>&1"


rule metrics:
    input:
        unpack(metrics_extra_inputs),
        config=job_config("metrics", "{benchmark}/{policy}/{model}"),
        eval_set=lambda wc: eval_set(wc.benchmark),
        judgments=lambda wc: f"{RUN_DIR}/eval/{wc.policy}/{wc.model}/{wc.benchmark}/judgments{ext_of(wc.benchmark)}",
        lc_data=lc_data_input,
        upstream=lambda wc: [prov for _, prov in upstream_jobs(wc).values()],
    output:
        run_path("eval/{policy}/{model}/{benchmark}/metrics.json"),
    log:
        run_path("logs/metrics/{policy}/{model}/{benchmark}.log"),
    wildcard_constraints:
        benchmark=_alt(JUDGED) or NEVER,
    conda:
        "../envs/evaluate.yaml"
    resources:
        **sized(0),
    params:
        step_version=4,  # 2: bootstrap intervals, the official LC GLM from a local file; 3: upstream cost; 4: joint LC, avg_length from answers
        upstream=lambda wc: " ".join(
            f"{s}={t},{p}" for s, (t, p) in upstream_jobs(wc).items()
        ),
        extra=lambda wc: cli_args(metrics_extra_inputs(wc)),
    shell:
        "python -m harness metrics --config {input.config} --eval-set {input.eval_set}"
        " --judgments {input.judgments} {params.extra} --upstream {params.upstream} --output {output} > {log} 2>&1"


# Downstream tasks through lm-evaluation-harness: one job per model (lm-eval's results JSON + metrics)
rule downstream:
    input:
        config=job_config("downstream", "{policy}/{model}"),
        model=checkpoint_input,
        data=downstream_data,
    output:
        results=run_path("eval/{policy}/{model}/downstream/results.json"),
        metrics=run_path("eval/{policy}/{model}/downstream/metrics.json"),
        samples=run_path("eval/{policy}/{model}/downstream/samples.jsonl"),
    log:
        run_path("logs/downstream/{policy}/{model}.log"),
    benchmark:
        run_path("benchmarks/downstream/{policy}/{model}.tsv")
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
