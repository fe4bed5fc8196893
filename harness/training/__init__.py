"""Stage 3: the objectives' registry, their loss terms, the DPO trainer and the fine-tuning of base models."""
