"""Software environments: every rule that runs a command names a conda env file that exists, parses and
pins every package exactly; pyproject.toml covers every package the env files name."""

import re

import tomllib
import yaml

from .conftest import ROOT


def _rule_blocks():
    """(rule name, its text, the rule it inherits from or None) for every rule in rules/*.smk."""
    for path in sorted((ROOT / "rules").glob("*.smk")):
        text = path.read_text()
        for m in re.finditer(
            r"^(rule (\w+):|use rule (\w+) as (\w+) with:)\n(.*?)(?=^\S|\Z)", text, re.M | re.S
        ):
            if m.group(2):
                yield m.group(2), m.group(5), None
            else:
                yield m.group(4), m.group(5), m.group(3)


def _env_packages(env: dict) -> list[str]:
    out = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            out += dep["pip"]
        else:
            out.append(dep)
    return out


def test_every_command_rule_names_a_pinned_env():
    blocks = {name: (body, parent) for name, body, parent in _rule_blocks()}
    checked = []
    for name, (body, parent) in blocks.items():
        own = re.search(r'conda:\n\s+"([^"]+)"', body)
        runs = "shell:" in body or (parent and "shell:" in blocks[parent][0])
        if not runs:
            continue
        env_ref = (
            own.group(1) if own else parent and re.search(r'conda:\n\s+"([^"]+)"', blocks[parent][0]).group(1)
        )
        assert env_ref, f"rule {name} runs a command but names no conda env"
        path = (ROOT / "rules" / env_ref).resolve()
        assert path.exists(), f"rule {name}: {env_ref} does not exist"
        env = yaml.safe_load(path.read_text())
        assert env["channels"] == ["conda-forge"], path
        for pkg in _env_packages(env):
            pkg = pkg.split("#")[0].strip()
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+(==|=)[0-9][\w.+]*", pkg), (
                f"{path.name}: '{pkg}' is not pinned exactly"
            )
        checked.append(name)
    assert {"sample", "rank", "rank_ipr", "train", "generate", "judge", "metrics", "report"} <= set(checked)


def test_pyproject_extras_mirror_the_env_files():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    conda_only = {"python", "pip", "setuptools"}  # the interpreter and installer themselves
    for path in sorted((ROOT / "envs").glob("*.yaml")):
        pins = set()
        for pkg in _env_packages(yaml.safe_load(path.read_text())):
            name, _, version = re.split(r"(==|=)", pkg.split("#")[0].strip(), maxsplit=1)
            if name not in conda_only:
                pins.add(f"{name}=={version}")
        assert set(extras[path.stem]) == pins, f"pyproject.toml [{path.stem}] differs from {path.name}"
