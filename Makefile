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

$(STAMP): pyproject.toml Cargo.toml rust_mapper/Cargo.toml $(shell find rust_mapper/src -name '*.rs' 2>/dev/null)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv, install deps, build the Rust extension (release)

dev: $(STAMP) ## Rebuild the Rust extension in place after editing rust_mapper/
	cd $(CURDIR) && VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/maturin develop --release -q

run: $(STAMP) ## Run the service on embedded defaults (local NATS, ERP simulators)
	GRPC_ENABLE_FORK_SUPPORT=false $(BIN)/returnbridge serve $(ARGS)

proto: $(STAMP) ## Regenerate python/returnbridge/api from proto/
	PYTHON=$(PY) scripts/gen_proto.sh

lint: $(STAMP) ## ruff + mypy + import contracts (lint-imports) + cargo fmt/clippy
	$(BIN)/ruff check python tests benchmarks examples
	$(BIN)/ruff format --check python tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -q -- -D warnings

format: $(STAMP) ## Apply ruff and cargo formatting
	$(BIN)/ruff check --fix -q python tests benchmarks || true
	$(BIN)/ruff format -q python tests benchmarks
	cargo fmt --all

test: $(STAMP) lint ## Lint, type check, cargo test, pytest
	cargo test --workspace -q
	GRPC_ENABLE_FORK_SUPPORT=false $(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP) ## Benchmarks (pytest-benchmark groups, side by side)
	$(BIN)/pytest benchmarks -p no:cacheprovider --benchmark-only --benchmark-group-by=group $(ARGS)

clean: ## Remove build outputs and the venv
	rm -rf $(VENV) target .pytest_cache .benchmarks

.PHONY: help install dev run proto lint format test bench clean
