"""DAG tests: dry runs of the demo and paper configs, the SLURM profile, single-cell targets, and
configs or inputs that must stop the run before any result is written."""

import hashlib
import re
import shutil

import pytest
import yaml

from harness.training import batch

from .workflow import copy_workflow, job_counts, snakemake

PAPER_CELL = "results/paper/eval/llama3-8b-instruct/ipr-llama70b/bcr-d0.5/seed0/alpaca_eval/metrics.json"


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("wf"))


def test_demo_dry_run(wf):
    r = snakemake(["-n", "--configfile", "config/demo.yaml"], wf)
    assert r.returncode == 0, r.stderr
    c = job_counts(r.stdout)
    # the world demo: a base policy and a reward model fine-tuned first; 3 rankers (reward model, IPR with
    # the oracle, IPR with a simulated judge) x 3 regularizers x 3 seeds = 27 trained models +1 base on
    # every benchmark; the budget sweep trains 4 budgets on the oracle's pairs (12) and the baselines
    # table IPO and SimPO (6), both evaluated on AlpacaEval only; reference log-probs once per pairs file;
    # prepared data: prompts, the eval set, 2 labelled sets, 2 finetune sets; one joint fit of instruction
    # difficulty over the 45 models judged against the base (lc_method: joint); MT-Bench (world
    # questions, 3 more prepared files), Arena-Hard (questions, baseline answers, judge settings) and
    # lm-eval's downstream tasks (1 data file) on the 28
    assert c == {"build_tiny_models": 1, "finetune": 2, "prepare_data": 13, "sample": 1, "rank": 1, "rank_ipr": 2,
                 "train": 45, "reference_logps": 3, "generate": 102, "judge": 102, "metrics": 102, "report": 1,
                 "rank_study": 1, "rank_study_ipr": 2, "gold_accuracy": 2, "gold_accuracy_ipr": 4, "study_table": 1,
                 "training_curves": 1, "budget_sweep": 1, "cost": 1, "all": 1, "lc_difficulty": 1,
                 "downstream": 28, "downstream_figure": 1, "mt_bench_categories": 1, "baselines_table": 1,
                 "arena_hard_style": 1, "comparisons": 1, "landing": 1, "total": 424}  # fmt: skip


def test_joint_lc_difficulty_waits_for_every_model_judged_against_the_same_reference(wf):
    r = snakemake(
        [
            "-n",
            "--configfile",
            "config/demo.yaml",
            "--",
            "results/demo/eval/difficulty/alpaca_eval/tiny-policy.json",
        ],
        wf,
    )
    assert r.returncode == 0, r.stderr
    c = job_counts(r.stdout)
    # 45 trained models judged against the base, whose answers are the reference
    assert (c["lc_difficulty"], c["judge"], c["generate"]) == (1, 45, 46)
    cell = "results/demo/eval/tiny-policy/rm/bcr/seed0/alpaca_eval/metrics.json"
    r = snakemake(["-n", "-p", "--configfile", "config/demo.yaml", "--", cell], wf)
    assert r.returncode == 0, r.stderr
    assert "--difficulty results/demo/eval/difficulty/alpaca_eval/tiny-policy.json" in r.stdout
    assert "--answers results/demo/eval/tiny-policy/rm/bcr/seed0/alpaca_eval/answers.json" in r.stdout


def test_pipeline_demo_dry_run(wf):
    """The earlier demo (random tiny models, the tiny LM judge, MT-Bench) still plans its whole DAG."""
    r = snakemake(["-n", "--configfile", "config/demo_pipeline.yaml"], wf)
    assert r.returncode == 0, r.stderr
    c = job_counts(r.stdout)
    assert c == {"build_tiny_models": 1, "prepare_data": 7, "sample": 1, "rank": 1, "rank_ipr": 1,
                 "train": 8, "reference_logps": 2, "generate": 14, "judge": 14, "metrics": 14, "report": 1,
                 "rank_study": 1, "rank_study_ipr": 1, "gold_accuracy": 2, "gold_accuracy_ipr": 2, "study_table": 1,
                 "training_curves": 1, "budget_sweep": 1, "mt_bench_categories": 1, "cost": 1, "all": 1,
                 "comparisons": 1, "landing": 1, "total": 78}  # fmt: skip


def test_job_configs_are_content_addressed(tmp_path):
    """Each job's resolved config is a file named by its content: a changed setting is a new file (so the
    job reruns, in a dry run too), and no file is rewritten."""
    wf = copy_workflow(tmp_path)
    snakemake(["-n", "--configfile", "config/demo.yaml"], wf)
    before = {p: p.stat().st_mtime_ns for p in (wf / "results/demo/configs").rglob("*.yaml")}
    assert len(before) == 422  # one per job but `all` and `landing` (which reads no config)
    r = snakemake(
        ["-n", "--configfile", "config/demo.yaml", "--config", "regularizers={'bcr': {'delta': 0.7}}"], wf
    )
    assert r.returncode == 0, r.stderr
    after = {p: p.stat().st_mtime_ns for p in (wf / "results/demo/configs").rglob("*.yaml")}
    assert {p: t for p, t in after.items() if p in before} == before
    new = sorted(str(p.relative_to(wf / "results/demo/configs")) for p in set(after) - set(before))
    assert len(new) == 9 and all(n.startswith("train/tiny-policy/") and "/bcr/seed" in n for n in new)

    # a run begun while reference_logps's kind was "reference" (harness/workflow/jobs.py RENAMED): its
    # folder as that version wrote it is used, the same file names, so no finished job reruns
    configs = wf / "results/demo/configs"
    for p in (configs / "reference_logps").rglob("*.yaml"):
        text = p.read_text().replace("step: reference_logps", "step: reference")
        stem = str(p.relative_to(configs / "reference_logps")).rsplit(".", 2)[0]
        q = configs / "reference" / f"{stem}.{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
        q.parent.mkdir(parents=True, exist_ok=True)
        q.write_text(text)
    shutil.rmtree(configs / "reference_logps")
    made = set((configs / "reference").rglob("*.yaml"))
    assert len(made) == 3
    r = snakemake(["-n", "-p", "--configfile", "config/demo.yaml"], wf)
    assert r.returncode == 0, r.stderr
    assert not (configs / "reference_logps").exists() and set((configs / "reference").rglob("*.yaml")) == made
    assert "--config results/demo/configs/reference/tiny-policy/rm." in r.stdout


def test_paper_dry_run_plans_every_job(wf):
    r = snakemake(["-n"], wf)
    assert r.returncode == 0, r.stderr
    c = job_counts(r.stdout)
    # main table: 2 policies x 2 rankers x 3 regularizers x 3 seeds = 36 trainings; the budget sweep adds
    # 4 budgets (dpop, 0.25, 1, 2) x 3 seeds per policy on IPR pairs = 24; the baselines table 8
    # objectives x 4 (policy, ranker) x 3 seeds = 96, less Llama's 6 DPO cells of the main table = 90;
    # all evaluated on 3 benchmarks (AlpacaEval 2, MT-Bench, Arena-Hard v0.1): (150 + 2 base) x 3
    assert (c["sample"], c["rank"], c["train"], c["generate"], c["judge"], c["metrics"]) == (2, 2, 150, 456, 456, 456)  # fmt: skip
    arena = set(re.findall(r"results/paper/eval/\S+/arena_hard/judgments\.jsonl\b", r.stdout))
    assert len(arena) == 152  # every trained cell and both base policies judged on Arena-Hard
    assert c["baselines_table"] == 1
    # the 70B judge's ranking in 4 shards per policy (each within the profile's 12 h), merged
    assert (c["rank_ipr_shard"], c["merge_pairs"]) == (8, 2) and "rank_ipr" not in c
    assert (c["rank_study"] + c["rank_study_ipr"], c["gold_accuracy"] + c["gold_accuracy_ipr"]) == (4, 6)
    assert (c["study_table"], c["prepare_data"], c["cost"]) == (
        1,
        11,
        1,
    )  # Arena-Hard: questions, baseline, settings
    assert c["reference_logps"] == 4  # one per (policy, ranker), shared by every training on those pairs
    # a reference-free baseline (SimPO) plans no reference log-probs, a DPO-family one (IPO) does
    simpo = "results/paper/training/llama3-8b-instruct/armorm/simpo-llama3/seed0/summary.json"
    ipo = "results/paper/training/llama3-8b-instruct/armorm/ipo/seed0/summary.json"
    for target, refs in ((simpo, 0), (ipo, 1)):
        r = snakemake(["-n", "-p", "--", target], wf)
        assert r.returncode == 0, r.stderr
        assert job_counts(r.stdout).get("reference_logps", 0) == refs, target
        assert ("--reference" in r.stdout) == bool(refs)
    assert (c["budget_sweep"], c["training_curves"], c["report"], c["mt_bench_categories"]) == (1, 1, 1, 1)
    assert c["arena_hard_style"] == 1
    assert "build_tiny_models" not in c  # hub models only


SITE_ENV = {
    "HARNESS_SLURM_ACCOUNT": "lab",
    "HARNESS_SLURM_CPU_PARTITION": "short",
    "HARNESS_SLURM_GPU_PARTITION": "a100q",
    "HARNESS_SLURM_GPU_MODEL": "a100",
}


def _block(out, rule):
    return out.split(f"rule {rule}:")[1].split("\nrule ")[0]


def test_slurm_profile_dry_run_sizes_jobs_from_config(wf):
    """GPU counts come from the config and partitions from the site: the 70B judge gets 4 GPUs, training
    training.gpus = 8, the API judge none (and the CPU partition)."""
    r = snakemake(["-n", "--profile", "profiles/slurm", PAPER_CELL], wf, env=SITE_ENV)
    assert r.returncode == 0, r.stderr
    train = _block(r.stdout, "train")
    assert "gpu=8" in train and "slurm_partition=a100q" in train and "gpu_model=a100" in train
    assert "slurm_account=lab" in train and "mem_mb=512000" in train
    assert "accelerate launch --multi_gpu --num_processes 8 -m harness train" in train
    assert (
        "python -m harness.core.gpus 8 --" in train
    )  # a no-op inside SLURM jobs, device slots on a workstation
    assert "gpu=4" in _block(r.stdout, "rank_ipr_shard")  # models.llama3-70b-instruct.gpus
    assert "gpu=1" in _block(r.stdout, "sample") and "gpu=1" in _block(r.stdout, "generate")
    judge = _block(
        r.stdout, "judge"
    )  # the paper's AlpacaEval judge is an API annotator: no GPU, one API slot
    assert "gpu=0" in judge and "api_jobs=1" in judge and "slurm_partition=short" in judge
    assert "gpu_model=a100" not in judge


def test_demo_on_slurm_asks_for_no_gpu(wf):
    """Tiny models, the oracle and the simulated judge: every demo job goes to the CPU partition."""
    r = snakemake(["-n", "--profile", "profiles/slurm", "--configfile", "config/demo.yaml"], wf, env=SITE_ENV)
    assert r.returncode == 0, r.stderr
    resources = [x for x in re.findall(r"^    resources: (.*)$", r.stdout, re.M) if "gpu=" in x]
    assert len(resources) == 423  # every job but `all` (no command, run by Snakemake itself)
    assert all("gpu=0" in x and "slurm_partition=short" in x for x in resources)


def test_local_gpu_node_trains_on_eight_gpus_at_batch_128(wf):
    """No SLURM profile, one 8-GPU node: train runs under accelerate launch with 8 processes, and its
    job config asks for the paper's effective batch of 128 (2 per device x 8 accumulation x 8 GPUs)."""
    target = "results/paper/training/llama3-8b-instruct/ipr-llama70b/bcr-d0.5/seed0/summary.json"
    r = snakemake(["-n", "-p", "--resources", "gpu=8", "--", target], wf)
    assert r.returncode == 0, r.stderr
    train = _block(r.stdout, "train")
    assert "gpu=8" in train and "accelerate launch --multi_gpu --num_processes 8 -m harness train" in train
    assert "gpu=4" in _block(r.stdout, "rank_ipr_shard")
    config = re.search(r"input: (results/paper/configs/train/\S+\.yaml)", train).group(1)
    job = yaml.safe_load((wf / config).read_text())
    t = job["training"]
    assert (t["effective_batch_size"], t["per_device_train_batch_size"], t["gpus"]) == (128, 2, 8)
    assert batch.accumulation(t["effective_batch_size"], t["per_device_train_batch_size"], 8) == 8
    assert "gradient_accumulation_steps" not in t  # derived, never configured


def test_unreachable_effective_batch_stops_the_plan(wf):
    r = snakemake(["-n", "--config", "training={'effective_batch_size': 100}", "--", PAPER_CELL], wf)
    assert r.returncode != 0
    assert (
        "training.effective_batch_size=100 is not a multiple of per_device_train_batch_size=2 x 8"
        in r.stdout + r.stderr
    )


def test_slurm_without_a_site_stops_before_sbatch(tmp_path):
    """The shipped profile with no site file and no variables: one line naming what is missing."""
    wf = copy_workflow(tmp_path)
    r = snakemake(["--profile", "profiles/slurm", "--configfile", "config/demo.yaml"], wf)
    assert r.returncode != 0
    last = (r.stdout + r.stderr).strip().splitlines()[-1]
    assert last.startswith("SLURM site: missing account (HARNESS_SLURM_ACCOUNT), cpu_partition"), last
    assert "profiles/slurm/site.yaml" in last and "nothing was submitted" in last
    assert "submitted with SLURM jobid" not in r.stdout + r.stderr
    assert not (wf / "results/demo/models").exists()


def test_ranker_study_is_one_named_target(wf):
    r = snakemake(["-n", "ranker_study"], wf)
    assert r.returncode == 0, r.stderr
    c = job_counts(r.stdout)
    assert "train" not in c and "generate" not in c
    assert (
        c["rank_study"] + c["rank_study_ipr"],
        c["gold_accuracy"] + c["gold_accuracy_ipr"],
        c["study_table"],
    ) == (4, 6, 1)


def test_budget_sweep_is_one_named_target(wf):
    r = snakemake(["-n", "budget_sweep", "--configfile", "config/demo.yaml"], wf)
    assert r.returncode == 0, r.stderr
    c = job_counts(r.stdout)
    # the sweep's cells (4 budgets on the oracle's pairs, 3 seeds) are evaluated on AlpacaEval only (its
    # `evaluate`); their joint LC needs the instruction difficulty fitted over every model judged against
    # the base, so all 45 trained models are judged on AlpacaEval (only): no MT-Bench, no table
    assert (c["train"], c["budget_sweep"], c["lc_difficulty"]) == (45, 1, 1)
    assert (c["generate"], c["judge"], c["metrics"]) == (46, 45, 12)
    assert "report" not in c and "downstream" not in c


def test_single_cell_builds_only_its_upstream(wf):
    r = snakemake(["-n", PAPER_CELL], wf)
    assert r.returncode == 0, r.stderr
    c = job_counts(r.stdout)
    assert c == {
        "prepare_data": 2,
        "sample": 1,
        "rank_ipr_shard": 4,
        "merge_pairs": 1,
        "reference_logps": 1,
        "train": 1,
        "generate": 1,
        "judge": 1,
        "metrics": 1,
        "total": 13,
    }


def test_misspelled_config_key_fails_before_any_job(tmp_path):
    wf = copy_workflow(tmp_path)
    text = (wf / "config/demo.yaml").read_text().replace("max_new_tokens: 24", "max_new_tokenz: 24")
    (wf / "config/bad.yaml").write_text(text)
    r = snakemake(["--cores", "1", "--configfile", "config/bad.yaml"], wf)
    assert r.returncode != 0
    assert "'max_new_tokenz' was unexpected" in r.stdout + r.stderr
    assert not (wf / "results").exists()


def test_malformed_prompts_fail_naming_file_and_line(tmp_path):
    wf = copy_workflow(tmp_path)
    prompts = wf / "data/demo/prompts.jsonl"
    lines = prompts.read_text().splitlines()
    lines[2] = lines[2][:-1]  # drop the closing brace of line 3
    prompts.write_text("\n".join(lines) + "\n")
    r = snakemake(
        [
            "results/demo_pipeline/data/prompts.jsonl",
            "--cores",
            "1",
            "--configfile",
            "config/demo_pipeline.yaml",
        ],
        wf,
    )
    assert r.returncode != 0
    assert "data/demo/prompts.jsonl:3: not valid JSON" in r.stdout + r.stderr
    assert not (wf / "results/demo_pipeline/data/prompts.jsonl").exists()
    assert not (
        (wf / "results/demo_pipeline/data").exists() and any((wf / "results/demo_pipeline/data").iterdir())
    )


def _files(root):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


def test_two_configs_are_two_runs_that_never_touch_each_other(tmp_path):
    """A config of one's own beside the demo, in one checkout: each plans only files under its own
    results/<run>/ (named by `run`, or by the config file), and running one changes none of the
    other's files."""
    wf = copy_workflow(tmp_path)
    cfg = yaml.safe_load((wf / "config/demo.yaml").read_text())
    del cfg["run"]  # named by its file: config/my_study.yaml -> results/my_study/
    (wf / "data/my_prompts.jsonl").write_text(
        "".join(f'{{"id": "mine-{i}", "prompt": "Count to {i}."}}\n' for i in range(3))
    )
    cfg["prompts"] = {"path": "data/my_prompts.jsonl"}
    (wf / "config/my_study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    for run, configfile in (("demo", "config/demo.yaml"), ("my_study", "config/my_study.yaml")):
        r = snakemake(["--summary", "--configfile", configfile], wf)
        assert r.returncode == 0, r.stderr[-3000:]
        planned = [line.split("\t")[0] for line in r.stdout.splitlines()[1:] if line.strip()]
        assert len(planned) > 600 and all(p.startswith(f"results/{run}/") for p in planned), planned[:3]

    made = {}
    for run, configfile in (("demo", "config/demo.yaml"), ("my_study", "config/my_study.yaml")):
        before = _files(wf / "results")
        target = f"results/{run}/data/prompts.jsonl"
        r = snakemake(["--cores", "1", "--configfile", configfile, "--", target], wf)
        assert r.returncode == 0, r.stderr[-3000:]
        made[run] = (wf / target).read_text()
        changed = {p for p, v in _files(wf / "results").items() if before.get(p) != v}
        assert changed and all(str(p.relative_to(wf)).startswith(f"results/{run}/") for p in changed)
        assert wf / f"results/{run}/logs/prepare_data/prompts.jsonl.log" in changed
    assert len(made["my_study"].splitlines()) == 3 and len(made["demo"].splitlines()) == 320
    # a second look at the demo plans nothing new for its prompts: my_study's run did not touch them
    r = snakemake(["-n", "--configfile", "config/demo.yaml", "--", "results/demo/data/prompts.jsonl"], wf)
    assert r.returncode == 0 and "Nothing to be done" in r.stdout + r.stderr, r.stdout[-2000:]


def test_run_names_are_checked(tmp_path):
    """`run` must be a folder name, and not the folder runs share; one line each."""
    wf = copy_workflow(tmp_path)
    for value, said in (("shared", "'shared' is the folder runs share"), ("a/b", "run: ")):
        r = snakemake(["-n", "--configfile", "config/demo.yaml", "--config", f"run={value}"], wf)
        assert r.returncode != 0
        assert said in r.stderr, r.stderr[-2000:]
    assert not (wf / "results").exists()


def test_a_gguf_file_is_converted_once_for_every_run(tmp_path):
    """Two runs naming one GGUF file plan one conversion under results/shared/ (named by the file's
    bytes and scorer settings); each run's models/gguf/<name> is hard links to it, and a second run
    converts nothing once the first has."""
    wf = copy_workflow(tmp_path)
    gguf = tmp_path / "weights.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 64)  # a dry run and the links read only its bytes
    planned = {}
    for run, name, extra in (("demo", "mine", {}), ("my_study", "theirs", {})):
        cfg = yaml.safe_load((wf / "config/demo.yaml").read_text())
        cfg["run"] = run
        cfg["models"][name] = {"gguf": {"path": str(gguf), **extra}, "dtype": "float32", "gpus": 0}
        (wf / f"config/{run}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        target = f"results/{run}/models/gguf/{name}"
        r = snakemake(["-n", "--configfile", f"config/{run}.yaml", "--", target], wf)
        assert r.returncode == 0, r.stderr[-3000:]
        assert job_counts(r.stdout) == {"convert_gguf": 1, "converted_model": 1, "total": 2}, r.stdout[-2000:]
        planned[run] = re.search(r"output: (results/shared/models/gguf/\S+)", r.stdout).group(1)
    shared = planned["demo"]
    assert planned["my_study"] == shared and re.fullmatch(
        r"results/shared/models/gguf/weights\.[0-9a-f]{16}", shared
    )

    # the conversion, as if made (the real one: tests/test_real_e2e.py); each run links to it
    (wf / shared).mkdir(parents=True)
    for f, text in (("gguf_source.json", "{}\n"), ("config.json", "{}\n"), ("model.safetensors", "w" * 100)):
        (wf / shared / f).write_text(text)
    for run, name in (("demo", "mine"), ("my_study", "theirs")):
        target = f"results/{run}/models/gguf/{name}"
        r = snakemake(["--cores", "1", "--configfile", f"config/{run}.yaml", "--", target], wf)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "convert_gguf" not in r.stderr, r.stderr[-2000:]
        weights = wf / target / "model.safetensors"
        assert weights.stat().st_ino == (wf / shared / "model.safetensors").stat().st_ino  # no second copy
    # a conversion no model of the config makes is refused in one line
    stale = "results/shared/models/gguf/weights.0123456789abcdef"
    r = snakemake(["-n", "--configfile", "config/demo.yaml", "--", stale], wf)
    assert r.returncode != 0 and "no GGUF model of this config converts to it" in r.stdout + r.stderr
    # other scorer settings are another conversion
    cfg = yaml.safe_load((wf / "config/my_study.yaml").read_text())
    cfg["models"]["theirs"]["gguf"]["scorer"] = {"question": "Good?", "positive": "Yes", "negative": "No"}
    (wf / "config/my_study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    r = snakemake(
        ["-n", "--configfile", "config/my_study.yaml", "--", "results/my_study/models/gguf/theirs"], wf
    )
    assert r.returncode == 0, r.stderr[-3000:]
    other = re.search(r"output: (results/shared/models/gguf/\S+)", r.stdout).group(1)
    assert other != shared and other.startswith("results/shared/models/gguf/weights.")


def test_a_job_config_written_under_an_old_kind_keeps_its_place(tmp_path):
    """harness/workflow/jobs.py RENAMED: a job whose config a run wrote under the old kind (the tables all
    under `report`, say) keeps that folder and name; a job it has none for, or another key that merely
    begins alike (a ranker `rm.v2` beside `rm`), takes its rule's name."""
    from harness.workflow.jobs import config_stem

    (tmp_path / "configs/report").mkdir(parents=True)
    (tmp_path / "configs/report/mt_bench_categories.0123456789ab.yaml").write_text("step: report\n")
    (tmp_path / "configs/reference/p").mkdir(parents=True)
    (tmp_path / "configs/reference/p/rm.0123456789ab.yaml").write_text("step: reference\n")
    root = str(tmp_path)
    assert config_stem(root, "mt_bench_categories", "mt_bench_categories") == (
        "report", f"{root}/configs/report/mt_bench_categories")  # fmt: skip
    assert config_stem(root, "arena_hard_style", "arena_hard_style")[0] == "arena_hard_style"
    assert config_stem(root, "reference_logps", "p/rm")[0] == "reference"
    assert config_stem(root, "reference_logps", "p/rm.v2") == (
        "reference_logps", f"{root}/configs/reference_logps/p/rm.v2")  # fmt: skip
    assert config_stem(root, "train", "p/rm/dpo/seed0")[0] == "train"
