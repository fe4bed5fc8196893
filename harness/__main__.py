import sys

if __name__ == "__main__":  # the guard vLLM's worker processes need
    from harness.workflow import warm

    code = warm.run_via_server(
        sys.argv[1:]
    )  # a warm-start server's worker (harness/workflow/warm.py), if any
    if code is not None:
        sys.exit(code)
    from harness.cli import main

    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code
    if "vllm" in sys.modules:  # its teardown can abort a finished step (harness/backends/vllm.py)
        from harness.backends.vllm import exit_now

        exit_now(code)
    sys.exit(code)
