# The two commands of the README are `make demo` and `make test`; both install what they need.
PYTHON ?= python3
UV := .uv/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help install demo test test-fast lint typecheck docs docs-serve bench bench-quick clean

help:  ## Show this help.
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install -q --disable-pip-version-check uv

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --all-extras --frozen -q
	touch $@

install: $(VENV)/.installed  ## Create .venv from the lockfile (bootstraps uv with pip).

demo: install  ## Run the durable demo agent (DBOS + SQLite); it survives a crash.
	$(PY) -m durable_agents.demo

lint: install  ## ruff format check and lint.
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

typecheck: install  ## pyright, strict on the package.
	$(VENV)/bin/pyright

docs: install  ## Build the docs site with --strict.
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

test: install lint typecheck docs  ## The whole suite: lint, types, docs, every test on real engines.
	$(VENV)/bin/pytest --cov=durable_agents --cov-report=term:skip-covered --durations=40 $(PYTEST_ARGS)

test-fast: install  ## Tests that need no engine server.
	$(VENV)/bin/pytest -m "not temporal and not dbos and not prefect" $(PYTEST_ARGS)

bench: install  ## Full benchmarks; rewrites benchmarks/RESULTS.md.
	$(PY) -m benchmarks

bench-quick: install  ## Benchmarks in quick mode (under 5 minutes).
	$(PY) -m benchmarks --quick

clean:  ## Remove the venvs and build output.
	rm -rf .uv $(VENV) site .pytest_cache .ruff_cache .demo
