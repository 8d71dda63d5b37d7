# autoheal — the commands a newcomer needs. Everything the project uses is installed here.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
export CARGO_TARGET_DIR ?= target
DEBUG_BIN   := $(CARGO_TARGET_DIR)/debug/autoheal
RELEASE_BIN := $(CARGO_TARGET_DIR)/release/autoheal

.PHONY: test demo bench lint build build-debug clean

## Python side: the moto AWS emulator (and boto3 for the demo/bench rig), pinned.
$(VENV)/.installed: tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@

## All tests: unit tables, then integration tests against a fresh moto server.
test: $(VENV)/.installed
	tools/with-moto.sh cargo test --all-targets

## Format, clippy (warnings are errors), CloudFormation lint.
lint: $(VENV)/.installed
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

build-debug:
	cargo build --bin autoheal

## The whole job on this machine: emulator, a 3-instance group, KMS, ledger, Slack receiver,
## sample events through the real binary.
demo: $(VENV)/.installed build-debug
	$(PY) tools/demo.py --binary $(DEBUG_BIN)

## Release build figures: size, cold start, warm latency vs a boto3 baseline, peak RSS.
bench: $(VENV)/.installed
	cargo build --release --bin autoheal
	-$(PY) tools/bench.py --binary $(RELEASE_BIN)
	tools/with-moto.sh cargo test --test backup -- --ignored --nocapture bench_

## The Lambda package (Graviton): needs `pip install cargo-lambda` (zig comes with it).
build:
	cargo lambda build --release --arm64 --bin autoheal

clean:
	cargo clean
	rm -rf $(VENV)
