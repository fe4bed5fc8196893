"""The demo workflow end to end on tiny models built from code, offline, in a copy of the checkout;
then, on the finished workspace, what a change of config or code reruns (dry runs), and a run killed
with SIGKILL that resumes to the same tables."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from .workflow import copy_workflow, job_counts, snakemake, snakemake_command

DEMO = ["--cores", "2", "--configfile", "config/demo.yaml"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A finished demo workspace (the whole DAG run once for every test of this module)."""
    wf = copy_workflow(tmp_path_factory.mktemp("demo"))
    r = snakemake(DEMO, wf, timeout=1800)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return wf


def planned(args: list[str], wf) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a dry run plans."""
    r = snakemake(["-n", *args], wf)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=rule \w+:)", r.stdout):
        m = re.match(r"rule (\w+):", block)
        if m:
            wc = re.search(r"wildcards: (.*)", block)
            pairs = [kv.split("=", 1) for kv in wc.group(1).split(", ")] if wc else []
            jobs.append((m.group(1), dict(pairs)))
    return jobs


def test_demo_end_to_end(demo):
    wf = demo
    table = (wf / "results/tables/main.md").read_text().splitlines()
    rows = [line for line in table if line.startswith("| tiny-policy")]
    assert len(rows) == 7  # base + 2 rankers x 3 regularizers
    assert rows[0].startswith("| tiny-policy | base |")
    cells = {tuple(c.strip() for c in row.split("|")[2:4]) for row in rows[1:]}
    assert cells == {(rk, rg) for rk in ("rm", "ipr") for rg in ("dpo", "nll", "bcr")}

    trained = [(rk, rg) for rk in ("rm", "ipr") for rg in ("dpo", "nll", "bcr")]
    trained += [("ipr", "dpop"), ("ipr", "bcr-d2")]  # the budget sweep's own cells
    for rk, rg in trained:
        log = wf / f"results/training/tiny-policy/{rk}/{rg}/seed0/train_log.jsonl"
        steps = [json.loads(x) for x in log.read_text().splitlines()]
        assert steps and all("logratio/chosen" in s and "logratio/rejected" in s for s in steps)
        assert ("bcr/penalty" in steps[-1]) == rg.startswith(("bcr", "dpop"))
        assert all(s["tokens_per_second"] > 0 for s in steps[1:])
    # every number with its interval: one seed, so the bootstrap interval of the run itself
    assert all(row.count("[") >= 3 for row in rows)  # LC, WR and MT-Bench
    categories = (wf / "results/tables/mt_bench_categories.md").read_text()
    assert (
        "| coding | extraction | humanities | math | reasoning | roleplay | stem | writing | overall |"
        in categories
    )
    for name in ("likelihood_trajectories", "budget_sweep", "mt_bench_categories"):
        figure = wf / f"results/figures/{name}.png"
        assert figure.read_bytes()[:4] == b"\x89PNG" and figure.stat().st_size > 10_000
    sweep = (wf / "results/tables/budget_sweep.csv").read_text().splitlines()
    assert [line.split(",")[2:4] for line in sweep[1:]] == [
        ["dpop", "0.0000"],
        ["bcr", "0.5000"],
        ["bcr-d2", "2.0000"],
        ["dpo", "inf"],
    ]
    _check_likelihood_shapes(wf)

    study = (wf / "results/tables/ranker_study.md").read_text()
    assert "| tiny-policy | ipr | rm |" in study  # agreement between the two rankers
    assert all(f"| tiny-policy | {r} | 48 |" in study for r in ("ipr", "rm"))

    meta = json.loads((wf / "results/pairs/tiny-policy/ipr/pairs.meta.json").read_text())
    assert meta["pairs"] + sum(meta["no_pair"].values()) == meta["prompts"] == 48

    # temp files of atomic writes start with "." (Snakemake's own .snakemake_timestamp marks directory outputs)
    leftovers = [
        p
        for p in (wf / "results").rglob("*")
        if p.name.endswith(".partial") or p.name.startswith(".") and p.name != ".snakemake_timestamp"
    ]
    assert leftovers == []

    again = snakemake(DEMO, wf)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    assert job_counts(again.stdout) == {}


def _work(jobs, rule):
    return [wc for r, wc in jobs if r == rule]


def test_one_regularizer_parameter_reruns_only_its_cells(demo):
    jobs = planned([*DEMO, "--config", "regularizers={'bcr': {'kind': 'bcr', 'delta': 0.7}}"], demo)
    trained = _work(jobs, "train")
    assert sorted((w["ranker"], w["regularizer"]) for w in trained) == [("ipr", "bcr"), ("rm", "bcr")]
    assert all("/bcr/" in w["model"] for rule in ("generate", "judge", "metrics") for w in _work(jobs, rule))
    assert not {"sample", "rank", "rank_ipr", "reference_logps"} & {r for r, _ in jobs}


def test_another_seed_adds_cells_without_touching_the_others(demo):
    jobs = planned([*DEMO, "--config", "seeds=[0, 1]"], demo)
    assert {w["seed"] for w in _work(jobs, "train")} == {"1"} and len(_work(jobs, "train")) == 8
    assert all(w["model"].endswith("seed1") for w in _work(jobs, "generate"))
    assert "reference_logps" not in {r for r, _ in jobs}  # shared by every seed


def test_changing_the_judge_reruns_ranking_and_everything_after_it(demo):
    jobs = planned([*DEMO, "--config", "rankers={'ipr': {'judge': {'max_prompt_tokens': 384}}}"], demo)
    rules = {r for r, _ in jobs}
    assert {"rank_ipr", "reference_logps", "train", "generate", "judge", "metrics", "report"} <= rules
    assert {w["ranker"] for w in _work(jobs, "train")} == {
        "ipr"
    } and "rank" not in rules  # the RM's pairs stay
    assert {w["ranker"] for w in _work(jobs, "rank_study_ipr")} == {"ipr"}


def test_step_version_invalidates_on_purpose(demo):
    rules = demo / "rules/train.smk"
    text = rules.read_text()
    rules.write_text(text.replace("step_version=2,", "step_version=3,", 1))
    try:
        jobs = planned(DEMO, demo)
    finally:
        rules.write_text(text)
    assert (
        len(_work(jobs, "train")) == 8 and not _work(jobs, "rank_ipr") and not _work(jobs, "reference_logps")
    )
    assert len(_work(jobs, "generate")) == 12  # every trained model, both benchmarks; not the base policy


TABLES = ("main.md", "ranker_study.md", "mt_bench_categories.md", "budget_sweep.csv", "main.csv")


def _table(path):
    """A table without its provenance footer and compute line, which differ between any two runs."""
    return [x for x in path.read_text().splitlines() if not x.startswith(("<!--", "Compute behind"))]


def test_sigkill_then_make_demo_resumes_to_the_same_tables(demo, tmp_path):
    wf = copy_workflow(tmp_path)
    first = subprocess.Popen(
        [*snakemake_command(), *DEMO],
        cwd=wf,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(wf)),
        start_new_session=True,  # its own process group: the kill takes every job with it
    )
    finished, lines = {}, []
    for line in first.stdout:
        lines.append(line)
        m = re.search(r"Finished jobid: (\d+) \(Rule: (\w+)\)", line)
        if m:
            finished[m.group(1)] = m.group(2)
        if list(finished.values()).count("train") >= 2:  # in the middle of training, far from the end
            os.killpg(first.pid, signal.SIGKILL)
            break
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, "".join(lines[-50:])
    assert (wf / ".snakemake/locks").exists() and any((wf / ".snakemake/locks").iterdir())

    # what `make demo` runs: clear the killed run's lock, then the workflow
    subprocess.run(
        [sys.executable, "-m", "harness.locks"], cwd=wf, check=True, env=dict(os.environ, PYTHONPATH=str(wf))
    )
    second = snakemake(DEMO, wf, timeout=1800)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    total = sum(
        v for k, v in job_counts(snakemake(["-n", "--forceall", *DEMO], wf).stdout).items() if k != "total"
    )
    rerun = job_counts(second.stdout).get("total", 0)
    assert rerun <= total - len(finished)  # only unfinished jobs ran again (the killed ones among them)
    for name in TABLES:
        assert _table(wf / "results/tables" / name) == _table(demo / "results/tables" / name), name


TOL = 0.25  # nats


def _check_likelihood_shapes(wf):
    """The shapes each regularizer must give on the demo's logged trajectories (batch means per step).

    Checked from the third logged step on: the first update is Adam's fixed-size first step, taken
    before any penalty exists (the log at step 1 is the untrained policy, all regularizers alike).
    """

    def trajectory(rk, rg):
        path = wf / f"results/training/tiny-policy/{rk}/{rg}/seed0/train_log.jsonl"
        return [json.loads(x)["logratio/chosen"] for x in path.read_text().splitlines()][2:]

    def final(rk, rg):
        path = wf / f"results/training/tiny-policy/{rk}/{rg}/seed0/summary.json"
        return json.loads(path.read_text())["final_chosen_logratio"]

    for rk in ("rm", "ipr"):
        assert min(trajectory(rk, "nll")) >= -TOL and final(rk, "nll") >= -TOL  # NLL: no fall at all
        assert min(trajectory(rk, "bcr")) >= -(0.5 + TOL) and final(rk, "bcr") >= -(0.5 + TOL)
    assert min(trajectory("ipr", "bcr-d2")) >= -(2.0 + TOL)
    assert min(trajectory("ipr", "dpop")) >= -TOL
    # plain DPO is free to let the chosen likelihood fall: on the IPR pairs it does, further than under
    # any regularizer of the main table
    lowest = min(trajectory("ipr", "dpo"))
    assert lowest < 0 and all(lowest < min(trajectory("ipr", rg)) for rg in ("nll", "bcr", "dpop"))


REPORTED = [
    "main.csv",
    "ranker_study.csv",
    "mt_bench_categories.csv",
    "budget_sweep.csv",
    "cost.csv",
    "likelihood_trajectories.png",
    "budget_sweep.png",
    "mt_bench_categories.png",
]


def test_html_report_opens_in_chromium_with_every_figure(demo):
    from harness.report_check import browser, check

    r = snakemake(
        ["--configfile", "config/demo.yaml", "--report", "results/report.html"], demo
    )  # `make report`
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    if browser() is None:
        pytest.skip(
            "no headless Chromium (Debian: apt-get install chromium-headless-shell; .ci/run installs it)"
        )
    assert check(demo / "results/report.html", REPORTED) == []
