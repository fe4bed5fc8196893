"""The registry of objectives (harness/training/objectives.py): one place that says which objectives exist.

The schema's enum and key properties equal the registry's; each kind's defaults and budget; a key
its kind does not take is refused in one line; the module imports without torch; a reference-free
objective trains end to end from its job config without reference log-probs.
"""

import json
import math
import subprocess
import sys

import pytest
import yaml

from harness.core.errors import ConfigError
from harness.training import objectives
from harness.workflow.config import validate

from .conftest import ROOT, pythonpath
from .test_training import _job, _train, pairs_file  # noqa: F401 - the fixture

SCHEMA = yaml.safe_load((ROOT / "config/schema.yaml").read_text())
ENTRY = SCHEMA["properties"]["regularizers"]["additionalProperties"]


def test_schema_enum_and_keys_equal_the_registry():
    assert ENTRY["properties"]["kind"]["enum"] == list(objectives.KINDS)
    used = {k for o in objectives.OBJECTIVES.values() for k in o.keys}
    assert set(ENTRY["properties"]) - {"kind"} == used
    for kind, o in objectives.OBJECTIVES.items():
        assert o.trainer in objectives.TRAINERS, kind
        assert o.reference == (o.trainer == "dpo"), kind  # only DPOTrainer reads the reference log-probs
        for _, weight in o.losses:
            assert isinstance(weight, float) or weight in o.keys, kind
        for field_, key in o.trainer_args.items():
            assert key in o.keys, (kind, field_)
        assert o.budget is None or isinstance(o.budget, float) or o.budget in o.keys, kind
    # every key's schema description names each kind that takes it (the registry is the source)
    for key in used:
        described = ENTRY["properties"][key]["description"]
        for kind, o in objectives.OBJECTIVES.items():
            if key in o.keys and key not in ("beta", "learning_rate"):
                assert kind in described, (key, kind)


def test_registry_imports_without_torch():
    code = "import sys, harness.training.objectives; assert 'torch' not in sys.modules, 'torch imported'"
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": pythonpath()}
    )
    assert r.returncode == 0, r.stderr


def test_settings_fill_each_kinds_defaults_and_drop_nulls():
    assert objectives.settings("dpo", {"kind": "none"}) == {"name": "dpo", "kind": "none"}
    assert objectives.settings("n", {"kind": "nll"}) == {"name": "n", "kind": "nll", "alpha": 0.2}
    assert objectives.settings("r", {"kind": "rdpo"})["alpha"] == 0.05  # same key, its own default
    assert objectives.settings("s", {"kind": "simpo", "learning_rate": None}) == {
        "name": "s", "kind": "simpo", "beta": 2.0, "gamma": 0.5, "lambda": 0.0,
    }  # fmt: skip
    with pytest.raises(
        objectives.ObjectiveError, match="'n' \\(kind nll\\) does not take 'delta'; it takes alpha"
    ):
        objectives.settings("n", {"kind": "nll", "delta": 0.5})


def test_an_objective_is_resolved_once_into_what_training_reads():
    r = objectives.resolve(objectives.settings("nll-a", {"kind": "nll", "alpha": 0.3}))
    assert r.kind == "nll" and r.loss_types == ("sigmoid", "sft") and r.loss_weights == (1.0, 0.3)
    assert r.weight("sft") == 0.3 and r.weight("hinge") == 0 and r.budget is None
    bcr = objectives.resolve({"kind": "bcr", "delta": 2.0})
    assert (
        bcr.budget == 2.0 and bcr.objective.term == "budget" and bcr.settings == {"kind": "bcr", "delta": 2.0}
    )


def test_budgets():
    b = objectives.budget
    assert b(objectives.settings("x", {"kind": "bcr", "delta": 2.0})) == 2.0
    assert b({"kind": "bcr"}) == 0.5
    assert b({"kind": "dpop"}) == 0.0 and b({"kind": "none"}) == math.inf
    assert all(b({"kind": k}) is None for k in ("nll", "ipo", "simpo", "orpo", "rdpo"))
    assert set(objectives.sweepable()) == {"none", "bcr", "dpop"}


def test_config_refuses_a_key_the_kind_does_not_take():
    raw = yaml.safe_load((ROOT / "config/demo_pipeline.yaml").read_text())
    raw["regularizers"]["nll"]["delta"] = 0.5
    with pytest.raises(ConfigError, match=r"regularizers/nll: 'nll' \(kind nll\) does not take 'delta'"):
        validate(raw, "demo_pipeline.yaml")
    raw = yaml.safe_load((ROOT / "config/demo_pipeline.yaml").read_text())
    raw["regularizers"]["simpo"] = {"kind": "simpo", "gamma": 1.0}
    raw["budget_sweep"][0]["regularizers"].append("simpo")
    with pytest.raises(
        ConfigError, match="kind simpo, which sets no budget; a budget sweep takes none, bcr, dpop"
    ):
        validate(raw, "demo_pipeline.yaml")


def test_describe_lists_every_kind():
    table = objectives.describe()
    assert all(f"| `{k}` |" in table for k in objectives.KINDS)


@pytest.mark.parametrize(
    "kind, keys, unit",
    [("simpo", {"beta": 2.0, "gamma": 0.5}, "token"), ("kto", {}, "sum"), ("orpo", {"lambda": 0.5}, "token")],
)
def test_trains_without_reference_logps(tiny_models, pairs_file, tmp_path, kind, keys, unit):  # noqa: F811
    """Objectives trained by CPOTrainer, KTOTrainer and ORPOTrainer run from their job config alone (no
    --reference) and report their own likelihood change in their own unit."""
    reg = objectives.settings(kind, {"kind": kind, **keys})
    steps, summary = _train(_job(tiny_models, reg), pairs_file, tmp_path)
    n = 24 if kind == "kto" else 12  # KTO's batch holds examples: each pair is two of them
    assert summary["steps"] == n and len(steps) == n
    assert summary["logratio_unit"] == unit
    chosen, rejected = summary["final_chosen_logratio"], summary["final_rejected_logratio"]
    assert chosen is not None and math.isfinite(chosen) and math.isfinite(rejected)
    # each of them pushes the chosen answers up relative to the rejected ones
    assert chosen > rejected
    assert (tmp_path / "model" / "config.json").exists() and not (tmp_path / "model.partial").exists()
    assert json.loads((tmp_path / "summary.json").read_text())["regularizer"]["kind"] == kind


def test_baselines_names_are_checked():
    raw = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    raw["baselines"][1]["regularizers"][2] = "nope"
    with pytest.raises(ConfigError, match="baselines/1/regularizers/2: 'nope' is not a key of regularizers"):
        validate(raw, "config.yaml")


def test_baselines_table_marks_the_reference_free_likelihood(tmp_path):
    """A reference-free cell's likelihood change (per token, against the initial policy) goes to its own
    column, not beside the DPO cells' summed change against the reference."""
    from harness.reporting.report import build_table, to_markdown

    paths = []
    for reg, unit, value in (("dpo", "sum", -3.0), ("simpo", "token", -0.02)):
        for seed in (0, 1):
            p = tmp_path / f"{reg}{seed}.json"
            p.write_text(
                json.dumps(
                    {
                        "cell": {"policy": "p", "ranker": "rm", "regularizer": reg, "seed": seed},
                        "final_chosen_logratio": value + seed,
                        "final_rejected_logratio": value - 1,
                        "logratio_unit": unit,
                    }
                )
            )
            paths.append(str(p))
    df = build_table(paths).set_index("regularizer")
    assert (
        df.loc["dpo", "chosen_logratio"] == -2.5
        and df.loc["dpo", "chosen_logp_token"] != df.loc["dpo", "chosen_logp_token"]
    )
    assert df.loc["simpo", "chosen_logp_token"] == pytest.approx(0.48)
    assert df.loc["simpo", "chosen_logratio"] != df.loc["simpo", "chosen_logratio"]  # NaN: not measured
    md = to_markdown(build_table(paths))
    assert "Δ log π(y_w) per token" in md and "reference-free trainer" in md


def test_docs_table_is_the_registry():
    readme = (ROOT / "docs/methods.md").read_text()
    start = readme.index(objectives.DOC_BEGIN)
    body = readme[readme.index("\n", start) + 1 : readme.index("<!-- end of objectives table -->")]
    assert body.strip() == objectives.describe()


def test_trainer_configs_take_the_objectives_own_settings():
    from harness.training.args import dpo_config, trl_config
    from harness.workflow.config import section_defaults

    training = {**section_defaults("training"), "beta": 0.01, "learning_rate": 5e-7}
    job = {"seed": 0, "training": training}
    robust = objectives.settings("r", {"kind": "robust", "epsilon": 0.2, "learning_rate": 1e-6})
    args = dpo_config({**job, "regularizer": robust}, "/tmp/x", *objectives.loss_types(robust))
    assert (args.beta, args.learning_rate, args.label_smoothing, args.loss_type) == (
        0.01,
        1e-6,
        0.2,
        ["robust"],
    )
    ipo = objectives.settings("i", {"kind": "ipo"})
    assert dpo_config({**job, "regularizer": ipo}, "/tmp/x", *objectives.loss_types(ipo)).beta == 0.1
    simpo = objectives.settings("s", {"kind": "simpo", "beta": 2.5, "gamma": 1.375})
    args = trl_config({**job, "regularizer": simpo}, "/tmp/x")
    assert (args.loss_type, args.beta, args.simpo_gamma, args.cpo_alpha, args.learning_rate) == (
        "simpo", 2.5, 1.375, 0.0, 5e-7,
    )  # fmt: skip
    orpo = objectives.settings("o", {"kind": "orpo", "lambda": 0.25})
    assert trl_config({**job, "regularizer": orpo}, "/tmp/x").beta == 0.25  # ORPO's lambda


def test_judge_backends_in_the_schema_are_the_registry():
    from harness.backends import REGISTRY

    judge = SCHEMA["$defs"]["judge"]["properties"]["backend"]
    assert judge["enum"] == list(REGISTRY)
    assert [n for n, b in REGISTRY.items() if b.ground_truth] == ["oracle"]


def test_sweep_and_baselines_choose_their_benchmarks():
    """A budget sweep's `evaluate` and a baselines entry's `benchmarks` name the benchmarks their cells
    are evaluated on; the cells, the plan and the joint LC fit follow."""
    from harness.core.cells import cells, evaluated_models
    from harness.workflow.config import load_config

    cfg = load_config(ROOT / "config/demo.yaml")
    cfg["budget_sweep"][0]["evaluate"] = ["alpaca_eval"]
    cfg["baselines"][0]["benchmarks"] = ["alpaca_eval", "mt_bench"]
    sweep = {
        ("tiny-policy", "ipr-oracle", g, s) for g in cfg["budget_sweep"][0]["regularizers"] for s in (0, 1, 2)
    }
    base = {("tiny-policy", "ipr-oracle", g, s) for g in ("ipo", "simpo") for s in (0, 1, 2)}
    assert sweep <= set(cells(cfg, "alpaca_eval")[1]) and not sweep & set(cells(cfg, "mt_bench")[1])
    assert base <= set(cells(cfg, "mt_bench")[1]) and not base & set(cells(cfg, "downstream")[1])
    assert len(evaluated_models(cfg, "alpaca_eval")) == 1 + 27 + 12 + 6
    assert len(evaluated_models(cfg, "downstream")) == 1 + 27
    bad = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    bad["budget_sweep"][0]["evaluate"] = ["alpaca"]
    with pytest.raises(ConfigError, match="budget_sweep/0/evaluate/0: 'alpaca' is not a key of evaluation"):
        validate(bad, "demo.yaml")
