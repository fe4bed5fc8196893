import sys

if __name__ == "__main__":  # the guard vLLM's worker processes need
    from harness.workflow import warm

    code = warm.run_via_server(
        sys.argv[1:]
    )  # a warm-start server's worker (harness/workflow/warm.py), if any
    if code is not None:
        sys.exit(code)
    from harness.cli import main

    main()
