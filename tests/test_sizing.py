"""GPU counts and batch arithmetic from the config (harness/workflow/sizing.py); the SLURM site file (harness/workflow/site.py)."""

import pytest

from harness.training import batch
from harness.workflow import site, sizing
from harness.workflow.config import load_config


@pytest.fixture(scope="module")
def paper():
    return load_config("config/config.yaml")


@pytest.fixture(scope="module")
def demo():
    return load_config("config/demo.yaml")


def test_gpu_counts_follow_what_the_config_runs(paper, demo):
    assert sizing.model_gpus(paper, "llama3-8b-instruct") == 1  # a hub model: 1 unless it says more
    assert sizing.ranker_gpus(paper, "ipr-llama70b") == 4  # the 70B judge's `gpus`
    assert sizing.ranker_gpus(paper, "armorm") == 1
    assert sizing.eval_judge_gpus(paper, "alpaca_eval") == 0  # an API annotator
    assert sizing.eval_judge_gpus(paper, "mt_bench") == 0  # an OpenAI judge
    assert sizing.training_gpus(paper, "llama3-8b-instruct") == 8
    # the demo: models built from code, the oracle, the simulated judge
    assert sizing.model_gpus(demo, "tiny-policy") == 0
    assert {sizing.ranker_gpus(demo, r) for r in demo["rankers"]} == {0}
    assert sizing.training_gpus(demo, "tiny-policy") == 0


def test_accumulation_reaches_the_effective_batch_exactly():
    assert batch.accumulation(128, 2, 8) == 8
    assert batch.accumulation(128, 2, 4) == 16  # fewer GPUs accumulate more
    assert batch.accumulation(16, 16, 0) == 1  # a CPU job is one process
    assert batch.describe(128, 2, 8) == "128 = 2 per device x 8 accumulation x 8 process(es)"
    with pytest.raises(
        batch.BatchError, match=r"effective_batch_size=128 is not a multiple of .*=2 x 3 process\(es\) = 6"
    ):
        batch.accumulation(128, 2, 3)


def test_host_memory_follows_the_gpu_count():
    assert sizing.host_mem_mb(0) == sizing.CPU_JOB_MEM_MB
    assert sizing.host_mem_mb(8) == 8 * sizing.HOST_MEM_MB_PER_GPU


@pytest.fixture
def no_site_env(monkeypatch):
    for env, _ in site.FIELDS.values():
        monkeypatch.delenv(env, raising=False)
    monkeypatch.delenv("HARNESS_SLURM_SITE", raising=False)


def test_site_file_with_environment_on_top(tmp_path, monkeypatch, no_site_env):
    (tmp_path / "profiles/slurm").mkdir(parents=True)
    (tmp_path / site.DEFAULT_FILE).write_text("account: lab\ncpu_partition: short\ngpu_partition: gpu\n")
    monkeypatch.setenv("HARNESS_SLURM_GPU_PARTITION", "h100q")
    s = site.check(tmp_path)
    assert (s["account"], s["cpu_partition"], s["gpu_partition"], s["gpu_model"]) == (
        "lab",
        "short",
        "h100q",
        "",
    )
    assert site.job_resources(s, 0) == {"slurm_account": "lab", "slurm_partition": "short"}
    assert site.job_resources(s, 4) == {"slurm_account": "lab", "slurm_partition": "h100q"}
    monkeypatch.setenv("HARNESS_SLURM_GPU_MODEL", "h100")
    assert site.job_resources(site.check(tmp_path), 4)["gpu_model"] == "h100"
    assert "gpu_model" not in site.job_resources(site.check(tmp_path), 0)  # no --gpus=h100:0


def test_site_errors_name_what_is_missing_or_malformed(tmp_path, monkeypatch, no_site_env):
    assert not site.configured(tmp_path)
    with pytest.raises(site.SiteError) as e:
        site.check(tmp_path)
    assert str(e.value).startswith(
        "SLURM site: missing account (HARNESS_SLURM_ACCOUNT), cpu_partition (HARNESS_SLURM_CPU_PARTITION),"
        " gpu_partition (HARNESS_SLURM_GPU_PARTITION)"
    )
    (tmp_path / "profiles/slurm").mkdir(parents=True)
    (tmp_path / site.DEFAULT_FILE).write_text('account: "<account>"\ncpu_partition: a\ngpu_partition: b\n')
    with pytest.raises(site.SiteError, match=r"not a SLURM name: account='<account>'"):
        site.check(tmp_path)
    (tmp_path / site.DEFAULT_FILE).write_text("acount: lab\n")
    with pytest.raises(site.SiteError, match=r"site.yaml: unknown field\(s\) acount"):
        site.load(tmp_path)


def test_example_site_file_lists_every_field():
    import yaml

    example = yaml.safe_load(open("profiles/slurm/site.example.yaml"))
    assert set(example) == set(site.FIELDS)


def test_slurm_profile_has_an_entry_for_every_rule_that_runs_a_job():
    """Every rule with a command is timed in the profile (a shard like its stage); none sets GPUs."""
    import re
    from pathlib import Path

    import yaml

    prof = yaml.safe_load(open("profiles/slurm/config.yaml"))["set-resources"]
    text = "\n".join(p.read_text() for p in Path("rules").glob("*.smk"))
    rules = set(re.findall(r"^rule (\w+):", text, re.M)) | set(
        re.findall(r"^use rule \w+ as (\w+) with:", text, re.M)
    )
    aggregates = {
        "main_table",
        "ranker_study",
        "plan",
        "evaluate",
    }  # no job of their own (plan runs where asked)
    assert sorted(rules - aggregates - set(prof)) == []
    assert all("gpu" not in v and "slurm_partition" not in v for v in prof.values())
    for stage in ("sample", "rank", "rank_ipr", "generate"):
        assert prof[f"{stage}_shard"] == prof[stage]
