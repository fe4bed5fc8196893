# Every job's resolved config; written in-process (cheap), rewritten when its content changes.
rule job_config:
    output:
        "results/configs/{step}/{key}.yaml",
    log:
        "logs/job_config/{step}/{key}.log",
    wildcard_constraints:
        key=r"[A-Za-z0-9._/-]+",
    localrule: True
    params:
        cfg=lambda wc: jobs.resolve(config, wc.step, wc.key, PATHS),
    run:
        from harness.io import write_text
        import yaml

        write_text(output[0], yaml.safe_dump(params.cfg, sort_keys=True))
