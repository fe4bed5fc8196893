"""Load and validate an experiment config against config/schema.yaml, filling schema defaults.

The Snakefile validates with ``snakemake.utils.validate`` (same schema, same defaults); this module
serves the CLI (``harness check-config``) and tests, and reports the offending key path.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from harness.backends import loads_model
from harness.core.cells import EVALUATED
from harness.core.errors import ConfigError
from harness.core.io import read_yaml
from harness.ranking.kinds import kind as ranker_kind

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


def _validator(schema: dict):
    import jsonschema

    base = jsonschema.validators.validator_for(schema)

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# query parameters that carry a credential (an api-version and the like pass)
_KEY_PARAMS = re.compile(
    r"(?i)^(api[-_]?key|key|token|access[-_]?token|secret|password|sig|signature|auth.*)$"
)


def check_secrets(cfg, source: str, path: str = "") -> None:
    """No secret in a config, which job configs, logs and error lines repeat: every ``api_key_env`` names
    an environment variable, and no ``base_url`` carries credentials (user-info, or a key in its query).
    The refusal never shows the value."""
    from urllib.parse import parse_qsl, urlsplit

    items = cfg.items() if isinstance(cfg, dict) else enumerate(cfg) if isinstance(cfg, list) else ()
    for k, v in items:
        where = f"{path}/{k}" if path else str(k)
        if k == "api_key_env" and isinstance(v, str) and not _VARIABLE.fullmatch(v):
            raise ConfigError(
                f"{source}: {where}: not the name of an environment variable (a key itself? its value is not "
                "shown); put the key in a variable (export OPENAI_API_KEY=...) and name the variable here"
            )
        if k == "base_url" and isinstance(v, str):
            url = urlsplit(v)
            if url.username or url.password or any(_KEY_PARAMS.match(n) for n, _ in parse_qsl(url.query)):
                raise ConfigError(
                    f"{source}: {where}: the URL carries credentials (user-info or a key in its query; not "
                    "shown); give the bare endpoint and the key through api_key_env"
                )
        check_secrets(v, source, where)


def validate(cfg: dict, source: str = "config", schema_path: Path = SCHEMA) -> dict:
    """Validate ``cfg`` in place (defaults filled); raise ConfigError naming the key path."""
    check_secrets(cfg, source)  # before any other check: their lines may quote values
    schema = yaml.safe_load(schema_path.read_text())
    errors = sorted(_validator(schema).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        message = " ".join(e.message.split())
        if len(message) > 300:  # a oneOf failure quotes the whole instance
            message = message[:300] + "..."
        raise ConfigError(f"{source}: {where}: {message}")
    check_references(cfg, source)
    return cfg


SHARED_RUN = "shared"  # results/shared/: what every run may reuse (judge-call caches), not a run


def run_name(cfg: dict, files) -> str:
    """The run's folder under results/: the config's ``run``, else the stem of its first config file
    (config/my_study.yaml -> results/my_study/), so that two configs never write the same files."""
    name = cfg.get("run") or (Path(str(files[0])).stem if files else "")
    where = "run" if cfg.get("run") else f"run (from the file name {files[0]})" if files else "run"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or ""):
        raise ConfigError(
            f"{where}: {name!r} is not a folder name (letters, digits, '.', '_', '-'); set `run:`"
        )
    if name == SHARED_RUN:
        raise ConfigError(
            f"{where}: '{SHARED_RUN}' is the folder runs share (results/{SHARED_RUN}/); pick another"
        )
    return name


def run_dir(cfg: dict, files=()) -> str:
    """``results/<run>``: every output of one run (data, models, evaluations, tables, logs, timings)."""
    return f"results/{run_name(cfg, files)}"


def workflow_check(cfg: dict, files, overrides) -> None:
    """The Snakefile's check of its merged config (a copy: Snakemake fills the defaults itself), naming
    the config file(s) and, where ``--config`` set values, that too. Each file is read again first:
    Snakemake's own reading keeps the last of two equal keys."""
    for f in files:
        raw = read_yaml(f)
        if isinstance(raw, dict) and raw.get("__use_yte__"):
            raise ConfigError(
                f"{f}: __use_yte__: a YTE template runs Python when Snakemake reads it (Snakemake has read it "
                "by now); the harness takes plain YAML configs only"
            )
    source = ", ".join(str(f) for f in files) + (" with --config overrides" if overrides else "")
    validate(copy.deepcopy(cfg), source)


def check_references(cfg: dict, source: str) -> None:
    """Names that must point at entries of ``models``, ``policies``, ``rankers`` or ``regularizers``."""
    models = cfg["models"]
    refs = [(f"policies/{i}", p) for i, p in enumerate(cfg["policies"])]
    for name, r in cfg["rankers"].items():
        if not ranker_kind(r).pairwise:
            refs.append((f"rankers/{name}/model", r["model"]))
        elif loads_model(r["judge"]):
            refs.append((f"rankers/{name}/judge/model", r["judge"].get("model")))
    for bench, b in cfg["evaluation"].items():
        if "judge" in b and loads_model(b["judge"]):
            refs.append((f"evaluation/{bench}/judge/model", b["judge"].get("model")))
    pairwise = [
        (f"rankers/{n}/judge", r["judge"]) for n, r in cfg["rankers"].items() if ranker_kind(r).pairwise
    ]
    from harness.backends import spec
    from harness.core.benchmarks import get

    for bench, b in cfg["evaluation"].items():
        judge, where = b.get("judge", {}), f"evaluation/{bench}/judge"
        if judge and not get(bench).rating and not get(bench).judge_prompts_in_data:
            pairwise.append((where, judge))
        if judge and get(bench).rating:  # graded 1-10 alone, not compared in pairs
            if spec(judge["backend"]).ground_truth and (
                judge.get("error_rate") or judge.get("position_bias")
            ):
                raise ConfigError(
                    f"{source}: {where}: the oracle's simulated errors apply to pairwise verdicts; "
                    "its 1-10 ratings take no error_rate or position_bias"
                )
            if judge.get("verdict") == "logprobs":
                raise ConfigError(
                    f"{source}: {where}/verdict: logprobs reads one label token, which a 1-10 grade ([[n]]) "
                    "is not; use verdict: text (FastChat's parsing)"
                )
    from harness.ranking.verdicts import template_names

    templates = template_names()
    for where, judge in pairwise:
        if not spec(judge["backend"]).ground_truth and not judge.get("template"):
            raise ConfigError(
                f"{source}: {where}: a pairwise judge needs a 'template' (a file of harness/templates)"
            )
        if judge.get("template") and judge["template"] not in templates:
            raise ConfigError(
                f"{source}: {where}/template: no template '{judge['template']}' in harness/templates "
                f"({', '.join(templates)})"
            )
    for bench, annotator in ((n, b["annotator"]) for n, b in cfg["evaluation"].items() if "annotator" in b):
        from harness.evaluation.alpaca import alpaca_eval_configs

        try:
            known = sorted(p.name for p in alpaca_eval_configs().iterdir() if (p / "configs.yaml").exists())
        except ImportError:
            known = None  # checked again where the judge runs
        if known is not None and annotator["name"] not in known:
            raise ConfigError(
                f"{source}: evaluation/{bench}/annotator/name: unknown alpaca_eval annotator "
                f"'{annotator['name']}'; available: {', '.join(known)}"
            )
    for where, name in refs:
        if name not in models:
            raise ConfigError(
                f"{source}: {where}: '{name}' is not a key of models ({', '.join(sorted(models))})"
            )
    _check_grids(cfg, source)
    check_sources(cfg, source)
    _check_evaluate(cfg, source)


def _check_evaluate(cfg: dict, source: str) -> None:
    """``evaluate``: new names, known policies; a ranker may not be called ``evaluated``."""
    if EVALUATED in cfg["rankers"]:
        raise ConfigError(
            f"{source}: rankers/{EVALUATED}: the name is taken (models evaluated without training)"
        )
    for name, entry in cfg.get("evaluate", {}).items():
        if name in cfg["models"]:
            raise ConfigError(
                f"{source}: evaluate/{name}: '{name}' is already a key of models; name the evaluated model anew"
            )
        policy = entry.get("policy")
        if policy is not None and policy not in cfg["policies"]:
            raise ConfigError(
                f"{source}: evaluate/{name}/policy: '{policy}' is not one of policies ({', '.join(cfg['policies'])})"
            )


def evaluated(cfg: dict, run: str) -> dict[str, tuple[str, dict]]:
    """``evaluate`` as name -> (policy, models entry). Refused with one line: a model that is its
    policy's own model where AlpacaEval judges against that policy's answers (``reference: base``): it
    would be judged against itself (a win rate of 50 that means nothing)."""
    out = {}
    against_base = [n for n, b in cfg["evaluation"].items() if b.get("reference") == "base"]
    for name, entry in cfg.get("evaluate", {}).items():
        policy = entry.get("policy") or cfg["policies"][0]
        model = {k: v for k, v in entry.items() if k != "policy"}
        if against_base and _same_model(model, cfg["models"][policy], policy, run):
            raise ConfigError(
                f"evaluate/{name}: is the model of policy '{policy}', whose answers are the reference of "
                f"evaluation/{against_base[0]} (reference: base): it would be judged against itself"
            )
        out[name] = (policy, model)
    return out


def _same_model(model: dict, policy_entry: dict, policy: str, run: str) -> bool:
    """Whether ``model`` is what the policy's base answers come from (its fine-tuned model where it
    has ``finetune``, the built or converted one, else its source at its revision)."""
    from harness.workflow.paths import model_ref, run_paths

    if "gguf" in model:
        return "finetune" not in policy_entry and model["gguf"] == policy_entry.get("gguf")
    cfg = {"models": {policy: policy_entry}}
    theirs = model_ref(cfg, policy, run_paths(f"results/{run}"))

    def where(src):
        return str(Path(src).resolve()) if Path(src).exists() else src

    return where(model["source"]) == where(theirs["source"]) and model.get("revision") == theirs["revision"]


def dataset_sources(cfg: dict):
    """(key path as a tuple, source) of every dataset source the config names."""
    yield ("prompts",), cfg["prompts"]
    for name, m in cfg["models"].items():
        if "finetune" in m:
            yield ("models", name, "finetune", "data"), m["finetune"]["data"]
    for name, s in cfg["ranker_study"].get("preference_sets", {}).items():
        yield ("ranker_study", "preference_sets", name, "source"), s["source"]
    from harness.core.benchmarks import get

    for bench, b in cfg["evaluation"].items():
        for key in [k for k, _ in get(bench).data.values()] + ["lc_data"]:
            if isinstance(b.get(key), list):  # several files of one kind (Arena-Hard's baselines)
                yield from ((("evaluation", bench, key, str(i)), s) for i, s in enumerate(b[key]))
            elif b.get(key):
                yield ("evaluation", bench, key), b[key]


def check_sources(cfg: dict, source: str) -> None:
    """Every local source file must exist when the config is read (relative to the working
    directory), so that a run never goes on with the outputs of an earlier source."""
    for keys, src in dataset_sources(cfg):
        path = src.get("path")
        if path is not None and not Path(path).is_file():
            where = "/".join((*keys, "path"))
            raise ConfigError(f"{source}: {where}: no such file '{path}' (relative to {Path.cwd()})")
    for name, m in cfg["models"].items():
        if "gguf" in m:
            from harness.backends.convert import gguf_path
            from harness.core.errors import ModelError

            try:
                gguf_path(m["gguf"], name)
            except ModelError as e:
                raise ConfigError(f"{source}: {e}") from None


def load_config(path) -> dict:
    """A config file, validated, with its ``run`` named (``run_name``)."""
    cfg = validate(read_yaml(path), str(path))
    cfg["run"] = run_name(cfg, [path])
    with_evaluated(cfg)
    return cfg


def with_evaluated(cfg: dict) -> None:
    """Add the models of ``evaluate`` to ``models`` (after ``evaluated``'s checks), each one's policy
    filled in, so that every step loads them like any other model."""
    for name, (policy, model) in evaluated(cfg, cfg["run"]).items():
        cfg["models"][name] = model
        cfg["evaluate"][name]["policy"] = policy


def _check_grids(cfg: dict, source: str) -> None:
    def need(where, name, keys, what):
        if name not in keys:
            raise ConfigError(
                f"{source}: {where}: '{name}' is not a key of {what} ({', '.join(sorted(keys))})"
            )

    from harness.training import objectives

    regs = cfg["regularizers"]
    for name, entry in regs.items():
        try:
            objectives.settings(name, entry)
        except objectives.ObjectiveError as e:
            raise ConfigError(f"{source}: regularizers/{name}: {e}") from None
    for i, name in enumerate(cfg.get("main_table", {}).get("regularizers") or []):
        need(f"main_table/regularizers/{i}", name, regs, "regularizers")
    benches = cfg.get("evaluation", {})
    for section, key in (("budget_sweep", "evaluate"), ("baselines", "benchmarks")):
        for i, cell in enumerate(cfg.get(section, [])):
            if isinstance(cell.get(key), list):
                for j, b in enumerate(cell[key]):
                    need(f"{section}/{i}/{key}/{j}", b, benches, "evaluation")
    for i, cell in enumerate(cfg.get("baselines", [])):
        need(f"baselines/{i}/policy", cell["policy"], cfg["policies"], "policies")
        need(f"baselines/{i}/ranker", cell["ranker"], cfg["rankers"], "rankers")
        for j, name in enumerate(cell["regularizers"]):
            need(f"baselines/{i}/regularizers/{j}", name, regs, "regularizers")
    for i, c in enumerate(cfg.get("comparisons", [])):
        where = f"comparisons/{i}/reference"
        if c["vary"] == "regularizer":
            need(where, c["reference"], regs, "regularizers")
        elif c["vary"] == "ranker":
            need(where, c["reference"], cfg["rankers"], "rankers")
        elif c["reference"] != "base":
            raise ConfigError(
                f"{source}: {where}: vary: model compares with the base policy: reference: base"
            )
    sweepable = objectives.sweepable()
    for i, cell in enumerate(cfg.get("budget_sweep", [])):
        need(f"budget_sweep/{i}/policy", cell["policy"], cfg["policies"], "policies")
        need(f"budget_sweep/{i}/ranker", cell["ranker"], cfg["rankers"], "rankers")
        norms = set()
        for j, name in enumerate(cell["regularizers"]):
            where = f"budget_sweep/{i}/regularizers/{j}"
            need(where, name, regs, "regularizers")
            kind = regs[name]["kind"]
            if kind not in sweepable:
                raise ConfigError(
                    f"{source}: {where}: '{name}' is of kind {kind}, which sets no budget; a budget sweep "
                    f"takes {', '.join(sweepable)}"
                )
            reg = objectives.settings(name, regs[name])
            if "normalize" in reg:
                norms.add(reg["normalize"])
        if len(norms) > 1:
            raise ConfigError(
                f"{source}: budget_sweep/{i}: budgets on both summed and per-token log-likelihoods; use one"
            )


def section_defaults(section: str, schema_path: Path = SCHEMA) -> dict:
    """The schema's defaults for one top-level section (e.g. ``training``), for scripts and tests
    that build a job config by hand."""
    schema = yaml.safe_load(schema_path.read_text())
    filled: dict = {}
    _validator(schema["properties"][section]).validate(filled)
    return filled


def retype_overrides(cfg: dict, overrides) -> None:
    """Give ``--config`` values their YAML types in ``cfg``, in place.

    Snakemake reads a structured ``--config`` value with YAML's BaseLoader, which keeps every nested
    scalar a string (``seeds='[0, 1]'`` arrives as ``['0', '1']``); read each such scalar as YAML
    would, so that overrides validate like the same values in a config file.
    """

    def typed(value):
        if isinstance(value, str):
            parsed = yaml.safe_load(value) if value.strip() else value
            return parsed if isinstance(parsed, int | float | bool) or parsed is None else value
        if isinstance(value, list):
            return [typed(v) for v in value]
        return value

    for key, value in dict(overrides or {}).items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            retype_overrides(cfg[key], value)
        elif key in cfg:
            cfg[key] = typed(value)
