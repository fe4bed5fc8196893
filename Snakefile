# Reproduction of Chen et al. 2024 (arXiv 2411.05875): sample -> rank -> train -> evaluate -> report.
# Paper config by default; the offline demo: `snakemake --cores all --configfile config/demo.yaml`.
from snakemake.utils import min_version, validate

from harness.config import retype_overrides

min_version("9.0")


# A `--configfile` (e.g. config/demo.yaml) replaces the paper config; Snakemake would otherwise
# deep-merge the two experiments into one.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# `--config` values below the top level arrive as strings; give them their YAML types, then validate.
retype_overrides(config, workflow.config_settings.config)
validate(config, "config/schema.yaml")


report: "rules/captions/workflow.rst"


include: "rules/common.smk"
include: "rules/sample.smk"
include: "rules/rank.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/study.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        "results/tables/main.md",
        "results/tables/ranker_study.md",
        "results/tables/cost.md",
        "results/figures/likelihood_trajectories.png",
        ["results/figures/mt_bench_categories.png"]
        if "mt_bench" in config["evaluation"]
        else [],
        ["results/figures/downstream.png"]
        if "downstream" in config["evaluation"]
        else [],
        # the budget sweep, where config names one
        ["results/figures/budget_sweep.png"] if config["budget_sweep"] else [],
