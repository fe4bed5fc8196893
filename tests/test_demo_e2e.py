"""The demo workflow end to end on tiny models built from code, offline, in a copy of the checkout."""

import json

import pytest

from .workflow import copy_workflow, job_counts, snakemake


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    wf = copy_workflow(tmp_path)
    r = snakemake(["--cores", "2", "--configfile", "config/demo.yaml"], wf, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]

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

    again = snakemake(["--cores", "2", "--configfile", "config/demo.yaml"], wf)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    assert job_counts(again.stdout) == {}


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
