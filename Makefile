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

# SAM runs offline here: no telemetry, a region and dummy credentials for validate.
export SAM_CLI_TELEMETRY := 0
SAM_OFFLINE := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline

.PHONY: help setup browser dev test test-e2e test-console test-clients console-screenshots check lint lint-infra unit bench bench-coldstart bench-cost bench-e2e build deploy clean

help:
	@echo "make dev    run Hookline locally (emulated DynamoDB + SQS, API on 127.0.0.1:3000)"
	@echo "make test   formatting, clippy, infra lint and every test (installs tools into .venv first)"
	@echo "make test-e2e  the heavy end-to-end cases: 6,000 deliveries with failures, a crash, schemathesis, the console in Chromium"
	@echo "make test-console  the console's browser tests alone (headless Chromium against make dev's stack)"
	@echo "make test-clients  generate Python and TypeScript clients from the OpenAPI document and drive make dev's stack with them"
	@echo "make bench  benchmarks: render and sign (criterion), fan-out to 1,000 webhooks, delivery throughput, cold start (bench-coldstart), cost (bench-cost)"
	@echo "make setup  create .venv with the pinned tools of requirements-dev.txt (moto, cargo-lambda, zig, SAM CLI, cfn-lint, schemathesis, playwright, openapi-python-client, standardwebhooks, svix)"
	@echo "make build  sam build (cargo lambda, arm64) into infra/.aws-sam"
	@echo "make deploy sam deploy (--guided the first time)"

setup: $(STAMP)

$(STAMP): requirements-dev.txt
	@echo "setup 1/3: a Python virtualenv in $(VENV) (inside this checkout; nothing is installed outside it)"
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "setup 2/3: pip itself, upgraded inside $(VENV)"
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	@echo "setup 3/3: the pinned tools of requirements-dev.txt (moto, cargo-lambda, zig, SAM CLI, cfn-lint, schemathesis, playwright, openapi-python-client, standardwebhooks, svix); a few minutes the first time"
	@$(VENV)/bin/pip install --disable-pip-version-check --progress-bar on -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@
	@echo "setup: done ($(VENV))"

dev: setup
	cargo build -p hookline-local
	$(VENV)/bin/python infra/local/dev.py

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# nextest ships with this machine kind; plain cargo test where it is missing. The
# end-to-end tests start target/debug/hookline-local, so the binaries are built first.
# The heavy end-to-end cases (binaries `heavy`, `fuzz`, `hostile` and `faults`) run in `make test-e2e`.
unit:
	cargo build --workspace --bins --locked
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --locked --no-fail-fast -E 'not (binary(heavy) | binary(fuzz) | binary(hostile) | binary(faults))'; \
	else \
		cargo test --workspace --locked --lib --bins --tests -- --skip heavy:: --skip fuzz:: --skip hostile:: --skip faults::; \
	fi

test-e2e: setup test-console test-clients
	cargo build --workspace --bins --locked
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run -p hookline-e2e --locked --no-fail-fast -E 'binary(heavy) | binary(fuzz) | binary(hostile) | binary(faults)' --test-threads 1; \
	else \
		cargo test -p hookline-e2e --locked --test heavy --test fuzz --test hostile --test faults -- --test-threads 1; \
	fi

# The console's tests need a Chromium: Debian's package, installed here when missing and
# running as root (as CI does); elsewhere, what to install is said and nothing runs.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium (Debian package) for the console's browser tests"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "the console's browser tests need Chromium: install it (Debian/Ubuntu: sudo apt-get install chromium), then run this again" >&2; \
			exit 1; \
		fi; \
	fi

test-console: setup browser
	cargo build -p hookline-local --locked
	$(VENV)/bin/python -m pytest tests/console -q -p no:cacheprovider

# Clients generated as a user would (openapi-python-client from .venv, @hey-api/openapi-ts
# from tests/clients/package-lock.json via npm ci) into target/clients; a generator's
# warning fails the run.
test-clients: setup
	cargo build -p hookline-local --locked
	cd tests/clients && npm ci --no-audit --no-fund --loglevel=error
	$(VENV)/bin/python -m pytest tests/clients -q -p no:cacheprovider

# The README's screenshots, taken by the browser tests.
console-screenshots: setup browser
	cargo build -p hookline-local --locked
	HOOKLINE_SCREENSHOTS=docs $(VENV)/bin/python -m pytest tests/console -q -p no:cacheprovider -k "table_shows or details_preview"

lint-infra: setup
	cfn-lint infra/template.yaml
	cd infra && $(SAM_OFFLINE) sam validate --lint

test: setup lint lint-infra unit

# The functions run on arm64 (Graviton): cargo-lambda cross-compiles with zig from .venv.
build: setup
	@echo "build: adding the Rust target aarch64-unknown-linux-gnu to your toolchain ($${RUSTUP_HOME:-$$HOME/.rustup}, outside this checkout; nothing to do if it is there)"
	rustup target add aarch64-unknown-linux-gnu
	@echo "build: sam build (cargo lambda with zig from $(VENV), arm64) into infra/.aws-sam"
	cd infra && sam build

# Guided the first time (no saved deploy section); HOOKLINE_ADMIN_KEY, when set, is passed
# as the NoEcho AdminKey parameter on later runs.
deploy: build
	@cd infra; \
	if grep -q '^\[default.deploy.parameters\]' samconfig.toml; then \
		sam deploy $${HOOKLINE_ADMIN_KEY:+--parameter-overrides AdminKey=$$HOOKLINE_ADMIN_KEY}; \
	else \
		sam deploy --guided --capabilities CAPABILITY_IAM; \
	fi

bench: setup
	cargo bench -p hookline-core --bench core
	cargo bench -p hookline-e2e --bench fanout
	cargo bench -p deliver --bench throughput
	$(MAKE) --no-print-directory bench-coldstart bench-cost

# What a million deliveries cost: the reference load through the real handlers against
# the emulator, every AWS request counted, priced at list prices (infra/local/benches/cost.rs).
bench-cost: setup
	AWS_LAMBDA_LOG_FORMAT=JSON cargo bench -p hookline-local --bench cost

# Cold start, peak RSS and size of each function beside a bare lambda_runtime binary
# (tests/bare-lambda) built with the same profile in the same run; the arm64 zips come
# from cargo lambda (zig from .venv), as make build makes them.
bench-coldstart: setup
	cargo build --release --locked -p register -p trigger -p deliver -p bare-lambda
	@echo "bench-coldstart: adding the Rust target aarch64-unknown-linux-gnu to your toolchain ($${RUSTUP_HOME:-$$HOME/.rustup}, outside this checkout), as make build does"
	rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --release --arm64 --locked --output-format zip -p register -p trigger -p deliver -p bare-lambda
	cargo bench -p hookline-e2e --bench coldstart

bench-e2e: setup
	cargo build --workspace --bins --locked
	cargo bench -p hookline-e2e --bench e2e

clean:
	cargo clean
	rm -rf $(VENV)
