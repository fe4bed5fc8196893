"""Every shell command of the README and of docs/ runs as written, so that neither can drift from the code.

Commands come from their ``bash`` blocks and from inline code that starts with ``snakemake``,
``python -m harness`` or ``make``. Each runs in the form that is possible offline and without a GPU:
Snakemake commands as dry runs (``-n``) in a copy of the workflow, ``make`` targets with ``make -n``,
``pip install`` as a check that the extras it names exist, ``prefetch`` with ``--list``; the rest
(`plan`, `check-config`, `grep`, ...) as written. Commands with a placeholder (``<...>``, ``...``) and
the GPU-only server commands are listed as skipped, with the reason, in the failure message of the
test that counts them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import tomllib

from .conftest import ROOT
from .workflow import copy_workflow

pytestmark = pytest.mark.slow

SLURM_SITE = {
    "HARNESS_SLURM_ACCOUNT": "lab",
    "HARNESS_SLURM_CPU_PARTITION": "cpu",
    "HARNESS_SLURM_GPU_PARTITION": "gpu",
}


INLINE: set[str] = set()  # commands quoted in prose, not in a bash block


# the reading order: the README, then docs/ as its Documentation table lists them
DOCS = [
    "README.md",
    *(
        f"docs/{d}.md"
        for d in (
            "demo",
            "methods",
            "running",
            "extending",
            "troubleshooting",
            "validation",
            "development",
            "glossary",
        )
    ),
]


def test_every_doc_is_read():
    assert sorted(DOCS[1:]) == sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))


def readme_commands() -> list[str]:
    text = "\n".join((ROOT / d).read_text() for d in DOCS)
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    for span in re.findall(r"`([^`\n]+)`", text):
        if re.match(r"(snakemake|python -m harness|make) ", span):
            out.append(span.strip())
            INLINE.add(span.strip())
    return list(dict.fromkeys(out))


# placeholders with a value that runs here
FILLED = {"FILE": "config/demo.yaml", "<file>": "config/demo.yaml"}


def fill(cmd: str) -> str:
    for k, v in FILLED.items():
        cmd = cmd.replace(k, v)
    return cmd


def skip_reason(cmd: str) -> str | None:
    cmd = fill(cmd)
    if "<" in cmd or "..." in cmd or any(re.fullmatch(r"[A-Z]{3,}", t) for t in shlex.split(cmd)):
        return "a placeholder to fill in"
    if cmd in INLINE and cmd.split()[-1] in ("--configfile", "--config", "--profile"):
        return "a fragment of a command in prose"
    if cmd.startswith(("vllm serve", "python -m vllm")):
        return "serves a model (a GPU, the hub)"
    if cmd.startswith("export "):
        return "sets a variable"
    if cmd.startswith((".venv/bin/pytest", "pytest")):
        return "the test runner itself"
    if "--software-deployment-method conda" in cmd and not _has("conda"):
        return "needs conda"
    if "--report" in cmd:
        return "needs a finished run"
    if "config/my_study.yaml" in cmd:
        return "a guide's own config: run by the guide's test"
    return None


def _has(exe: str) -> bool:
    import shutil

    return shutil.which(exe) is not None


def runnable(cmd: str) -> list[str] | str:
    """The offline form of ``cmd`` as argv, or 'extras' for a pip install (checked separately)."""
    argv = shlex.split(cmd)
    inline = cmd in {fill(c) for c in INLINE}
    if argv[0] == "pip":
        return "extras"
    if argv[0] == "make":
        return ["make", "-n", *argv[1:]]
    if argv[0] == "snakemake":
        argv = [a for a in argv if a != "-n"]
        return ["snakemake", "-n", *argv[1:]]
    if argv[:3] == ["python", "-m", "harness"] and argv[3:4] == ["prefetch"]:
        return [sys.executable, *argv[1:], "--list"]
    if argv[:3] == ["python", "-m", "harness"] and len(argv) == 4 and inline:
        return [sys.executable, *argv[1:], "--help"]  # a step named in prose: it exists
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    return argv


COMMANDS = readme_commands()


def test_the_readme_has_commands():
    ran = [c for c in COMMANDS if not skip_reason(c)]
    assert len(ran) >= 20, ran
    assert any(c.startswith("snakemake --profile profiles/slurm") for c in ran)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_readme_command_runs(cmd, tmp_path):
    reason = skip_reason(cmd)
    if reason:
        pytest.skip(reason)
    argv = runnable(fill(cmd))
    if argv == "extras":
        local = [a for a in shlex.split(cmd) if a.startswith("./")]
        if local:  # a distribution of this repository (the logger plugin): it is there and installable
            assert all((ROOT / p / "pyproject.toml").is_file() for p in local), cmd
            return
        extras = re.search(r"\.\[([\w,-]+)\]", cmd).group(1).split(",")
        declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        assert set(extras) <= set(declared), f"{cmd}: no extra {sorted(set(extras) - set(declared))}"
        return
    cwd = ROOT
    if argv[0] in ("snakemake", "cp") or argv[1:3] == ["-m", "harness"]:
        (tmp_path / "wf").mkdir()
        cwd = copy_workflow(tmp_path / "wf")  # dry runs write job configs: never into the checkout
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(cwd), **SLURM_SITE)
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, (
        f"`{cmd}` (run as {' '.join(argv)}) exited {r.returncode}:\n{r.stdout[-1500:]}{r.stderr[-1500:]}"
    )


def guide(title: str) -> str:
    """docs/extending.md's text from the guide ``## <title>`` to the next heading."""
    text = (ROOT / "docs/extending.md").read_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def paper_config_copy(tmp_path):
    import yaml

    wf = tmp_path / "wf"
    wf.mkdir()
    copy_workflow(wf)
    return wf, yaml.safe_load((wf / "config/config.yaml").read_text())


def my_study(wf, cfg: dict) -> None:
    """The guides' own config, made as the guides say: the paper config under a new name and run."""
    import yaml

    text = (wf / "config/config.yaml").read_text()
    assert "\nrun: paper\n" in text
    cfg = dict(cfg, run="my_study")
    (wf / "config/my_study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_dataset_guide_runs_as_written(tmp_path):
    """The guide's prompt file, its config block applied to the guides' own config, its two commands
    run as written (the prepare step for real, once more with a bad record), in the run folder of
    that config, the paper's untouched."""
    import yaml

    from .workflow import snakemake

    text = guide("Add a dataset")
    (data,) = blocks(text, "jsonl")
    (block,) = blocks(text, "yaml")
    (commands,) = blocks(text, "bash")
    prepare, plan = [shlex.split(line.split("  #")[0]) for line in commands.strip().splitlines()]
    assert prepare[0] == plan[0] == "snakemake" and "-n" in plan
    target = re.search(r"Save it as `([^`]+)`", text).group(1)
    wf, cfg = paper_config_copy(tmp_path)
    (wf / target).write_text(data)
    cfg["prompts"] = yaml.safe_load(block)["prompts"]  # "replace the `prompts:` block"
    my_study(wf, cfg)

    r = snakemake(["--cores", "1", *prepare[1:]], wf)
    assert r.returncode == 0, r.stderr[-3000:]
    got = [json.loads(x) for x in (wf / "results/my_study/data/prompts.jsonl").read_text().splitlines()]
    assert got == [json.loads(x) for x in data.splitlines()]

    planned = snakemake(plan[1:], wf)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert re.search(r"^sample\s+\d+", planned.stdout, re.M), planned.stdout[-2000:]
    assert not (wf / "results/paper").exists()  # the paper's run: nothing written

    (wf / target).write_text(data + '{"id": "mine-0004"}\n')
    r = snakemake(["--cores", "1", *prepare[1:]], wf)
    log = (wf / "results/my_study/logs/prepare_data/prompts.jsonl.log").read_text()
    assert r.returncode != 0 and f"{target}:4: missing field 'prompt'" in log, log[-2000:]


def test_benchmark_guide_runs_as_written(tmp_path, tiny_models):
    """The guide's lm-eval task and its data, run by the harness's downstream step (lm-eval's
    simple_evaluate) on a tiny policy; and its config block planned in the guides' own config."""
    import yaml

    from harness.evaluation import downstream

    from .conftest import model_ref
    from .workflow import snakemake

    text = guide("Add a benchmark")
    task_yaml, block = blocks(text, "yaml")
    (data,) = blocks(text, "jsonl")
    task_file = task_yaml.splitlines()[0].removeprefix("# ")
    data_file = re.search(r"With that file as `([^`]+)`", text).group(1)
    ds = yaml.safe_load(block)["evaluation"]["downstream"]
    assert ds["data"] == {"path": data_file} and task_file.startswith(ds["include_path"] + "/")

    wf, cfg = paper_config_copy(tmp_path)
    (wf / task_file).parent.mkdir(parents=True)
    (wf / task_file).write_text(task_yaml)
    (wf / data_file).write_text(data)

    d = {"tasks": ds["tasks"], "include_path": str(wf / ds["include_path"]), "include_defaults": False,
         "backend": "hf", "batch_size": 8, "apply_chat_template": False, "bootstrap_iters": 0, "limit": None}  # fmt: skip
    job = {"step": "downstream", "downstream": d, "model": model_ref(tiny_models / "policy"), "seed": 0,
           "cell": {"policy": "p", "ranker": "base", "regularizer": "—", "seed": 0}}  # fmt: skip
    out, metrics = tmp_path / "results.json", tmp_path / "metrics.json"
    downstream.run(job, str(wf / data_file), str(out), str(metrics))
    results = json.loads(out.read_text())
    assert results["n-samples"]["capitals"]["effective"] == len(data.splitlines()) == 3
    assert 0 <= results["results"]["capitals"]["acc,none"] <= 1
    assert json.loads(metrics.read_text())["metrics"]["tasks"]["capitals"]["metric"] == "acc"

    mine = cfg["evaluation"]["downstream"]
    mine.update({k: v for k, v in ds.items() if k != "tasks"})
    mine["tasks"] += ds["tasks"]  # beside the others
    my_study(wf, cfg)
    planned = snakemake(["-n", "--configfile", "config/my_study.yaml"], wf)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert not (wf / "results/paper").exists()
    assert re.search(r"^prepare_data\s+\d+", planned.stdout, re.M), planned.stdout[-2000:]
    assert re.search(r"^downstream\s+\d+", planned.stdout, re.M), planned.stdout[-2000:]


def test_each_glossary_term_is_explained_where_it_first_appears():
    """Its first use (outside code) links to the Glossary, or spells the term out right there."""
    text = "\n".join((ROOT / d).read_text() for d in DOCS[:-1])  # in reading order, the glossary aside
    body = re.sub(r"```.*?```", lambda m: " " * len(m.group(0)), text, flags=re.S)
    terms = re.findall(r"^- \*\*([^*]+)\*\*:", (ROOT / "docs/glossary.md").read_text(), re.M)
    spelled = {"IPR": "iterative pairwise\n   ranking (IPR)", "habit": "*habit*, one systematic",
               "MDE": "minimum detectable difference (MDE)"}  # fmt: skip
    names = [t.strip() for term in terms for t in term.split("/")]
    assert {"cell", "IPR", "BCR", "DPOP", "LC", "MFU"} <= set(names), names
    for name in names:
        first = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", body)
        assert first, f"{name}: in the Glossary but never used before it"
        near = body[max(0, first.start() - 40) : first.end() + 40]
        linked = re.match(r"\]\((docs/)?glossary\.md\)", body[first.end() : first.end() + 20])
        assert linked or spelled.get(name, "\0") in near, f"{name} first appears unexplained: ...{near}..."
