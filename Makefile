# returnbridge developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## List targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# The dev/test environment comes only from the hashed lock; `make lock` is the one way new versions come in.
LOCK := requirements/dev.txt
RUNTIME_LOCK := requirements/runtime.txt
PIP_VERSION := 26.3
PIP_TOOLS_VERSION := 7.7.0

$(STAMP): pyproject.toml $(LOCK) Cargo.toml Cargo.lock rust_mapper/Cargo.toml $(shell find rust_mapper/src -name '*.rs' 2>/dev/null)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'pip==$(PIP_VERSION)'
	$(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP) ## Create .venv, install deps, build the Rust extension (release)

# Debian packages the tests use: headless Chromium + its driver (console browser tests), promtool (alert rules).
SYSTEM_DEPS := chromium chromium-driver prometheus
system-deps: ## Install chromium, chromium-driver and prometheus (promtool) with apt when missing
	@missing=$$(for p in $(SYSTEM_DEPS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "system deps present: $(SYSTEM_DEPS)"; \
	else echo "installing: $$missing"; SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; fi

lock: ## Re-lock requirements/*.txt after editing pyproject.toml; UPGRADE=1 moves every pin to the newest release
	test -x .venv-lock/bin/python || $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q 'pip==$(PIP_VERSION)' 'pip-tools==$(PIP_TOOLS_VERSION)'
	.venv-lock/bin/pip-compile -q $(if $(UPGRADE),--upgrade) --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links \
	  --extra dev -o $(LOCK) pyproject.toml
	.venv-lock/bin/pip-compile -q $(if $(UPGRADE),--upgrade) --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links \
	  -o $(RUNTIME_LOCK) pyproject.toml
	@echo "Locks refreshed: run 'make install proto' and commit requirements/ with any regenerated code."

dev: $(STAMP) ## Rebuild the Rust extension in place after editing rust_mapper/
	cd $(CURDIR) && VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/maturin develop --release -q

run: $(STAMP) ## Run the service on embedded defaults (local NATS, ERP simulators)
	GRPC_ENABLE_FORK_SUPPORT=false $(BIN)/returnbridge serve $(ARGS)

proto: $(STAMP) ## Regenerate python/returnbridge/api from proto/
	PYTHON=$(PY) scripts/gen_proto.sh

lint: $(STAMP) ## ruff + mypy + import contracts (lint-imports) + cargo fmt/clippy
	$(BIN)/ruff check python tests benchmarks examples scripts
	$(BIN)/ruff format --check python tests benchmarks examples scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -q -- -D warnings

format: $(STAMP) ## Apply ruff and cargo formatting
	$(BIN)/ruff check --fix -q python tests benchmarks examples scripts || true
	$(BIN)/ruff format -q python tests benchmarks examples scripts
	cargo fmt --all

test: system-deps $(STAMP) lint ## Lint, type check, cargo test, pytest, the release wheel in a clean venv
	cargo test --workspace --locked -q
	GRPC_ENABLE_FORK_SUPPORT=false $(BIN)/pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-wheel

wheel: $(STAMP) ## Build the release wheel into dist/ (maturin, Cargo.lock honoured)
	rm -rf dist
	$(BIN)/maturin build --release --locked -q -o dist

test-wheel: wheel ## Install dist/*.whl into a clean venv with the runtime lock; serve to SERVING; mapping check
	GRPC_ENABLE_FORK_SUPPORT=false $(PY) scripts/wheel_smoke.py --wheel-dir dist --runtime-lock $(RUNTIME_LOCK) --pip-version $(PIP_VERSION)

bench: $(STAMP) ## Benchmarks (pytest-benchmark groups, side by side)
	$(BIN)/pytest benchmarks -p no:cacheprovider --benchmark-only --benchmark-group-by=group $(ARGS)

bench-load: $(STAMP) ## Load: 10,000 submissions in flight on gateway/worker processes + probe; JSON + PNG in benchmarks/results
	GRPC_ENABLE_FORK_SUPPORT=false $(PY) benchmarks/load_chaos.py bench --calls 10000 --in-flight 10000 $(ARGS)

chaos: $(STAMP) ## Every fault scenario at full size (single node, then the 3-node cluster); JSON + PNG in benchmarks/results
	GRPC_ENABLE_FORK_SUPPORT=false $(PY) benchmarks/load_chaos.py chaos $(ARGS)

clean: ## Remove build outputs and the venv
	rm -rf $(VENV) .venv-lock target dist .pytest_cache .benchmarks

.PHONY: help install system-deps lock dev run proto lint format test wheel test-wheel bench bench-load chaos clean
