# Every target sets itself up from nothing: a fresh machine needs only python3.11 and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench serve clean chains chains-stop contracts deploy pg pg-stop

# ARGS passes options through: make serve ARGS="--port 3100 --config my.toml"
ARGS   ?=

$(STAMP): pyproject.toml
	@echo "==> setting up $(VENV): Python packages from PyPI (first run only, about 30 s)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)
	@echo "==> $(VENV) is ready; the command is $(BIN)/indexmaker"

# Node side (issue 11): anvil, solc-js, OpenZeppelin and Across's contracts, pinned by
# package-lock.json. --ignore-scripts: anvil's binary comes in its platform package, so its
# postinstall (a download fallback) never runs; nothing is fetched at run time.
NODE_STAMP := node_modules/.installed
ARTIFACTS  := build/contracts/.compiled

$(NODE_STAMP): package.json package-lock.json
	@echo "==> installing node packages (npm ci: anvil, solc-js, OpenZeppelin, Across contracts)"
	npm ci --ignore-scripts --no-audit --no-fund
	touch $(NODE_STAMP)

$(ARTIFACTS): $(NODE_STAMP) $(wildcard contracts/*.sol) scripts/compile-contracts.mjs
	node scripts/compile-contracts.mjs
	touch $(ARTIFACTS)

# Compile contracts/*.sol with solc-js into build/contracts/ (generated, not committed).
contracts: $(ARTIFACTS)

# Two local anvil nodes on 127.0.0.1: chain 42161 on :8545 and 8453 on :8546; PIDs and logs
# in .chains/. `make chains-stop` stops them by PID.
chains: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m indexmaker.chain.anvil start

chains-stop: $(STAMP)
	$(BIN)/python -m indexmaker.chain.anvil stop

# Deploy to the running chains; addresses go to .chains/deployment.json.
deploy: $(STAMP) $(ARTIFACTS)
	$(BIN)/python -m indexmaker.chain.deploy

# A local PostgreSQL (Debian's package) on 127.0.0.1 for the store: data, PID and URL in .pg/;
# `make pg-stop` stops it by PID. Use it: INDEXMAKER_STORE_URL=$$(cat .pg/url).
pg: $(STAMP)
	$(BIN)/python -m indexmaker.store.pgserver start

pg-stop: $(STAMP)
	$(BIN)/python -m indexmaker.store.pgserver stop

# The simulated session over sockets, then the collateral path on two local chains (issue 11).
demo: $(STAMP) $(ARTIFACTS)
	$(BIN)/indexmaker demo $(ARGS)
	$(BIN)/indexmaker demo --chains

# The service on its embedded defaults: two local anvil chains (kept in data/anvil/), the
# exchange simulator, our relayer. A client deposits from a funded anvil test key:
# `$(BIN)/indexmaker deposit ADDRESS AMOUNT` (ARGS="--chain sim --sim-deposits": in process).
serve: $(STAMP) $(ARTIFACTS)
	$(BIN)/indexmaker serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src/indexmaker  # strict on core, model, engine (pyproject overrides)

test: lint $(ARTIFACTS)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python tests/bench/run.py

clean:
	rm -rf $(VENV) build node_modules .chains .pg *.egg-info .pytest_cache .mypy_cache .ruff_cache
