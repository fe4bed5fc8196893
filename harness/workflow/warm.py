"""Warm start: many short jobs on one machine share one interpreter's imports.

A CPU job of the demo spends most of its time importing torch, transformers, TRL, pandas,
alpaca_eval and lm-eval (5 to 9 s of a 10 to 18 s job, paid by each of its ~300 jobs). With
``warm_start: true`` in the config, a local Snakemake run starts one server process (``onstart``)
that imports them once and waits on a Unix socket; each ``python -m harness STEP ...`` of the run
then connects, hands over its argv, working directory, environment and standard streams, and the
server forks a worker that runs the step with everything already imported. The job's own process
waits, forwards the signals it gets to the worker and exits with the worker's exit status (or dies
of the worker's signal), so Snakemake, its logs, ``benchmark:`` wall times and ``--keep-going``
see an ordinary job.

What keeps it safe:
- no server, a socket that does not answer, another Python environment (``--use-conda``, a job on
  another node) or a GPU job: the step runs in its own process as before;
- a job killed with SIGKILL (its process group, as Snakemake's or a user's kill does) takes its
  worker with it: the worker watches the connection and kills its own process group when the job's
  process is gone, so nothing runs on and writes after the kill;
- the server imports but never runs a model: it holds no threads of torch's pools and no CUDA
  context when it forks. It exits with the Snakemake process that started it (or on SIGTERM from
  ``onsuccess``/``onerror``), killing any worker still running;
- the worker applies the job's ``OMP_NUM_THREADS`` to torch (its pool is sized at first use, but the
  OpenMP runtime read the variable when the server loaded it). Variables that libraries read at
  import time (``HF_HUB_OFFLINE``, ``TRANSFORMERS_VERBOSITY``) come from the workflow's environment,
  which the server was started with.

CPU time: a worker's CPU is not in its job's process tree, where Snakemake's benchmark looks, so
each step records its own CPU seconds in its provenance (``cpu_s``, with ``warm_start: true``) and
the cost table reads those for a warm job (harness/core/timing.py, job_cost).

Code changes take effect for the next run, not the running one (the server keeps the modules it
imported). Standard library only: the client side runs before anything else is imported.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ENV = "HARNESS_WARM_SOCKET"  # the server's socket, for the jobs of the run
PREFIX_ENV = "HARNESS_WARM_PREFIX"  # the server's sys.prefix: a job of another environment runs cold
IN_WORKER = "HARNESS_WARM_WORKER"  # set in a worker: provenance records warm_start
STARTING = ".starting"  # beside the socket while the server imports: holds the server's log path
TARGET = "harness.cli:main"
PRELOAD = (
    "numpy",
    "pandas",
    "scipy.stats",
    "yaml",
    "jsonschema",
    "tqdm.auto",
    "torch",
    "transformers",
    "transformers:AutoModelForCausalLM",
    "transformers:AutoModelForSequenceClassification",
    "transformers:AutoTokenizer",
    "accelerate",
    "datasets",
    "trl",
    "trl:DPOTrainer",
    "alpaca_eval.metrics",
    "lm_eval.evaluator",
    "matplotlib.pyplot",
    "harness.cli",
    "harness.training.train",
    "harness.training.trainer",
    "harness.evaluation.generate",
    "harness.ranking.judge",
    "harness.evaluation.alpaca_metrics",
    "harness.evaluation.downstream",
    "harness.ranking.rank",
    "harness.data.sample",
    "harness.training.finetune",
    "harness.demo.tiny",
    "harness.demo.world",
    "harness.reporting.figures",
    "harness.reporting.tables",
    "harness.reporting.report",
)


# --- the job's side -----------------------------------------------------------------------------


def run_via_server(argv: list[str], target: str = TARGET) -> int | None:
    """Run ``target(argv)`` in a warm worker; its exit status, or None where no server can take it
    (the caller then runs the step itself). A worker killed by a signal kills this process with it."""
    path = os.environ.get(ENV)
    if not path or os.environ.get(PREFIX_ENV) != sys.prefix or os.environ.get(IN_WORKER):
        return None
    if any(os.environ.get(v) for v in ("HARNESS_GPUS", "LOCAL_RANK", "CUDA_VISIBLE_DEVICES")):
        return None  # CPU jobs only: a GPU job starts its own CUDA context and process group as before
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "target": target})
        data = request.encode()
        socket.send_fds(conn, [struct.pack("!I", len(data))], [0, 1, 2])
        conn.sendall(data)
    except OSError:
        conn.close()
        _say_if_starting(path)
        return None

    def forward(signum, _frame):
        try:
            conn.send(bytes([signum]))
        except OSError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    status = _recv_exact(conn, 4)
    if status is None:  # the server went away with the worker
        sys.stderr.write("error: the warm-start server ended before this job did; rerun the workflow\n")
        return 1
    code = struct.unpack("!i", status)[0]
    if code < 0:  # the worker died of a signal: so does this process, as a job would have
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def _say_if_starting(path: str) -> None:
    """A job started while the server is still importing runs in its own process; its log says so
    at once rather than staying empty through both imports (the server's ``.starting`` file names
    the server's log)."""
    try:
        log = Path(path + STARTING).read_text().strip()
    except OSError:
        return  # no server, or one that has ended: the job just runs, as without warm start
    sys.stderr.write(
        f"warm start: the run's server is still importing its libraries ({log}); this job imports its own\n"
    )
    sys.stderr.flush()


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        try:
            part = conn.recv(n - got)
        except InterruptedError:
            continue
        if not part:
            return None
        chunks.append(part)
        got += len(part)
    return b"".join(chunks)


# --- the server ---------------------------------------------------------------------------------


def preload(names=PRELOAD, log=sys.stderr) -> None:
    """Import what the steps import (a module, or ``module:attribute`` for a lazy attribute)."""
    import importlib

    for name in names:
        module, _, attr = name.partition(":")
        started = time.time()
        try:
            m = importlib.import_module(module)
            if attr:
                getattr(m, attr)
        except Exception as e:  # an optional package absent: the steps that need it import it themselves
            print(f"warm start: {name} not preloaded ({type(e).__name__}: {e})", file=log)
            continue
        print(f"warm start: {name} {time.time() - started:.2f} s", file=log)
    if "matplotlib" in sys.modules:
        sys.modules["matplotlib"].use("Agg")


def serve(path: str, parent: int, names=PRELOAD) -> None:
    """Accept jobs on ``path`` until ``parent`` exits or SIGTERM arrives; one forked worker each."""
    preload(names)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".new")
    listener.listen(64)
    os.replace(path + ".new", path)  # jobs see the socket only once it answers
    _unlink(path + STARTING)
    workers: dict[int, socket.socket] = {}

    def stop(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"warm start: serving on {path} for process {parent}", file=sys.stderr, flush=True)
    try:
        while os.getppid() == parent:
            ready, _, _ = select.select([listener], [], [], 0.05)
            if ready:
                conn, _ = listener.accept()
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    _worker(conn)  # never returns
                workers[pid] = conn
            while workers:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                conn = workers.pop(pid, None)
                if conn is not None:
                    try:
                        conn.sendall(struct.pack("!i", os.waitstatus_to_exitcode(status)))
                    except OSError:
                        pass  # the job's process is gone (killed): its worker has killed itself
                    conn.close()
    finally:
        for pid in workers:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        _unlink(path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _worker(conn: socket.socket) -> None:
    """In the forked child: become the job (its streams, directory, environment), run it, exit."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own group: killing it takes whatever the step started
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        header, fds, _, _ = socket.recv_fds(conn, 4, 3)
        request = json.loads(_recv_exact(conn, struct.unpack("!I", header)[0]))
        for i, fd in enumerate(fds):
            os.dup2(fd, i)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"], **{IN_WORKER: "1"})
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0 and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(threads))
        threading.Thread(target=_watch, args=(conn,), daemon=True).start()
        module, _, func = request["target"].partition(":")
        sys.argv = [str(Path(__file__).parents[1] / "__main__.py"), *request["argv"]]
        code = _call(module, func, request["argv"])
        _finish()
    except BaseException:  # the worker's own failure: said in the job's log, never raised into the server
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _call(module: str, func: str, argv: list[str]) -> int:
    """``module.func(argv)`` with the exit status a ``python -m`` run would have."""
    import importlib

    try:
        getattr(importlib.import_module(module), func)(argv)
        return 0
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        _finish()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException:
        traceback.print_exc()
        return 1


def _finish() -> None:
    """What interpreter exit does: wait for non-daemon threads, run the exit hooks."""
    import atexit

    for t in threading.enumerate():
        if t is not threading.current_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()


def _watch(conn: socket.socket) -> None:
    """Forward the job's signals to this worker; when the job's process is gone, kill the worker's
    whole group (the step and anything it started)."""
    while True:
        try:
            got = conn.recv(1)
        except InterruptedError:
            continue
        except OSError:
            got = b""
        if not got:
            os.killpg(0, signal.SIGKILL)
        os.kill(os.getpid(), got[0])


# --- started and stopped by the workflow -------------------------------------------------------

_server = None


def start(log: str | Path, names=PRELOAD) -> str:
    """Start a server for this process's jobs, importing ``names``; sets ``HARNESS_WARM_SOCKET`` in
    this environment (which the jobs inherit) and returns the socket's path (there once it answers)."""
    global _server
    import atexit
    import subprocess

    folder = tempfile.mkdtemp(prefix="harness-warm-")  # short: a socket path has at most 107 bytes
    path = os.path.join(folder, "socket")
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    Path(path + STARTING).write_text(f"{log}\n")
    with open(log, "ab") as out:
        _server = subprocess.Popen(
            [sys.executable, "-m", "harness.workflow.warm", path, str(os.getpid()), ",".join(names)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the terminal reaches the jobs, which forward it
        )
    os.environ[ENV], os.environ[PREFIX_ENV] = path, sys.prefix
    atexit.register(stop)
    return path


def stop() -> None:
    """Stop the server (and any worker still running); jobs started later run cold."""
    global _server
    path = os.environ.pop(ENV, None)
    os.environ.pop(PREFIX_ENV, None)
    if _server is None:
        return
    _server.terminate()  # its workers are finished jobs by now: Snakemake waits for its jobs
    try:
        _server.wait(timeout=30)
    except Exception:
        _server.kill()
    _server = None
    if path:
        for leftover in (path, path + ".new", path + STARTING):
            _unlink(leftover)
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), [n for n in sys.argv[3].split(",") if n])
