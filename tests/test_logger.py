"""The console logger of `make demo` and `make real` (plugins/snakemake-logger-plugin-harness,
`snakemake --logger harness`): one line per finished job with its rule, cell and wall time; the rule
blocks only in Snakemake's log file; a dry run printed as Snakemake prints it."""

import re

import pytest

from .workflow import copy_workflow, snakemake


def test_cell_of_names_what_a_job_works_on():
    from snakemake_logger_plugin_harness import cell_of, duration

    assert cell_of({"policy": "p", "ranker": "rm", "regularizer": "bcr", "seed": "0"}) == "p/rm/bcr/seed0"
    assert cell_of({"policy": "p", "model": "rm/bcr/seed0", "benchmark": "mt_bench", "ext": ".jsonl"}) == (
        "p/rm/bcr/seed0 mt_bench"
    )
    assert cell_of({"dataset_file": "prompts.jsonl"}) == "prompts.jsonl" and cell_of({}) == ""
    assert duration(61) == "1m01s" and duration(3725) == "1h02m"


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("wf"))


def test_one_line_per_finished_job_and_the_full_log_kept(wf):
    # two jobs of one rule at once in a fresh run: their job configs are written while the DAG is
    # built, and Snakemake's existence cache must see both (it stopped with MissingInputException)
    targets = ["results/demo/data/prompts.jsonl", "results/demo/data/alpaca_eval.json"]
    r = snakemake(
        ["--cores", "1", "--logger", "harness", "--configfile", "config/demo.yaml", "--", *targets], wf
    )
    assert r.returncode == 0, r.stderr[-3000:]
    console = r.stdout + r.stderr
    done = re.findall(r"^done  prepare_data\s+(\S+)\s+\d+m\d\ds\s+(\d)/2$", console, re.M)
    # either order: the two jobs run one after the other, counted 1/2 and 2/2
    assert sorted(f for f, _ in done) == ["alpaca_eval.json", "prompts.jsonl"], console
    assert sorted(n for _, n in done) == ["1", "2"], console
    assert "rule prepare_data:" not in console and "Job stats:" in console and "Complete log" in console
    log = re.search(r"Complete log\(s\): (\S+)", console).group(1)
    assert (wf / log).read_text().count("rule prepare_data:") == 2  # Snakemake's own log has every block


def test_a_dry_run_and_a_failure_read_as_snakemake_prints_them(wf):
    r = snakemake(["-n", "--logger", "harness", "--configfile", "config/demo.yaml"], wf)
    assert r.returncode == 0 and "rule train:" in r.stdout + r.stderr
    import yaml

    (wf / "data/demo/broken.jsonl").write_text('{"id": "a", "prompt": "x"}\nnot json\n')
    cfg = yaml.safe_load((wf / "config/demo.yaml").read_text())
    cfg.update(run="broken", prompts={"path": "data/demo/broken.jsonl"})
    (wf / "config/broken.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(
        ["--cores", "1", "--logger", "harness", "--configfile", "config/broken.yaml", "--",
         "results/broken/data/prompts.jsonl"],
        wf,
    )  # fmt: skip
    console = r.stdout + r.stderr
    assert r.returncode != 0
    assert re.search(
        r"^FAIL  prepare_data\s+prompts.jsonl\s+\d+m\d\ds\s+log: results/broken/logs/", console, re.M
    ), console
    assert "broken.jsonl:2: not valid JSON" in console  # the failed job's log, shown (show-failed-logs)
