"""Stage 2: completions ranked into preference pairs (reward model, IPR with an LLM judge) and the ranker study."""
