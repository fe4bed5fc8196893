# Stage 5: tables and figures. Named targets: main_table, training_curves, budget_sweep,
# mt_bench_categories (and ranker_study).


rule report:
    input:
        config=job_config("report", "main"),
        metrics=main_table_inputs(),
    output:
        csv="results/tables/main.csv",
        md="results/tables/main.md",
    log:
        "logs/report/main.log",
    conda:
        "../envs/report.yaml"
    params:
        step_version=1,
    shell:
        "python -m harness report --config {input.config} --inputs {input.metrics}"
        " --output {output.csv} --output-md {output.md} > {log} 2>&1"


rule main_table:
    input:
        rules.report.output.md,


rule training_curves:
    input:
        config=job_config("figures", "likelihood_trajectories"),
        logs=training_logs(),
    output:
        png="results/figures/likelihood_trajectories.png",
        pdf="results/figures/likelihood_trajectories.pdf",
    log:
        "logs/figures/likelihood_trajectories.log",
    conda:
        "../envs/report.yaml"
    params:
        step_version=1,
    shell:
        "python -m harness figures --config {input.config} --logs {input.logs}"
        " --output {output.png} --output-pdf {output.pdf} > {log} 2>&1"


rule budget_sweep:
    input:
        config=job_config("figures", "budget_sweep"),
        inputs=budget_sweep_inputs(),
    output:
        png="results/figures/budget_sweep.png",
        pdf="results/figures/budget_sweep.pdf",
        csv="results/tables/budget_sweep.csv",
    log:
        "logs/figures/budget_sweep.log",
    conda:
        "../envs/report.yaml"
    params:
        step_version=1,
    shell:
        "python -m harness budget-sweep --config {input.config} --inputs {input.inputs}"
        " --output {output.png} --output-pdf {output.pdf} --output-csv {output.csv} > {log} 2>&1"


rule mt_bench_categories:
    input:
        config=job_config("report", "mt_bench_categories"),
        metrics=mt_bench_metrics(),
    output:
        csv="results/tables/mt_bench_categories.csv",
        md="results/tables/mt_bench_categories.md",
        png="results/figures/mt_bench_categories.png",
        pdf="results/figures/mt_bench_categories.pdf",
    log:
        "logs/report/mt_bench_categories.log",
    conda:
        "../envs/report.yaml"
    params:
        step_version=1,
    shell:
        "python -m harness mt-bench-categories --config {input.config} --inputs {input.metrics}"
        " --output {output.csv} --output-md {output.md} --output-png {output.png}"
        " --output-pdf {output.pdf} > {log} 2>&1"
