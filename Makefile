# deaios: one entry point for setup, tests, demo and benchmarks. Every target that needs tools first
# runs `setup`, which is idempotent: a virtualenv with pinned Python packages, the npm toolchain
# (Anvil, solc-js, OpenZeppelin, the official 0G SDK) from package-lock.json, and the solc-js shim
# registered for ape-solidity.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(CURDIR)/node_modules/.bin:$(BIN):$(PATH)
# Keep ape's data (compiler cache, accounts) inside the project so runs do not depend on $HOME state.
export APE_DATA_FOLDER ?= $(CURDIR)/.ape

PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
SOLC_STAMP := $(VENV)/.solc-registered

# Test areas, longest first (see `test`).
TEST_AREAS := storage compute da alignment training inft market kv

.PHONY: setup test $(addprefix test-,$(TEST_AREAS)) demo bench clean

setup: $(PY_STAMP) $(NPM_STAMP) $(SOLC_STAMP)

$(PY_STAMP): pyproject.toml setup.py requirements-dev.txt constraints.txt offchain/deaios/native/keccak.c offchain/deaios/native/keccak_f1600.h
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements-dev.txt -e .
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SOLC_STAMP): $(PY_STAMP) $(NPM_STAMP) scripts/install_solc.py scripts/solc_shim.js
	$(BIN)/python scripts/install_solc.py
	touch $@

# One ape session per area: each area's fixtures deploy their own contracts, and ape's snapshot isolation
# goes wrong when module- and session-scoped deployments of different areas share one session. Two sessions
# run at a time (2 cores). Each area's output is printed when it finishes; `make test-da` runs one area.

test: setup
	$(BIN)/ape compile   # once, before the parallel sessions would each compile into .build/
	@$(MAKE) --no-print-directory -k -j2 --output-sync=target $(addprefix test-,$(TEST_AREAS))

$(addprefix test-,$(TEST_AREAS)): test-%: setup
	$(BIN)/ape test tests/$* -q

demo: setup
	$(BIN)/python scripts/demo.py $(if $(FILE),--file $(FILE),)

bench: setup
	$(BIN)/deaios bench all

clean:
	rm -rf $(VENV) node_modules .ape .build contracts/.cache
