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

    for rk in ("rm", "ipr"):
        for rg in ("dpo", "nll", "bcr"):
            steps = [
                json.loads(x)
                for x in (wf / f"results/training/tiny-policy/{rk}/{rg}/seed0/train_log.jsonl")
                .read_text()
                .splitlines()
            ]
            assert steps and all("logratio/chosen" in s and "logratio/rejected" in s for s in steps)
            assert ("bcr/penalty" in steps[-1]) == (rg == "bcr")
    figure = wf / "results/figures/likelihood_trajectories.png"
    assert figure.read_bytes()[:4] == b"\x89PNG" and figure.stat().st_size > 10_000

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
