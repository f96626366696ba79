# Hookline — the commands a newcomer runs: `make dev` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    := .venv
PYTHON  ?= python3
# Re-install when requirements-dev.txt changes.
STAMP   := $(VENV)/.installed-$(shell sha1sum requirements-dev.txt | cut -c1-12)
# The venv first on PATH: sam finds zig through `python3 -m ziglang`.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup test check lint unit bench clean

help:
	@echo "make dev    run Hookline locally (emulated DynamoDB + SQS, API on 127.0.0.1:3000)"
	@echo "make test   formatting, clippy and every test (installs tools into .venv first)"
	@echo "make bench  benchmarks: render and sign (criterion), fan-out to 1,000 webhooks"
	@echo "make setup  create .venv with moto, cargo-lambda, zig, SAM CLI and cfn-lint"

setup: $(STAMP)

$(STAMP): requirements-dev.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# nextest ships with this machine kind; plain cargo test where it is missing.
unit:
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --locked --no-fail-fast; \
	else \
		cargo test --workspace --locked --lib --bins --tests; \
	fi

test: setup lint unit

bench: setup
	cargo bench -p hookline-core --bench core
	cargo bench -p hookline-e2e --bench fanout

clean:
	cargo clean
	rm -rf $(VENV)
