"""``python -m harness prefetch``: download every model, dataset and file a config names, at its pinned
revision, into the local caches, on a machine with internet (a login node); jobs on compute nodes then
run with ``HF_HUB_OFFLINE=1``.

Models and hub datasets go to the Hugging Face cache (``HF_HOME``; datasets loaded by split also to
the datasets cache), URL files to ``$HF_HOME/harness-urls/`` (``HARNESS_URL_CACHE`` overrides), where
``prepare-data`` looks before it downloads. Offline, a step whose asset is missing stops with one line
naming the asset and this command (harness/core/hub.py). ``--list`` prints the assets without downloading.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.hub import url_cache


def _sources(cfg: dict):
    """(where in config, source) for every data source the config names."""
    from harness.workflow.config import dataset_sources

    for keys, src in dataset_sources(cfg):
        yield ".".join(keys), src


def assets(cfg: dict) -> list[dict]:
    """Every hub model, hub dataset, URL file and lm-eval task dataset of ``cfg``, once each."""
    out, seen = [], set()

    def add(asset):
        key = (asset["kind"], asset["id"], asset.get("revision"), asset.get("file"), asset.get("name"))
        if key not in seen:
            seen.add(key)
            out.append(asset)

    for name, m in cfg["models"].items():
        source = m.get("source")
        if "build" in m or not source or Path(source).exists() or source.startswith(("/", ".")):
            continue  # built from code or a local directory
        add(
            {
                "kind": "model",
                "id": source,
                "revision": m.get("revision") or "main",
                "used_by": f"models.{name}",
            }
        )
    for where, src in _sources(cfg):
        if "hub" in src:
            hub = src["hub"]
            add({"kind": "dataset", "id": hub["repo_id"], "revision": hub.get("revision") or "main",
                 "file": hub.get("filename"), "split": hub.get("split"), "used_by": where})  # fmt: skip
        elif "url" in src:
            for url in _urls(src["url"]):
                add({"kind": "url", "id": url, "used_by": where})
    for bench, b in cfg["evaluation"].items():  # a tokenizer tiktoken downloads on first use
        if b.get("token_count", "words") != "words":
            add({"kind": "tiktoken", "id": b["token_count"], "used_by": f"evaluation.{bench}.token_count"})
    for a in lm_eval_assets(cfg):
        add(a)
    return out


def _urls(url: str) -> list[str]:
    """The files behind a URL source: itself, or for Arena-Hard-Auto's raw tree at a commit (a URL
    ending in ``/``) the files its judge settings are read from."""
    from harness.core.arena import UPSTREAM_CONFIGS, UPSTREAM_SETTINGS

    return [url + name for name in (UPSTREAM_SETTINGS, *UPSTREAM_CONFIGS)] if url.endswith("/") else [url]


def lm_eval_assets(cfg: dict) -> list[dict]:
    """The hub datasets of the config's lm-eval tasks (a group such as mmlu: each of its tasks'),
    read from lm-eval's own task files; the revision is the task entry's ``dataset_revision`` where
    the config pins one (lm-eval's files pin none), else the hub's main."""
    from harness.core.benchmarks import get

    ds = next((b for n, b in cfg["evaluation"].items() if not get(n).judged), None)  # lm-eval's
    if not ds or not ds.get("include_defaults", True):
        return []  # only the project's own tasks, on the data prepare-data writes
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._index import Kind

    index = TaskManager(include_defaults=True).task_index
    leaf = (Kind.TASK, Kind.PY_TASK)

    def configs(name: str, depth: int = 0):
        entry = index.get(name)
        if entry is None or depth > 8:
            return
        if entry.kind in leaf:
            yield entry.cfg or {}
        elif entry.kind == Kind.GROUP:
            for t in (entry.cfg or {}).get("task", []):
                yield from configs(t if isinstance(t, str) else t.get("task", ""), depth + 1)
        elif entry.kind == Kind.TAG:
            for other in index.values():
                if name in other.tags and other.kind in leaf:
                    yield other.cfg or {}

    out = []
    for t in ds["tasks"]:
        names = sorted(
            {(c["dataset_path"], c.get("dataset_name")) for c in configs(t["name"]) if c.get("dataset_path")}
        )
        for path, name in names:
            out.append({"kind": "lm_eval", "id": path, "name": name, "revision": t.get("dataset_revision") or "main",
                        "used_by": f"evaluation.downstream.tasks.{t['name']}"})  # fmt: skip
    return out


def describe(a: dict) -> str:
    if a["kind"] == "tiktoken":
        return f"tiktoken encoding {a['id']}"
    if a["kind"] == "url":
        return f"url {a['id']}"
    if a["kind"] == "lm_eval":
        pin = "" if a["revision"] != "main" else " (unpinned: set the task's dataset_revision)"
        return f"dataset {a['id']}@{a['revision']}" + (f" config {a['name']}" if a["name"] else "") + pin
    part = f" {a['file']}" if a.get("file") else (f" split {a['split']}" if a.get("split") else "")
    return f"{a['kind']} {a['id']}@{a['revision']}{part}"


def download(a: dict) -> str:
    """Fetch one asset into its cache; returns where it lies."""
    if a["kind"] == "tiktoken":  # tiktoken's own download and cache (TIKTOKEN_CACHE_DIR), hash-checked
        import tiktoken

        tiktoken.get_encoding(a["id"])
        return "tiktoken cache"
    if a["kind"] == "url":
        dest = url_cache(a["id"])
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(dest.suffix + ".partial")
            urllib.request.urlretrieve(a["id"], tmp)  # noqa: S310 - a pinned raw URL from config
            tmp.rename(dest)
        return str(dest)
    if a["kind"] == "model":
        from huggingface_hub import snapshot_download

        return snapshot_download(a["id"], revision=a["revision"])
    if a["kind"] == "lm_eval":  # every split, as lm-eval loads it; offline it reads this cached copy
        from datasets import load_dataset

        load_dataset(a["id"], a["name"], revision=a["revision"])
        return "datasets cache"
    if a.get("file"):
        from huggingface_hub import hf_hub_download

        return hf_hub_download(a["id"], a["file"], revision=a["revision"], repo_type="dataset")
    from datasets import load_dataset

    load_dataset(a["id"], revision=a["revision"], split=a.get("split"))  # fills the datasets cache too
    return "datasets cache"


def run(cfg: dict, list_only: bool) -> list[str]:
    """Print (and unless ``list_only`` download) every asset; a failed download fails only itself."""
    lines, failed = [], []
    for a in assets(cfg):
        if list_only:
            lines.append(f"{describe(a)}  ({a['used_by']})")
            continue
        try:
            lines.append(f"{describe(a)} -> {download(a)}")
        except Exception as e:  # noqa: BLE001 - report every asset, then fail once
            failed.append(f"{describe(a)}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    if not lines and not failed:
        lines.append("nothing to fetch: every model and dataset of this config is local or built from code")
    for line in lines:
        print(line)
    if failed:
        raise HarnessError(f"{len(failed)} asset(s) not fetched: " + "; ".join(failed))
    return lines
