# Stage 5: tables and figures. Named targets: main_table, comparisons, baselines_table,
# training_curves, budget_sweep, mt_bench_categories, arena_hard_style, cost (and ranker_study); `landing` is the HTML
# report's first screen (results/report/landing.html, the report's description once it exists).


rule report:
    input:
        config=job_config("report", "main"),
        metrics=T.main_table(),
    output:
        csv=report(
            out("table", name="main.csv"),
            caption="captions/main_table.rst",
            category="Tables",
        ),
        md=out("table", name="main.md"),
    log:
        run_path("logs/report/main.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=2,  # 2: Arena-Hard v2.0's per-category columns
    shell:
        "python -m harness report --config {input.config} --inputs {input.metrics}"
        " --output {output.csv} --output-md {output.md} > {log} 2>&1"


# `snakemake evaluate`: the models of config `evaluate` on every benchmark, nothing trained
rule evaluated_table:
    input:
        config=job_config("evaluated_table", "evaluated"),
        metrics=T.evaluated(),
    output:
        csv=report(
            out("table", name="evaluated.csv"),
            caption="captions/evaluated.rst",
            category="Tables",
        ),
        md=out("table", name="evaluated.md"),
    log:
        run_path("logs/report/evaluated.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=2,  # 2: Arena-Hard v2.0's per-category columns
    shell:
        "python -m harness report --config {input.config} --inputs {input.metrics}"
        " --output {output.csv} --output-md {output.md} > {log} 2>&1"


rule evaluate:
    input:
        rules.evaluated_table.output.md,


rule main_table:
    input:
        rules.report.output.md,


rule comparisons:
    input:
        config=job_config("comparisons", "main"),
        inputs=T.comparison_inputs(),
    output:
        csv=report(
            out("table", name="comparisons.csv"),
            caption="captions/comparisons.rst",
            category="Tables",
        ),
        md=out("table", name="comparisons.md"),
        png=report(
            out("figure", name="comparisons.png"),
            caption="captions/comparisons.rst",
            category="Figures",
        ),
        pdf=out("figure", name="comparisons.pdf"),
    log:
        run_path("logs/report/comparisons.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness comparisons --config {input.config} --inputs {input.inputs}"
        " --output {output.csv} --output-md {output.md} --output-png {output.png}"
        " --output-pdf {output.pdf} > {log} 2>&1"


rule landing:
    input:
        tables=T.landing_tables(),
        figures=T.landing_figures(),
        captions=[  # each figure's caption (a caption edit reruns the page)
            f"rules/captions/{Path(f).stem}.rst" for f in T.landing_figures()
        ],
    output:
        run_path("report/landing.html"),
    log:
        run_path("logs/report/landing.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness landing --tables {input.tables} --figures {input.figures}"
        " --captions rules/captions --output {output} > {log} 2>&1"


rule baselines_table:
    input:
        config=job_config("baselines_table", "baselines"),
        metrics=T.baselines(),
    output:
        csv=report(
            out("table", name="baselines.csv"),
            caption="captions/baselines.rst",
            category="Tables",
        ),
        md=out("table", name="baselines.md"),
    log:
        run_path("logs/report/baselines.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=2,  # 2: Arena-Hard v2.0's per-category columns
    shell:
        "python -m harness report --config {input.config} --inputs {input.metrics}"
        " --output {output.csv} --output-md {output.md} > {log} 2>&1"


rule training_curves:
    input:
        config=job_config("training_curves", "likelihood_trajectories"),
        logs=T.training_logs(),
    output:
        png=report(
            out("figure", name="likelihood_trajectories.png"),
            caption="captions/likelihood_trajectories.rst",
            category="Figures",
        ),
        pdf=out("figure", name="likelihood_trajectories.pdf"),
    log:
        run_path("logs/figures/likelihood_trajectories.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness training-curves --config {input.config} --logs {input.logs}"
        " --output {output.png} --output-pdf {output.pdf} > {log} 2>&1"


rule budget_sweep:
    input:
        config=job_config("budget_sweep", "budget_sweep"),
        inputs=T.budget_sweep(),
    output:
        png=report(
            out("figure", name="budget_sweep.png"),
            caption="captions/budget_sweep.rst",
            category="Figures",
        ),
        pdf=out("figure", name="budget_sweep.pdf"),
        csv=report(
            out("table", name="budget_sweep.csv"),
            caption="captions/budget_sweep.rst",
            category="Tables",
        ),
    log:
        run_path("logs/figures/budget_sweep.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=2,  # 2: Arena-Hard v2.0's per-category columns
    shell:
        "python -m harness budget-sweep --config {input.config} --inputs {input.inputs}"
        " --output {output.png} --output-pdf {output.pdf} --output-csv {output.csv} > {log} 2>&1"


rule mt_bench_categories:
    input:
        config=job_config("mt_bench_categories", "mt_bench_categories"),
        metrics=T.benchmark_metrics("mt_bench"),
    output:
        csv=report(
            out("table", name="mt_bench_categories.csv"),
            caption="captions/mt_bench_categories.rst",
            category="Tables",
        ),
        md=out("table", name="mt_bench_categories.md"),
        png=report(
            out("figure", name="mt_bench_categories.png"),
            caption="captions/mt_bench_categories.rst",
            category="Figures",
        ),
        pdf=out("figure", name="mt_bench_categories.pdf"),
    log:
        run_path("logs/report/mt_bench_categories.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness mt-bench-categories --config {input.config} --inputs {input.metrics}"
        " --output {output.csv} --output-md {output.md} --output-png {output.png}"
        " --output-pdf {output.pdf} > {log} 2>&1"


rule arena_hard_style:
    input:
        config=job_config("arena_hard_style", "arena_hard_style"),
        metrics=T.benchmark_metrics("arena_hard"),
    output:
        csv=report(
            out("table", name="arena_hard_style.csv"),
            caption="captions/arena_hard_style.rst",
            category="Tables",
        ),
        md=out("table", name="arena_hard_style.md"),
        png=report(
            out("figure", name="arena_hard_style.png"),
            caption="captions/arena_hard_style.rst",
            category="Figures",
        ),
        pdf=out("figure", name="arena_hard_style.pdf"),
    log:
        run_path("logs/report/arena_hard_style.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=2,  # 2: Arena-Hard v2.0's per-category columns
    shell:
        "python -m harness arena-hard-style --config {input.config} --inputs {input.metrics}"
        " --output {output.csv} --output-md {output.md} --output-png {output.png}"
        " --output-pdf {output.pdf} > {log} 2>&1"


rule downstream_figure:
    input:
        config=job_config("downstream_figure", "downstream"),
        metrics=T.benchmark_metrics("downstream"),
    output:
        png=report(
            out("figure", name="downstream.png"),
            caption="captions/downstream.rst",
            category="Figures",
        ),
        pdf=out("figure", name="downstream.pdf"),
    log:
        run_path("logs/report/downstream_figure.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness downstream-figure --config {input.config} --inputs {input.metrics}"
        " --output {output.png} --output-pdf {output.pdf} > {log} 2>&1"


rule cost:
    input:
        config=job_config("cost", "main"),
        inputs=T.cost_inputs(),
        pair_metas=T.pair_metas(),
    output:
        csv=report(
            out("table", name="cost.csv"),
            caption="captions/cost.rst",
            category="Tables",
        ),
        md=out("table", name="cost.md"),
    log:
        run_path("logs/report/cost.log"),
    conda:
        "../envs/report.yaml"
    resources:
        **sized(0),
    params:
        step_version=1,
    shell:
        "python -m harness cost --config {input.config}"
        " --pair-metas {input.pair_metas} --output {output.csv} --output-md {output.md} > {log} 2>&1"


rule plan:
    # `snakemake plan`: the cost table of the config before running it (harness/workflow/plan.py); the finished
    # outputs already here make its counts exact
    input:
        workflow.overwrite_configfiles or ["config/config.yaml"],
    output:
        run_path("plan.md"),
    log:
        run_path("logs/plan.log"),
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    params:
        configfile=lambda wc, input: input[0],
    shell:
        "python -m harness plan --configfile {params.configfile:q} --output {output} 2> {log}"
