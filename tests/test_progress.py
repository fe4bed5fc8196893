"""Job logs read line by line: progress bars' carriage-return redraws become a line per interval."""

import io

from harness.core.progress import LineWise


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_progress_bar_becomes_a_few_lines():
    out, clock = io.StringIO(), Clock()
    log = LineWise(out, every=30, clock=clock)
    log.write("loading model\n")
    for i in range(101):  # tqdm: "\r" then the bar's state, a line end when it closes
        clock.now = i * 1.0
        log.write(f"\rtrain: {i}%|{'#' * (i // 10)}| {i}/100")
    log.write("\n")
    log.write("done\n")
    lines = out.getvalue().splitlines()
    assert lines[0] == "loading model" and lines[-1] == "done"
    bars = lines[1:-1]
    # the first state, one per 30 s of the bar's 100 s, and the last state
    assert [b.split(":")[1].split("|")[0].strip() for b in bars] == ["0%", "30%", "60%", "90%", "100%"]
    assert "\r" not in out.getvalue()


def test_plain_text_passes_through_and_an_unfinished_bar_is_kept():
    out, clock = io.StringIO(), Clock()
    log = LineWise(out, every=30, clock=clock)
    log.write("a line\nhalf ")
    log.write("a line\n")
    log.write("\rstep 1/9")
    clock.now = 5
    log.write("\rstep 2/9")  # killed here: the newest state still reaches the log
    log.finish()
    assert out.getvalue() == "a line\nhalf a line\nstep 1/9\nstep 2/9\n"
    log = LineWise(out := io.StringIO(), every=30, clock=clock)
    log.write("no line end")
    log.finish()
    assert out.getvalue() == "no line end\n"


def test_a_step_run_by_the_cli_writes_no_carriage_return(tmp_path):
    """The harness's entry point filters stderr when it is a file (a job's log)."""
    import subprocess
    import sys

    code = (
        "import sys; from harness.core.progress import line_wise; f = line_wise(); "
        "[sys.stderr.write(f'\\r{i}/50') for i in range(51)]; sys.stderr.write('\\n'); f.finish()"
    )
    log = tmp_path / "job.log"
    with open(log, "w") as f:
        subprocess.run([sys.executable, "-c", code], stderr=f, check=True)
    text = log.read_text()
    assert "\r" not in text and text.splitlines() == ["0/50", "50/50"]
