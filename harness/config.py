"""Load and validate an experiment config against config/schema.yaml, filling schema defaults.

The Snakefile validates with ``snakemake.utils.validate`` (same schema, same defaults); this module
serves the CLI (``harness check-config``) and tests, and reports the offending key path.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parent.parent / "config" / "schema.yaml"


class ConfigError(ValueError):
    pass


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


def validate(cfg: dict, source: str = "config", schema_path: Path = SCHEMA) -> dict:
    """Validate ``cfg`` in place (defaults filled); raise ConfigError naming the key path."""
    schema = yaml.safe_load(schema_path.read_text())
    errors = sorted(_validator(schema).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: {where}: {e.message}")
    _check_references(cfg, source)
    return cfg


def _check_references(cfg: dict, source: str) -> None:
    """Names that must point at entries of ``models``."""
    models = cfg["models"]
    refs = [(f"policies/{i}", p) for i, p in enumerate(cfg["policies"])]
    for name, r in cfg["rankers"].items():
        if r["kind"] == "reward_model":
            refs.append((f"rankers/{name}/model", r["model"]))
        elif r["judge"]["backend"] != "openai":
            refs.append((f"rankers/{name}/judge/model", r["judge"].get("model")))
    for bench, b in cfg["evaluation"].items():
        if b["judge"]["backend"] != "openai":
            refs.append((f"evaluation/{bench}/judge/model", b["judge"].get("model")))
    for where, name in refs:
        if name not in models:
            raise ConfigError(
                f"{source}: {where}: '{name}' is not a key of models ({', '.join(sorted(models))})"
            )


def load_config(path) -> dict:
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return validate(cfg, str(path))
