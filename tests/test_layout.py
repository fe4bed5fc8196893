"""The package's floors (docs/development.md, Layout): each module imports only from its own floor or
lower ones, and no import goes round in a circle."""

import ast
import re

from .conftest import ROOT

FLOORS = {"core": 0, "backends": 1, "demo": 1, "data": 2, "ranking": 3, "training": 4, "evaluation": 5,
          "reporting": 6, "workflow": 7, "cli": 8, "__main__": 8}  # fmt: skip


def _imports() -> dict[str, set[str]]:
    """Each module of harness/ (dotted, without 'harness.') -> the harness modules it imports (anywhere
    in it, function bodies too)."""
    package = ROOT / "harness"
    modules = {}
    for f in package.rglob("*.py"):
        parts = f.relative_to(package).with_suffix("").parts
        modules[".".join(p for p in parts if p != "__init__") or "harness"] = f
    graph = {}
    for name, f in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "harness":
                base = node.module.removeprefix("harness").lstrip(".")
                deps.add(base or "harness")
                deps.update(f"{base}.{a.name}".lstrip(".") for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(
                    a.name.removeprefix("harness.") for a in node.names if a.name.startswith("harness.")
                )
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _floor(module: str) -> int:
    return FLOORS.get(module.split(".")[0], 0)  # 'harness' itself: the package's __init__


def test_no_module_imports_from_a_higher_floor():
    graph = _imports()
    assert set(FLOORS) >= {m.split(".")[0] for m in graph if m != "harness"}, "a subpackage without a floor"
    up = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps if _floor(d) > _floor(m))
    assert not up, up


def test_no_import_circle():
    graph, done, path = _imports(), set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(m) :] + [m]))
        if m in done:
            return
        path.append(m)
        for d in sorted(graph[m]):
            visit(d)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def test_the_benchmark_registry_is_the_schemas_evaluation_block():
    """Every benchmark the schema takes under `evaluation` has its registry entry, and no more; its
    prepared files are the data files the workflow's wildcard accepts."""
    import yaml

    from harness.core.benchmarks import BENCHMARKS

    schema = yaml.safe_load((ROOT / "config/schema.yaml").read_text())
    assert list(schema["properties"]["evaluation"]["properties"]) == list(BENCHMARKS)
    for b in BENCHMARKS.values():
        block = schema["properties"]["evaluation"]["properties"][b.name]["properties"]
        assert all(key in block for key, _ in b.data.values()), b.name  # the sources it prepares
        assert b.judged == bool(b.hooks.get("judge")) == bool(b.hooks.get("metrics")), b.name
        for hook in b.hooks:
            assert callable(b.hook(hook)), (b.name, hook)


def test_benchmark_names_only_in_their_own_places():
    """A benchmark's name appears as a string only in its registry entry, its own modules and rules, the
    schema and config files: everything else asks the registry (harness/core/benchmarks.py)."""
    from harness.core.benchmarks import BENCHMARKS

    own = {
        "alpaca_eval": {"evaluation/alpaca.py", "evaluation/alpaca_metrics.py", "evaluation/lc.py",
                        "evaluation/difficulty.py"},
        "mt_bench": {"evaluation/mt_bench.py"},
        "arena_hard": {"evaluation/arena_hard.py", "evaluation/arena_hard_judge.py"},
        "downstream": {"evaluation/downstream.py"},
    }  # fmt: skip
    assert set(own) == set(BENCHMARKS)
    found = []
    for path in sorted((ROOT / "harness").rglob("*.py")):
        rel = str(path.relative_to(ROOT / "harness"))
        if rel == "core/benchmarks.py":
            continue
        text = path.read_text()
        for name, modules in own.items():
            if rel not in modules and re.search(rf"[\"']{name}[\"']", text):
                found.append(f"{rel}: {name}")
    assert found == []


def test_modules_stay_small():
    """No module of harness/ over 400 lines, and rules/common.smk (what the rules share) within 250:
    a module that outgrows them is two (docs/development.md, Layout)."""
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "harness").rglob("*.py")
    }
    assert {p: n for p, n in sizes.items() if n > 400} == {}
    assert len((ROOT / "rules/common.smk").read_text().splitlines()) <= 250
