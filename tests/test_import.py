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
