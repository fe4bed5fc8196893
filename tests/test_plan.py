"""`python -m harness plan`: counted parts by hand on the paper config, the time-limit flag, the CLI.
(The demo's planned judge calls and training steps against the ones it makes: tests/test_demo_e2e.py.)"""

import json
import subprocess
import sys
from pathlib import Path

from harness.workflow import plan
from harness.workflow.config import load_config

from .conftest import ROOT

LIMITS = plan.profile_limits(ROOT / "profiles/slurm/config.yaml")


def test_paper_plan_counts_and_fits_the_profile():
    cfg = load_config(ROOT / "config/config.yaml")
    r = plan.plan(cfg, Path("/nonexistent"), LIMITS)  # nothing run yet: upper bounds
    s = r["stages"]
    # 61,135 prompts x 2 policies; best_worst on K = 5: 2K - 3 = 7 comparisons, both orders
    assert s["rank_ipr"]["judge_calls"] == 61135 * 2 * 7 * 2
    assert s["rank_ipr"]["jobs"] == 8  # 4 shards per policy
    assert s["rank_study_ipr"]["judge_calls"] == 2000 * 2 * 10 * 2  # round robin: K(K-1)/2, both orders
    # 61,135 pairs at 2 per device x 8 GPUs = 3,821 batches, 8 accumulation: 478 steps
    # 60 main-table and budget-sweep cells, 90 more of the baselines table (tests/test_dag.py)
    assert len(r["train_steps"]) == 150
    # KTO's batch holds examples, two per pair: twice the steps
    kto = {k for k in r["train_steps"] if "/kto/" in k}
    assert len(kto) == 12 and {r["train_steps"][k] for k in kto} == {956}
    assert {v for k, v in r["train_steps"].items() if k not in kto} == {478}
    assert (s["train"]["jobs"], s["generate"]["jobs"], s["judge"]["jobs"]) == (150, 456, 456)
    # 152 models, each on three benchmarks: MT-Bench's 2 turns, Arena-Hard's 2 games per question
    assert s["judge"]["judge_calls"] == 152 * (805 + 80 * 2 + 500 * 2)
    assert r["gpu_hours"] > 100 and r["api_cost"] > 0
    assert r["over_limit"] == []


def test_a_job_past_its_time_limit_is_flagged():
    cfg = load_config(ROOT / "config/config.yaml")
    cfg["rankers"]["ipr-llama70b"]["shards"] = 1  # one 4-GPU job per policy: about a day
    r = plan.plan(cfg, Path("/nonexistent"), LIMITS)
    assert r["over_limit"] == ["rank_ipr"] and r["stages"]["rank_ipr"]["job_hours"] > 12
    assert "Past the profile's time limit: rank_ipr" in plan.render(r, cfg["plan"])


def test_plan_cli_prints_the_table_and_writes_json(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "harness", "plan", "--json", str(tmp_path / "plan.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "| rank_ipr | 8 |" in out.stdout and "GPU-hours" in out.stdout
    assert "No job is past its profile time limit." in out.stdout
    assert json.loads((tmp_path / "plan.json").read_text())["stages"]["sample"]["jobs"] == 2
    bad = subprocess.run(
        [sys.executable, "-m", "harness", "plan", "--configfile", "nope.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith("error:")


def test_the_readme_cost_figures_are_the_plan_of_today():
    """The README's paper plan is generated (one source for its cost figures) and current: what
    `harness plan` gives now, before anything has run; lm-eval's tasks have GPU-hours."""
    cfg = load_config(ROOT / "config/config.yaml")
    r = plan.plan(cfg, Path("/nonexistent"), LIMITS)
    assert r["stages"]["downstream"]["estimated"] and r["stages"]["downstream"]["gpu_hours"] > 0
    text = (ROOT / "README.md").read_text()
    start, end = plan.readme_block(text)
    assert text[start:end] == plan.summary(plan.render(r, cfg["plan"])), (
        "README.md's plan is stale: python -m harness plan --configfile config/config.yaml --readme README.md"
    )
    body = text[:start] + text[end:]
    assert f"{r['gpu_hours']:,.0f} GPU-hours" not in body  # no copy of the total in the prose to go stale


def test_readme_option_rewrites_only_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{plan.README_BEGIN}\nold\n{plan.README_END}\nafter\n")
    r = subprocess.run(
        [sys.executable, "-m", "harness", "plan", "--configfile", str(ROOT / "config/config.yaml"), "--readme", str(readme),
         "--profile", str(ROOT / "profiles/slurm/config.yaml")],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    text = readme.read_text()
    assert text.startswith(f"before\n{plan.README_BEGIN}\n| stage |") and text.endswith(
        f"{plan.README_END}\nafter\n"
    )
    assert "old" not in text and "Total: " in text
