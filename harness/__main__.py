from harness.cli import main

if __name__ == "__main__":  # the guard vLLM's worker processes need
    main()
