# TheProtocol — every developer and CI entry point. A fresh machine needs only
# Go (and, as root, the distribution's package manager for PostgreSQL): the
# tools below are built into ./bin with `go install` at pinned versions.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

# Pinned tool versions (bump deliberately; stamps make warm runs skip builds).
TEMPORAL_VERSION    := v1.5.1
SQLC_VERSION        := v1.31.1
STATICCHECK_VERSION := v0.8.2

TEMPORAL    := $(BIN)/temporal
SQLC        := $(BIN)/sqlc
STATICCHECK := $(BIN)/staticcheck
THEPROTOCOL := $(BIN)/theprotocol

# Integration tests share one set of services started by `theprotocol
# testenv`; -race everywhere fits the CI budget on 2 cores.
TEST_FLAGS  ?= -race -count=1 -timeout 25m
TEST_PKGS   ?= ./...
# 1: the browser test of /ui fails without chromium (make test installs it)
REQUIRE_BROWSER ?= 1
# Unit tests: -short makes every test that needs Postgres, Temporal, Kafka or
# SPIRE skip (testenv's helpers do it), so nothing is started or built.
UNIT_FLAGS  ?= -short -count=1 -timeout 5m
BENCH_FLAGS ?= -run '^$$' -benchmem -benchtime 3s
BENCH_PKGS  ?= ./...

.PHONY: help
help: ## list targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-17s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/.temporal-$(TEMPORAL_VERSION):
	@mkdir -p $(BIN)
	@echo ">> building temporal CLI $(TEMPORAL_VERSION) (~4 min on a cold cache)"
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION)
	@touch $@

$(BIN)/.sqlc-$(SQLC_VERSION):
	@mkdir -p $(BIN)
	@echo ">> building sqlc $(SQLC_VERSION)"
	GOBIN=$(BIN) CGO_ENABLED=1 $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)
	@touch $@

$(BIN)/.staticcheck-$(STATICCHECK_VERSION):
	@mkdir -p $(BIN)
	@echo ">> building staticcheck $(STATICCHECK_VERSION)"
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@touch $@

TOOL_STAMPS := $(BIN)/.temporal-$(TEMPORAL_VERSION) $(BIN)/.sqlc-$(SQLC_VERSION) $(BIN)/.staticcheck-$(STATICCHECK_VERSION)

.PHONY: tools
tools: ## build the pinned tools into ./bin, SPIRE included (parallel; cached by stamps)
	@$(MAKE) --no-print-directory -j4 $(TOOL_STAMPS) $(SPIRE_STAMP)

# SPIRE server + agent for the identity tests, built from the tools module
# tools/spire (kept out of the product's module graph). The stamp is keyed by
# the tools module's go.sum hash, so a warm run skips the ~6-13 min cold build.
# Tests find the binaries via THEPROTOCOL_SPIRE_BIN_DIR (then they must be
# there, or the tests fail) or ./bin, and skip only when neither applies.
SPIRE_BIN_DIR ?= $(BIN)
SPIRE_SUM     := $(shell sha256sum tools/spire/go.sum 2>/dev/null | cut -c1-16)
SPIRE_STAMP   := $(SPIRE_BIN_DIR)/.spire-$(SPIRE_SUM)

$(SPIRE_STAMP): tools/spire/go.mod tools/spire/go.sum
	@mkdir -p $(SPIRE_BIN_DIR)
	@echo ">> building spire-server and spire-agent (cgo; ~6-13 min on a cold cache)"
	cd tools/spire && CGO_ENABLED=1 $(GO) build -trimpath -o $(SPIRE_BIN_DIR)/ \
	  github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent
	@rm -f $(SPIRE_BIN_DIR)/.spire-*
	@touch $@

.PHONY: spire
spire: $(SPIRE_STAMP) ## build bin/spire-server and bin/spire-agent (cached by tools/spire/go.sum)

.PHONY: test-spire
test-spire: spire ## identity tests against real SPIRE (server + agent started by the tests)
	THEPROTOCOL_SPIRE_BIN_DIR=$(SPIRE_BIN_DIR) $(GO) test $(TEST_FLAGS) ./identity/...

.PHONY: build
build: ## build ./bin/theprotocol
	$(GO) build -o $(THEPROTOCOL) ./cmd/theprotocol

.PHONY: run
run: ## start the whole system on embedded defaults (state in .data/)
	@$(MAKE) --no-print-directory -j2 $(BIN)/.temporal-$(TEMPORAL_VERSION) build
	$(THEPROTOCOL) dev

# oapi-codegen is pinned by the tools module tools/oapi-codegen (a `tool`
# line in its go.mod, like tools/spire): `go tool` builds it on first use and
# caches it, so there is no stamp. Its input is the committed OpenAPI
# document, written from the operation table (api/openapi) first.
OAPI_CODEGEN := $(GO) tool -modfile=tools/oapi-codegen/go.mod oapi-codegen

.PHONY: generate
generate: $(BIN)/.sqlc-$(SQLC_VERSION) ## regenerate sqlc code, the committed OpenAPI document and the SDK's generated client
	$(SQLC) generate
	$(GO) run ./api/openapi/cmd/openapispec -o api/openapi/openapi.json
	$(OAPI_CODEGEN) -config sdk/apiclient/oapi-codegen.yaml -o sdk/apiclient/client.gen.go api/openapi/openapi.json

# The OpenAPI document and the client are also checked by Go tests in
# `make test` (TestCommittedDocumentIsCurrent, TestGeneratedClientIsCurrent),
# which regenerate into memory or a temporary file, so they need no git.
.PHONY: check-generated
check-generated: $(BIN)/.sqlc-$(SQLC_VERSION) ## fail when generated code is stale
	@$(SQLC) diff || { echo "generated code is stale: run 'make generate' and commit"; exit 1; }
	@$(SQLC) vet
	@$(GO) test -count=1 -run 'TestCommittedDocumentIsCurrent|TestGeneratedClientIsCurrent' ./api/openapi ./sdk/apiclient || \
	  { echo "the OpenAPI document or the SDK client is stale: run 'make generate' and commit"; exit 1; }

.PHONY: vet
vet: ## go vet + gofmt check
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: lint
lint: vet $(BIN)/.staticcheck-$(STATICCHECK_VERSION) ## go vet, gofmt and staticcheck
	$(STATICCHECK) ./...

.PHONY: test-unit
test-unit: ## unit tests only (go test -short): no services, no tool builds; under a minute warm
	$(GO) test $(UNIT_FLAGS) $(TEST_PKGS)

# Compiles (and vets) every test package with the flags of `make test`
# without running a test, so the cache is warm when the services are up.
.PHONY: test-compile
test-compile:
	@mkdir -p $(BIN)
	@echo ">> compiling the test packages ($(TEST_FLAGS))"
	@$(GO) test $(TEST_FLAGS) -run '^$$' $(TEST_PKGS) >$(BIN)/.test-compile.log 2>&1 || { cat $(BIN)/.test-compile.log; exit 1; }

# Everything `make test` needs before the first test, as one graph: the tool
# builds (SPIRE and the Temporal CLI take minutes on a cold cache) run beside
# the compilation of the test packages, lint, the generated-code check and
# the binary.
.PHONY: test-prepare
test-prepare: $(TOOL_STAMPS) $(SPIRE_STAMP) test-compile lint check-generated build

.PHONY: test
test: ## tools, vet, lint, generated-code check, then every test (unit + integration on real Postgres/Temporal/Kafka/SPIRE) with -race
	@$(MAKE) --no-print-directory -j4 test-prepare
	scripts/ensure-chromium.sh
	THEPROTOCOL_REQUIRE_BROWSER=$(REQUIRE_BROWSER) THEPROTOCOL_SPIRE_BIN_DIR=$(SPIRE_BIN_DIR) $(THEPROTOCOL) testenv -- $(GO) test $(TEST_FLAGS) $(TEST_PKGS)

.PHONY: sim
sim: build ## load the running dev stack (make run) for a minute, then check every invariant (SIM_FLAGS="-chaos all")
	$(THEPROTOCOL) sim $(SIM_FLAGS)

# The report (bench/results/<date>-<machine>.md and .json): every figure,
# its target, the ratio to it and to the baseline of the same run, the
# machine and its load average (bench/benchreport).
BENCH_RESULTS ?= bench/results

.PHONY: bench
bench: tools build ## run every benchmark against real services and write the report to bench/results/
	@mkdir -p $(BENCH_RESULTS)
	@load="$$(cut -d' ' -f1-3 /proc/loadavg)"; raw="$(BENCH_RESULTS)/.last-run.txt"; \
	  $(THEPROTOCOL) testenv -- $(GO) test $(BENCH_FLAGS) -bench . $(BENCH_PKGS) | tee "$$raw"; \
	  $(GO) run ./bench/benchreport -in "$$raw" -out $(BENCH_RESULTS) -load-before "$$load" -command "$(BENCH_FLAGS) -bench . $(BENCH_PKGS)"

.PHONY: bench-reputation
bench-reputation: ## EigenTrust over 100,000 agents and 1,000,000 transfers: full run, incremental run after 10,000 transfers, float vs fixed-point iteration
	$(GO) test -run '^$$' -bench . -benchtime 1x ./reputation/eigentrust/

.PHONY: bench-ledger
bench-ledger: tools build ## ledger throughput: store with/without group commit, end to end over HTTP, and this machine's floors
	$(THEPROTOCOL) testenv -- $(GO) test ./db/ledgerstore -run '^$$' -bench 'Transfers|TransferFloor' -benchtime 40000x
	$(THEPROTOCOL) testenv -- $(GO) test ./api/ledgerapi -run '^$$' -bench HTTPTransfers -benchtime 20000x

.PHONY: bench-eventstore
bench-eventstore: tools build ## EventStore ingest (DB path 200k, Kafka path 1M events), audit read, replay of 1M events, outbox→projection lag under transfer load
	$(THEPROTOCOL) testenv -- $(GO) test ./ingest -run '^$$' -bench 'Apply|KafkaToEventStore|AuditRead' -benchtime 1x -timeout 30m
	INGEST_BENCH_EVENTS=1000000 $(THEPROTOCOL) testenv -- $(GO) test ./ingest -run '^$$' -bench 'Replay' -benchtime 1x -timeout 30m
	$(THEPROTOCOL) testenv -- $(GO) test ./node -run '^$$' -bench OutboxToProjectionLag -benchtime 1x

.PHONY: bench-staking
bench-staking: tools build ## staking reward run over 1,000,000 positions seeded in the database (STAKING_BENCH_POSITIONS to change), wall time and Temporal history length
	$(THEPROTOCOL) testenv -- $(GO) test ./worker -run '^$$' -bench StakingRewardRun -benchtime 1x -timeout 60m

.PHONY: bench-governance
bench-governance: tools build ## governance: tally of 100,000 votes with delegation (pure and on Postgres), votes/s over HTTP next to transfers/s
	$(THEPROTOCOL) testenv -- $(GO) test ./governance ./db/ledgerstore -run '^$$' -bench 'Tally100k' -benchtime 1x
	$(THEPROTOCOL) testenv -- $(GO) test ./api/ledgerapi -run '^$$' -bench HTTPVotes -benchtime 4000x

.PHONY: bench-xfer
bench-xfer: tools build ## cross-registry transfers: intra figure, lone latency, batched and unbatched transfers/s with accept→committed p50/p99 (two nodes, mTLS, dev Temporal)
	XFER_BENCH_CLIENTS=$${XFER_BENCH_CLIENTS:-128} $(THEPROTOCOL) testenv -- $(GO) test ./node -run '^$$' -bench CrossRegistryTransfers -benchtime 8000x

.PHONY: bench-paid
bench-paid: tools build ## paid calls/s through PaymentVerifier (token issue → call → settle), payee on the same and on another registry, next to plain HTTP transfers in the same run
	$(THEPROTOCOL) testenv -- $(GO) test ./sdk -run '^$$' -bench PaidCalls -benchtime 500x

.PHONY: check-image
check-image: ## build the binary exactly as the Dockerfile does (static, CGO off) and check deploy/'s compose rules; no Docker needed
	THEPROTOCOL_TEST_STATIC_BUILD=1 $(GO) test -count=1 -run 'TestDockerfile|TestComposeFiles' ./deploy

.PHONY: bench-bridge
bench-bridge: tools build ## cross-frame bridge: lone and loaded bridge sends (transfers/s, accept→minted p50/p99) beside the batched cross-registry figure, same run
	XFER_BENCH_CLIENTS=$${XFER_BENCH_CLIENTS:-128} $(THEPROTOCOL) testenv -- $(GO) test ./node -run '^$$' -bench BridgeTransfers -benchtime $${BRIDGE_BENCH_N:-2000}x -timeout 30m

.PHONY: clean
clean: ## remove built binaries and the dev stack's state (.data/)
	rm -rf $(BIN) .data
