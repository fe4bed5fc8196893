# Reproduction of Chen et al. 2024 (arXiv 2411.05875): sample -> rank -> train -> evaluate -> report.
# Paper config by default; the offline demo: `snakemake --cores all --configfile config/demo.yaml`.
import os
import sys

from snakemake.utils import min_version, validate

from harness.core.errors import ConfigError
from harness.core.io import read_yaml
from harness.workflow.config import (
    SHARED_RUN,
    retype_overrides,
    run_dir,
    run_name,
    with_evaluated,
    workflow_check,
)

min_version("9.0")


# A `--configfile` (e.g. config/demo.yaml) replaces the paper config; Snakemake would otherwise
# deep-merge the two experiments into one.
if not workflow.overwrite_configfiles:
    try:  # a YAML error named with its line and column (Snakemake's own message names neither)
        read_yaml("config/config.yaml")
    except ConfigError as e:
        sys.exit(f"error: {e}")

    configfile: "config/config.yaml"


# `--config` values below the top level arrive as strings; give them their YAML types, then validate:
# a bad config stops here with the one line `harness check-config` prints.
retype_overrides(config, workflow.config_settings.config)
try:
    workflow_check(
        config,
        workflow.overwrite_configfiles or ["config/config.yaml"],
        workflow.config_settings.config,
    )
except ConfigError as e:
    sys.exit(f"error: {e}")
validate(config, "config/schema.yaml")

# Every output of this config lives under its run's folder (results/<run>/, harness/workflow/config.py);
# results/shared/ holds what runs share (judge-call caches, keyed by content).
try:
    config["run"] = run_name(
        config, workflow.overwrite_configfiles or ["config/config.yaml"]
    )
    with_evaluated(config)  # models evaluated without training join `models`
except ConfigError as e:
    sys.exit(f"error: {e}")
RUN_DIR = run_dir(config)
SHARED_DIR = f"results/{SHARED_RUN}"


# The report opens on the results once `landing` has made its page (results/<run>/report/landing.html);
# before that, on the workflow's description alone.
REPORT_TEXT = (
    "rules/captions/workflow_landing.rst"
    if os.path.exists(f"{RUN_DIR}/report/landing.html")
    else "rules/captions/workflow.rst"
)


report: REPORT_TEXT


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
        # the tables and figures the report opens on (rules/common.smk), the page, the cost table
        T.landing_tables(),
        T.landing_figures(),
        rules.landing.output,
        rules.cost.output.md,
