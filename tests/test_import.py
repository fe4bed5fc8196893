"""`import harness` and `python -m harness --help` stay light: no torch, trl, vllm or transformers."""

import subprocess
import sys

HEAVY = ("torch", "trl", "vllm", "transformers", "openai", "datasets", "alpaca_eval")


def test_import_loads_no_heavy_library():
    code = f"import sys, harness, harness.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_loads_no_heavy_library():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['harness', '--help']\n"
        "try:\n    runpy.run_module('harness', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        f"print('LOADED=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: harness" in out.stdout
    assert out.stdout.strip().endswith("LOADED=")


def _imports(path) -> set[str]:
    """The harness modules a file imports, at any level (deferred imports inside functions too)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            found |= {f"harness.{a.name}" for a in node.names} if node.module == "harness" else {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("harness")}
    return found


def test_no_import_cycles_between_harness_modules():
    """Shared helpers live in leaf modules (harness/reporting/tables.py, harness/core/cells.py, harness/training/objectives.py),
    so no two modules import each other, not even through a deferred import."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    graph = {}
    for path in (root / "harness").rglob("*.py"):
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = {m for m in _imports(path) if m != name}
    cycles = []

    def visit(node, path):
        for dep in graph.get(node, ()):
            if dep == path[0]:
                cycles.append(" -> ".join([*path, dep]))
            elif dep not in path and dep in graph:
                visit(dep, [*path, dep])

    for name in graph:
        visit(name, [name])
    assert cycles == []
