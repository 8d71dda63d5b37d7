# autoheal — the commands a newcomer needs. Everything the project uses is installed here.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
export CARGO_TARGET_DIR ?= target
DEBUG_BIN   := $(CARGO_TARGET_DIR)/debug/autoheal
RELEASE_BIN := $(CARGO_TARGET_DIR)/release/autoheal

.PHONY: test test-deploy demo bench lint validate build build-debug deploy live dry-run invoke clean

## Python side: the moto AWS emulator (and boto3 for the demo/bench rig), pinned.
$(VENV)/.installed: tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@

## All tests: unit tables, then integration tests against a fresh moto server; the
## template through cfn-lint with the serverless rules (warnings fail too).
test: $(VENV)/.installed
	$(PY) -m unittest tools/test_moto_world.py tools/test_moto_events.py tools/test_moto_windows.py tools/test_moto_facts.py tools/test_moto_zonal.py tools/test_slack_check.py tools/test_event_pattern.py tools/test_latency_proxy.py tools/test_live.py tools/test_invoke_event.py
	tools/with-moto.sh cargo test --workspace --all-targets --no-fail-fast
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

## The stack deployed from zero on the emulator and checked against the code (also part of
## `make test`): tools/deploy.py does what `sam deploy` does; see docs/deploy.md.
test-deploy: $(VENV)/.installed
	tools/with-moto.sh cargo test --test deploy

## Format, clippy (warnings are errors), CloudFormation lint: cfn-lint's own rules, then
## with the serverless rules (cfn-lint-serverless); warnings fail too. Then `sam validate`.
lint: $(VENV)/.installed validate
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

## The debug binary, built with the test targets in one invocation: dev-dependencies add
## features (tokio's `full`, hyper's server) that Cargo unifies only when tests are built,
## so building the binary alone would compile tokio and every SDK a second time for
## `make test`. This way `make test` after `make demo` compiles nothing more.
build-debug:
	cargo build --workspace --all-targets

## The whole job on this machine: emulator, a 3-instance group, KMS, ledger, Slack receiver,
## sample events through the real binary.
demo: $(VENV)/.installed build-debug
	$(PY) tools/demo.py --binary $(DEBUG_BIN)

## Release build figures in a modelled region (tools/latency_proxy.py: +40 ms per AWS call,
## +150 ms per Slack post, concurrent calls overlap): cold start, warm latency, AWS calls and
## sequential rounds per alarm, peak RSS, of autoheal (defaults; guards off) against a naive
## boto3 handler, and on raw moto; then a 1,000-instance backup tick, and autoheal-admin on
## 5,000 instances. See docs/benchmarks.md.
bench: $(VENV)/.installed
	cargo build --release --bin autoheal
	-$(PY) tools/bench.py --binary $(RELEASE_BIN)
	tools/with-moto.sh cargo test --test backup -- --ignored --nocapture bench_
	tools/with-moto.sh cargo test -p autoheal-admin --test admin -- --ignored --nocapture bench_

## Packaging and deploying: cargo-lambda (with zig) and the SAM CLI, pinned, in their own venv.
DEPLOY_VENV := .venv-deploy
DEPLOY_PATH := $(abspath $(DEPLOY_VENV))/bin:$(PATH)
$(DEPLOY_VENV)/.installed: tools/requirements-deploy.txt
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-deploy.txt
	touch $@

## The template as the SAM CLI reads it (its translator, then cfn-lint); no AWS account needed.
validate: $(DEPLOY_VENV)/.installed
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 PATH="$(DEPLOY_PATH)" sam validate --lint

## The Lambda package ($(CARGO_TARGET_DIR)/lambda/autoheal/bootstrap), linked by zig against
## Lambda's glibc. ARCH=arm64 (Graviton, the template's default) needs Rust's aarch64 standard
## library (rustup target add aarch64-unknown-linux-gnu); where it is missing, the build is
## x86_64 and the stack must be deployed with Architecture=x86_64. It says which.
ARCH ?= $(if $(filter aarch64-unknown-linux-gnu,$(shell rustup target list --installed 2>/dev/null)),arm64,x86_64)
build: $(DEPLOY_VENV)/.installed
	@echo "make build: $(ARCH) (deploy with the template parameter Architecture=$(ARCH))"
	PATH="$(DEPLOY_PATH)" cargo lambda build --release --$(subst _,-,$(ARCH)) --bin autoheal
	ls -l $(CARGO_TARGET_DIR)/lambda/autoheal/bootstrap

## sam build (for ARCH, as `make build`) + sam deploy: guided the first time (answers saved
## in samconfig.toml; answer Architecture as built), then the same deploy again. SAM's Rust
## build method is still behind --beta-features.
deploy: $(DEPLOY_VENV)/.installed
	PATH="$(DEPLOY_PATH)" sam build --beta-features --parameter-overrides Architecture=$(ARCH)
	if [ -f samconfig.toml ]; then PATH="$(DEPLOY_PATH)" sam deploy; \
	else PATH="$(DEPLOY_PATH)" sam deploy --guided --capabilities CAPABILITY_IAM; fi

## Going live: repairs on from the next deploy, and on every deploy after it (DryRun=false
## written into samconfig.toml, which the first `make deploy` made), then that deploy.
## `make dry-run` turns repairs off the same way. See docs/RUNBOOK.md.
live: $(VENV)/.installed
	$(PY) tools/live.py false
	$(MAKE) deploy

dry-run: $(VENV)/.installed
	$(PY) tools/live.py true
	$(MAKE) deploy

## One sample alarm through the function on this machine (cargo lambda watch + invoke), about
## INSTANCE=i-... (an instance of the account, put in the sample's place, the alarm dated
## now), always in dry run: EC2 and Auto Scaling read, nothing changed. It writes to
## AUTOHEAL_TABLE what a dry-run alarm does (README, "Deploy from zero", step 6). AWS is what
## your environment points at (AWS_PROFILE, or AWS_ENDPOINT_URL for an emulator).
## EVENT=events/<alarm sample>.json.
EVENT ?= events/sns-alarm.json
invoke: $(DEPLOY_VENV)/.installed
	PATH="$(DEPLOY_PATH)" tools/invoke.sh $(EVENT)

clean:
	cargo clean
	rm -rf $(VENV) $(DEPLOY_VENV)
