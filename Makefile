# Every target sets itself up from nothing: a fresh machine needs only python3.11 and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench serve clean

# ARGS passes options through: make serve ARGS="--port 3100 --config my.toml"
ARGS   ?=

$(STAMP): pyproject.toml
	@echo "==> setting up $(VENV): Python packages from PyPI (first run only, about 30 s)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)
	@echo "==> $(VENV) is ready; the command is $(BIN)/indexmaker"

demo: $(STAMP)
	$(BIN)/indexmaker demo $(ARGS)

# The simulated venue and chain, with POST /sim/deposit on (loopback only) so a client can fund
# itself: `$(BIN)/indexmaker deposit ADDRESS AMOUNT`.
serve: $(STAMP)
	$(BIN)/indexmaker serve --sim-deposits $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src/indexmaker  # strict on core, model, engine (pyproject overrides)

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python tests/bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
