"""The package's floors (docs/development.md, Layout): each module imports only from its own floor or
lower ones, and no import goes round in a circle."""

import ast

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
