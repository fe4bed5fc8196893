# Stage 5: tables. Named targets: main_table.


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
