"""Stage 1, data generation: prompts and evaluation sets into local records, K completions per prompt."""
