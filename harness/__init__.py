"""Reproduction harness for preference-optimization pipelines.

Importing this package is cheap: it loads no torch, transformers, trl or vllm. Each step's heavy
imports happen inside the step, so ``python -m harness --help`` answers in well under a second.
"""

__version__ = "0.1.0"
