"""The warm-start server (harness/workflow/warm.py) with a stand-in step: a job's streams, directory,
environment and exit status reach the worker and come back; a killed job takes its worker with it;
signals are forwarded; no server means the job runs itself; the server ends with its parent."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.workflow import warm

from .conftest import ROOT

CLIENT = "import sys; from harness.workflow import warm; sys.exit(warm.run_via_server(sys.argv[1:], 'tests.warm_helper:main'))"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("warm") / "warm.log"
    cwd = os.getcwd()
    os.chdir(ROOT)  # the server imports tests.warm_helper from the checkout
    try:
        path = warm.start(log, names=("json",))
    finally:
        os.chdir(cwd)
    deadline = time.time() + 60
    while not os.path.exists(path):
        assert time.time() < deadline, log.read_text()
        time.sleep(0.05)
    env = dict(os.environ)
    yield env
    warm.stop()
    assert not os.path.exists(path)


def client(env, *args, cwd=None, **kw):
    return subprocess.Popen([sys.executable, "-c", CLIENT, *args], env=env, cwd=cwd or ROOT, **kw)


def test_a_job_runs_in_a_worker_with_its_own_streams_directory_and_environment(server, tmp_path):
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with open(out, "w") as o, open(err, "w") as e:
        p = client(dict(server, WARM_TEST_X="42"), "echo", "a b", cwd=tmp_path, stdout=o, stderr=e)
        assert p.wait(timeout=60) == 0
    got = json.loads(out.read_text())
    assert got["argv"] == ["echo", "a b"] and got["cwd"] == str(tmp_path) and got["x"] == "42"
    assert got["worker"] == "1" and got["pid"] != p.pid  # a forked worker, not the job's own process
    assert err.read_text() == "to stderr\n"


@pytest.mark.parametrize(
    "args, code, stderr",
    [
        (
            ["fail"],
            1,
            "error: data/x.jsonl:3: missing field 'prompt'\n",
        ),  # the one line, as sys.exit prints it
        (["code", "3"], 3, ""),
    ],
)
def test_exit_status_and_error_line_as_a_python_run_has_them(server, args, code, stderr):
    p = client(server, *args, stderr=subprocess.PIPE, text=True)
    assert p.communicate(timeout=60)[1] == stderr and p.returncode == code


def test_a_bug_keeps_its_traceback(server):
    p = client(server, "raise", stderr=subprocess.PIPE, text=True)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 1 and err.startswith("Traceback") and err.endswith("RuntimeError: a bug\n")


def _wait_for_pid(path, timeout=30):
    deadline = time.time() + timeout
    while not (path.exists() and path.read_text()):
        assert time.time() < deadline
        time.sleep(0.05)
    return int(path.read_text())


def _gone(pid, timeout=10) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/status") as f:
                if "\nState:\tZ" in f.read():
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_a_job_killed_with_sigkill_takes_its_worker_with_it(server, tmp_path):
    p = client(server, "sleep", str(tmp_path / "pid"))
    worker = _wait_for_pid(tmp_path / "pid")
    p.kill()
    p.wait(timeout=10)
    assert _gone(worker), "the worker ran on after its job was killed"


def test_sigterm_reaches_the_worker_and_the_job_dies_of_it(server, tmp_path):
    p = client(server, "sleep", str(tmp_path / "pid"))
    worker = _wait_for_pid(tmp_path / "pid")
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == -signal.SIGTERM
    assert _gone(worker)


def test_without_a_server_the_job_runs_itself(tmp_path):
    env = dict(os.environ, **{warm.ENV: str(tmp_path / "no-socket"), warm.PREFIX_ENV: sys.prefix})
    r = subprocess.run([sys.executable, "-m", "harness", "--help"], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("usage: harness") and r.stderr == ""


def test_a_job_started_while_the_server_imports_says_so_and_runs_itself(tmp_path):
    """The server's socket appears only once it has imported everything; a job started before that
    says at once, in its log, that it imports its own libraries (its log is not empty meanwhile)."""
    socket_path = tmp_path / "socket"
    (tmp_path / ("socket" + warm.STARTING)).write_text("results/demo/logs/warm_start.log\n")
    env = dict(os.environ, **{warm.ENV: str(socket_path), warm.PREFIX_ENV: sys.prefix})
    r = subprocess.run([sys.executable, "-m", "harness", "--help"], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("usage: harness")
    assert r.stderr == (
        "warm start: the run's server is still importing its libraries (results/demo/logs/warm_start.log); "
        "this job imports its own\n"
    )


def test_the_starting_mark_goes_once_the_server_answers(tmp_path):
    script = (  # in its own process: this module's server fixture owns warm's globals here
        "import os, sys, time; from harness.workflow import warm; "
        f"path = warm.start({str(tmp_path / 'warm.log')!r}, names=('json',)); "
        "marked = os.path.exists(path + warm.STARTING); "
        "[time.sleep(0.05) for _ in range(1200) if not os.path.exists(path)]; "
        "[time.sleep(0.05) for _ in range(200) if os.path.exists(path + warm.STARTING)]; "
        "print(marked, os.path.exists(path), os.path.exists(path + warm.STARTING)); warm.stop()"
    )
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["True", "True", "False"], r.stdout + r.stderr


@pytest.mark.parametrize(
    "var, value", [(warm.PREFIX_ENV, "/another/env"), ("HARNESS_GPUS", "1"), (warm.ENV, "")]
)
def test_a_job_of_another_environment_or_on_gpus_is_not_served(server, monkeypatch, var, value):
    for k, v in server.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv(var, value)
    assert warm.run_via_server(["echo"], "tests.warm_helper:main") is None


def test_the_server_ends_with_the_run_that_started_it(tmp_path):
    """A Snakemake run killed with SIGKILL never calls onerror: its server must not outlive it."""
    script = (
        "import os, sys, time; from harness.workflow import warm; "
        f"path = warm.start({str(tmp_path / 'warm.log')!r}, names=('json',)); "
        "[time.sleep(0.05) for _ in range(600) if not os.path.exists(path)]; "
        "print(warm._server.pid, flush=True); os._exit(0)"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert _gone(int(r.stdout)), "the server outlived the process that started it"
