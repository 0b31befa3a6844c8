# gemini-router: build, test and run the Envoy filter.
# `make help` lists the targets. Setup is idempotent and a prerequisite of
# the targets that need it, so every target works from a clean clone.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON        ?= python3
VENV          := .venv
PY            := $(VENV)/bin/python
ENVOY         := $(VENV)/bin/envoy
TARGET        := wasm32-wasip1
WASM          := target/$(TARGET)/release/gemini_router.wasm
# The newest Envoy is pinned in requirements-dev.txt; the oldest supported
# one runs the integration suite too (see README, "Supported Envoy versions").
ENVOY_OLDEST  := 1.36.2
FILTER_CONFIG ?= {}
LISTEN        ?= 127.0.0.1:10000
ADMIN         ?= 127.0.0.1:9901
PYTEST_ARGS   ?=
FUZZ_TARGETS  ?= scan flow translate
# skopeo checks the OCI layout `make dist` writes (Debian bookworm's package).
SKOPEO_DEB    := 1.9.3+ds1-1+b10
DIST_IMAGE    ?=
# `make bench-peers` compares with the LiteLLM proxy, installed (pinned) into its
# own venv: it is large, and nothing else needs it.
PEERS_VENV    := .venv-peers
LITELLM       := 1.106.12
# `make build` lays out the module's compiled code from a profile (branch
# hints, see build/hints.py; it needs Node.js). `BRANCH_HINTS=off` builds
# the module without them.
BRANCH_HINTS  ?= on
HINTS         := $(filter-out off,$(BRANCH_HINTS))

.PHONY: help setup node build unit unit-wasm lint integration deploy-check matrix test run demo bench bench-parts bench-footprint bench-idle bench-peers measure-memory fuzz oci dist skopeo clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.stamp: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

.rustup-target.stamp:
	rustup target add $(TARGET)
	rustup component add clippy rustfmt
	@touch $@

setup: $(VENV)/.stamp .rustup-target.stamp ## Install the Rust wasm target and the pinned Envoy, SDKs and test tools into .venv

build: .rustup-target.stamp $(if $(HINTS),node) ## Build the filter: target/wasm32-wasip1/release/gemini_router.wasm, its branches hinted from a profile (build/hints.py)
	cargo build --release --target $(TARGET)
	$(if $(HINTS),$(PYTHON) build/hints.py $(WASM))

unit: .rustup-target.stamp ## Run the Rust unit tests on the host
	cargo test --all-targets

# The same unit tests built for the module's target and run in V8 (node's
# WASI, cargo's runner for the target): the code only the module compiles
# (the scanner's SIMD128 steps) and its 32-bit arithmetic are tested where
# they run. Debug information is stripped: wasm-ld refuses it with the
# --compress-relocations of .cargo/config.toml.
unit-wasm: .rustup-target.stamp node ## Run the Rust unit tests built for wasm32-wasip1, in V8 (node)
	CARGO_PROFILE_DEV_STRIP=debuginfo \
	CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings --single-threaded-gc $(CURDIR)/bench/scan-bench/wasi-run.mjs" \
	  cargo test --lib --target $(TARGET)

lint: .rustup-target.stamp ## cargo fmt --check, and clippy -D warnings on host and wasm, and on the fuzz targets
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --release --target $(TARGET) -- -D warnings
	cd fuzz && cargo fmt -- --check && cargo clippy --bins -- -D warnings

integration: setup build ## Run the emulator, integration and client suites against the newest Envoy
	$(PY) -m pytest -q -n 2 tests/emulator tests/integration tests/clients $(PYTEST_ARGS)

node: ## Install Node.js (apt) unless a node is already there: build/hints.py's profile and the wasm unit tests run in it
	@command -v node >/dev/null || { \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { echo "node missing: install Node.js 20 or newer (apt-get install nodejs), or build with BRANCH_HINTS=off" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs; }

skopeo: ## Install skopeo (apt, pinned) unless it is already there
	@command -v skopeo >/dev/null || { \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { echo "skopeo missing: install it (apt-get install skopeo=$(SKOPEO_DEB))" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends skopeo=$(SKOPEO_DEB); }

deploy-check: setup build skopeo ## Check the Envoy configs, Helm chart, Istio resources and release artifacts offline
	$(PY) -m pytest -q tests/deploy $(PYTEST_ARGS)

matrix: setup build ## Run the integration suite on the oldest supported Envoy
	ENVOY_BIN=$$(scripts/install-envoy.sh $(ENVOY_OLDEST)) && \
	  ENVOY_BIN=$$ENVOY_BIN $(PY) -m pytest -q -n 2 tests/integration $(PYTEST_ARGS)

test: setup lint unit unit-wasm integration deploy-check matrix ## The whole suite: lint, unit (host and wasm), integration, clients, deploy checks, Envoy matrix

run: setup build ## Run Envoy with the filter on $(LISTEN) in front of the real Gemini API (TLS)
	$(PY) deploy/envoy/render.py --wasm $(WASM) --config '$(FILTER_CONFIG)' \
	  --listen $(LISTEN) --admin $(ADMIN) --out target/envoy-run.yaml
	@echo "gemini-router: http://$(LISTEN)  (admin http://$(ADMIN)); point clients at http://$(LISTEN)/v1beta/openai or http://$(LISTEN)/v1beta"
	$(ENVOY) -c target/envoy-run.yaml --log-level info --component-log-level wasm:debug

demo: setup build ## Run Envoy with the filter in front of the local Gemini emulator and show a rewrite and an annotated 404
	$(PY) scripts/demo.py --wasm $(WASM) --envoy $(ENVOY)

bench: setup build ## Benchmarks: filter overhead against plain Envoy and two reference modules, memory, body scanning; as ratios
	$(PY) bench/run.py --wasm $(WASM) --envoy $(ENVOY)

bench-parts: setup build ## Instructions and instruction-cache misses per chat request of builds of the filter without (or with twice) one part each; writes bench/parts.md
	$(PY) bench/parts.py --wasm $(WASM) --envoy $(ENVOY) --cache-sim

bench-footprint: setup ## Lines of compiled module code a routed chat runs, by function (Envoy's V8 version, from a Node.js package, under callgrind), against the reference modules; writes bench/footprint.md
	$(PY) bench/footprint.py

bench-idle: setup build ## Idle RSS of the filter, the no-op module and probes (more module bytes, less code); writes bench/idle.md
	$(PY) bench/idle.py --wasm $(WASM) --envoy $(ENVOY)

$(PEERS_VENV)/.litellm-$(LITELLM).stamp:
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'litellm[proxy]==$(LITELLM)' || \
	  { echo "bench-peers: could not install litellm[proxy]==$(LITELLM) into $(PEERS_VENV)" >&2; exit 1; }
	rm -f $(PEERS_VENV)/.litellm-*.stamp
	touch $@

bench-peers: setup build $(PEERS_VENV)/.litellm-$(LITELLM).stamp ## CPU per chat request: the LiteLLM proxy (pinned, in .venv-peers) vs Envoy with the filter; writes bench/peers.md
	$(PY) bench/peers.py --wasm $(WASM) --envoy $(ENVOY) --litellm $(PEERS_VENV)/bin/litellm

measure-memory: setup build ## Envoy's memory per concurrent translated 32 MiB request (the sizing table of deploy/README.md); not part of test
	$(PY) scripts/measure-memory.py

fuzz: ## Fuzz the body scanner, the request flow and the translators, FUZZ_SECONDS (60) each (installs cargo-fuzz)
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$t; \
	  seeds=$$(test -d fuzz/seeds/$$t && echo fuzz/seeds/$$t); \
	  echo "== fuzz $$t ($${FUZZ_SECONDS:-60} s)"; \
	  cargo fuzz run -s none $$t fuzz/corpus/$$t $$seeds -- -dict=fuzz/json.dict -max_total_time=$${FUZZ_SECONDS:-60} || exit 1; \
	done

dist: setup build ## Release artifacts in dist/: module + SHA256SUMS, OCI layout of the module, chart pinned to its digest (DIST_IMAGE=REGISTRY/REPO sets the chart's image)
	$(PY) deploy/dist/dist.py --wasm $(WASM) --out dist $(if $(DIST_IMAGE),--image $(DIST_IMAGE))

oci: build ## Build the OCI image of the module (needs docker, podman or buildah)
	deploy/oci/build.sh $(WASM)

clean: ## Remove build output and installed tools
	cargo clean
	rm -rf $(VENV) .tools .rustup-target.stamp
