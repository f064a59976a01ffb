# deaios: one entry point for setup, tests, demo and benchmarks. Every target that needs tools first
# runs `setup`, which is idempotent: a virtualenv with pinned Python packages, the npm toolchain
# (Anvil, solc-js, OpenZeppelin, the official 0G SDK) from package-lock.json, the solc-js shim
# registered for ape-solidity, and Debian's chromium for the dashboard's browser test (Playwright drives it;
# `playwright install` cannot download browsers here).

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
CHROMIUM := /usr/bin/chromium

# Test areas, longest first (measured; `make -j` starts them in this order, so the long ones never start last).
TEST_AREAS := da storage alignment compute deploy training kv inft observability market cli

.PHONY: setup test $(addprefix test-,$(TEST_AREAS)) demo walk chaos bench audit audit-slither audit-campaigns proto clean

setup: $(PY_STAMP) $(NPM_STAMP) $(SOLC_STAMP) $(CHROMIUM)
	@# the registered compiler runs this checkout's shim (the quoted whole path: /x/work/main contains /work/main):
	@# register again if another checkout took it over
	@grep -qsF '"$(CURDIR)/scripts/solc_shim.js"' "$${SOLCX_BINARY_PATH:-$$HOME/.solcx}/solc-v0.8.30" \
		|| $(BIN)/python scripts/install_solc.py

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

# Debian's chromium, once (CI runs as root on a fresh machine; elsewhere through sudo if there is one).
$(CHROMIUM):
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# One ape session per area: each area's fixtures deploy their own contracts, and ape's snapshot isolation
# goes wrong when module- and session-scoped deployments of different areas share one session. Three sessions
# run at a time (TEST_JOBS): on 2 cores two sessions left a fifth of the CPU idle (areas wait on chains and
# stacks), and each session has an Anvil on a port of its own (deaios.pytest_plugin). Each area's output is
# printed when it finishes; `make test-da` runs one area.
TEST_JOBS ?= 3

test: setup
	$(BIN)/ape compile   # once, before the parallel sessions would each compile into .build/
	@$(MAKE) --no-print-directory -k -j$(TEST_JOBS) --output-sync=target $(addprefix test-,$(TEST_AREAS))

$(addprefix test-,$(TEST_AREAS)): test-%: setup
	$(BIN)/ape test tests/$* -q

# The demo, then the README walk (below): every command block of the README run as written on a fresh, idle stack,
# time locks included. `make demo WALK=0` runs the demo alone.
WALK ?= 1
demo: setup
	$(BIN)/python scripts/demo.py $(if $(FILE),--file $(FILE),)
	$(if $(filter 1,$(WALK)),PATH=$(CURDIR)/node_modules/.bin:$$PATH $(BIN)/python scripts/readme_walk.py,)

# The README's command blocks run as written on a fresh, idle stack, time locks included (6-12 min; the end of
# `make demo`, not in `test`).
walk: setup
	PATH=$(CURDIR)/node_modules/.bin:$$PATH $(BIN)/python scripts/readme_walk.py

# Reliability (docs/reliability.md), not part of `make test`: the fault matrix (tests/chaos/: real stacks, real
# SIGKILLs, damaged files, a full disk, a stopped chain, `deaios down`/`up`), then `make demo`'s job 5 times in a
# row while two CPU hogs run (scripts/demo_under_load.py). Both always run; the target fails if either does.
# Results: .chaos/*.jsonl (`python -m deaios.chaos.report .chaos/results.jsonl` prints the matrix's table).
chaos: setup
	@rc=0; \
	$(BIN)/python -m pytest tests/chaos -q -p no:ape_test -p no:cacheprovider || rc=1; \
	$(BIN)/python -m deaios.chaos.report .chaos/results.jsonl; \
	$(BIN)/python scripts/demo_under_load.py --runs 5 --hogs 2 || rc=1; \
	exit $$rc

# `deaios bench all`, then the DA gas figures (docs/benchmarks.md, "DA gas"), 32-signer quorum included
# (DEAIOS_BENCH=1: the suite runs the smaller sizes only).
bench: setup
	$(BIN)/deaios bench all
	DEAIOS_BENCH=1 $(BIN)/ape test tests/da/contracts/test_da_gas.py -q -s

# `make audit` (not part of `make test`): slither over contracts/ through forge's build info, checked against the
# committed triage (audit/slither-triage.json), then the long stateful campaigns, AUDIT_STEPS steps each
# (`make audit AUDIT_STEPS=500` for a short run). Slither goes into the virtualenv from requirements-audit.txt
# here only; forge comes from package.json; both compile through the solc-js shim ape uses.
AUDIT_STEPS ?= 10000
AUDIT_STAMP := $(VENV)/.audit-installed
AUDIT_CAMPAIGNS := tests/compute/test_compute_invariants.py tests/market/test_market_invariants.py \
	tests/alignment/test_alignment_invariants.py tests/da/contracts/test_da_invariants.py \
	tests/storage/network/test_audit_bad_input.py

$(AUDIT_STAMP): $(PY_STAMP) requirements-audit.txt constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements-audit.txt
	touch $@

audit: audit-slither audit-campaigns

audit-slither: setup $(AUDIT_STAMP)
	cd audit && forge build --force --build-info --offline --use "$$($(BIN)/python $(CURDIR)/scripts/install_solc.py --print-path)"
	rm -f audit/out/slither.json
	cd audit && { $(BIN)/slither . --ignore-compile --exclude-dependencies --filter-paths node_modules \
		--json out/slither.json > out/slither.txt 2>&1 || test -s out/slither.json || { cat out/slither.txt; exit 1; }; }
	$(BIN)/python scripts/slither_check.py audit/out/slither.json audit/slither-triage.json

# One ape session per campaign (as in `test`): each area's fixtures deploy their own contracts. Every campaign
# runs even when an earlier one fails; the target fails at the end, naming them.
audit-campaigns: setup
	@failed=""; for campaign in $(AUDIT_CAMPAIGNS); do \
		echo "== $$campaign: DEAIOS_AUDIT_STEPS=$(AUDIT_STEPS)"; start=$$(date +%s); \
		if DEAIOS_AUDIT_STEPS=$(AUDIT_STEPS) $(BIN)/ape test $$campaign -q -s; then result=passed; \
		else result=FAILED; failed="$$failed $$campaign"; fi; \
		echo "== $$campaign: $$result in $$(( $$(date +%s) - start )) s"; \
	done; \
	if [ -n "$$failed" ]; then echo "audit campaigns failed:$$failed"; exit 1; fi

# The DA disperser's gRPC stubs (committed; tests/da/test_disperser_proto.py checks they are current).
proto: setup
	$(BIN)/python scripts/gen_grpc.py

clean:
	rm -rf $(VENV) node_modules .ape .build contracts/.cache audit/out audit/cache
