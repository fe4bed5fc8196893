# The ranker study: every ranker ranks the same completions in full; gold accuracy on labelled sets.


rule rank_study:
    input:
        config=job_config("rank_study", "{policy}/{ranker}"),
        completions=out("completions", file="completions.jsonl"),
        models=lambda wc: T.built_models(T.ranker_models(wc.ranker)),
    output:
        **{
            f: out("study", file=f"{f}.jsonl")
            for f in ("rankings", "pairs", "judgments")
        },
        meta=out("study", file="pairs.meta.json"),
    log:
        run_path("logs/rank_study/{policy}/{ranker}.log"),
    benchmark:
        timing("rank_study", "{policy}/{ranker}")
    wildcard_constraints:
        ranker=T.rankers_where(pairwise=False),
    conda:
        "../envs/train.yaml"
    resources:
        **sized(GPUS["ranker"]),
        api_jobs=lambda wc: ranker_api(wc.ranker),
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        step_version=1,
        cache=shared_path("cache/study/{policy}/{ranker}.jsonl"),
    shell:
        "{params.run} -m harness rank --config {input.config}"
        " --completions {input.completions} --output {output.pairs} --judgments {output.judgments}"
        " --meta {output.meta} --rankings {output.rankings}"
        " --cache {params.cache} > {log} 2>&1"


rule gold_accuracy:
    input:
        config=job_config("gold_accuracy", "{ranker}/{pset}"),
        preferences=out("data", file="preferences/{pset}.jsonl"),
        models=lambda wc: T.built_models(T.ranker_models(wc.ranker)),
    output:
        out("gold"),
    log:
        run_path("logs/gold_accuracy/{ranker}/{pset}.log"),
    wildcard_constraints:
        ranker=T.rankers_where(pairwise=False),
    conda:
        "../envs/train.yaml"
    resources:
        **sized(GPUS["ranker"]),
        api_jobs=lambda wc: ranker_api(wc.ranker),
    params:
        run=lambda wc, resources: run_harness(resources.gpu),
        step_version=1,
        cache=shared_path("cache/gold/{ranker}/{pset}.jsonl"),
    shell:
        "{params.run} -m harness gold-accuracy --config {input.config}"
        " --preferences {input.preferences} --output {output}"
        " --cache {params.cache} > {log} 2>&1"


use rule rank_study as rank_study_ipr with:
    wildcard_constraints:
        ranker=T.rankers_where(pairwise=True),
    conda:
        "../envs/sample.yaml"  # the vLLM stack, for a vllm judge


use rule gold_accuracy as gold_accuracy_ipr with:
    wildcard_constraints:
        ranker=T.rankers_where(pairwise=True),
    conda:
        "../envs/sample.yaml"  # the vLLM stack, for a vllm judge


rule study_table:
    input:
        config=job_config("study_table", "ranker_study"),
        rankings=T.study_rankings(),
        gold=T.study_gold(),
    output:
        csv=report(
            out("table", name="ranker_study.csv"),
            caption="captions/ranker_study.rst",
            category="Tables",
        ),
        md=out("table", name="ranker_study.md"),
    log:
        run_path("logs/study_table/ranker_study.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
        gold=lambda wc, input: f"--gold {' '.join(input.gold)}" if input.gold else "",
    shell:
        "python -m harness study-table --config {input.config} --rankings {input.rankings}"
        " {params.gold} --output {output.csv} --output-md {output.md} > {log} 2>&1"


rule ranker_study:
    input:
        rules.study_table.output.md,
