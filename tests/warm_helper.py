"""A stand-in step for tests/test_warm.py: what a worker of the warm-start server runs."""

import json
import os
import sys
import time


def main(argv: list[str]) -> None:
    what = argv[0]
    if what == "echo":
        print(json.dumps({"argv": argv, "cwd": os.getcwd(), "x": os.environ.get("WARM_TEST_X"),
                          "pid": os.getpid(), "worker": os.environ.get("HARNESS_WARM_WORKER")}))  # fmt: skip
        print("to stderr", file=sys.stderr)
    elif what == "fail":
        sys.exit("error: data/x.jsonl:3: missing field 'prompt'")
    elif what == "code":
        sys.exit(int(argv[1]))
    elif what == "raise":
        raise RuntimeError("a bug")
    elif what == "sleep":
        with open(argv[1], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)
