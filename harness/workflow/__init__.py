"""The plumbing around the stages: config and schema, job configs, GPU sizing, the plan, prefetch, SLURM site, locks, warm start and the vLLM server wrapper."""
