"""Stage 4: answers, judgments and metrics (AlpacaEval, MT-Bench, lm-eval tasks)."""
