# promrelay — see README.md.
GO       ?= go
GOFLAGS  ?=
BIN      := bin/promrelay
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests and `make run` use as real peers.
APT_PKGS := prometheus prometheus-pushgateway

# Serverless Devs CLI, for the offline render check of s.yaml (npm).
S_VERSION := 3.1.10
S_BIN     := .tools/node_modules/.bin/s
# Reproducible release binaries: no paths, no build id, no symbols, no cgo.
RELEASE_FLAGS := -trimpath -buildvcs=false -ldflags="-s -w -buildid="
# Zip entries get a fixed time so equal binaries give equal zips.
ZIP_TIME := 198001010000

# benchstat, pinned (the module proxy here serves exact versions).
BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
# Fuzz targets: package:target.
FUZZ_TARGETS := ./shared/wire:FuzzParseText ./shared/wire:FuzzParseDelimited ./shared/wire:FuzzRewrite ./shared/wire:FuzzEnforceReadRequest ./shared/push:FuzzParseGroupingKey ./shared/query/enforce:FuzzEnforceQuery ./shared/mirror:FuzzHandler ./shared/wire:FuzzUnmarshalV2 ./shared/wire:FuzzUnmarshalOTLP ./shared/otlp:FuzzTranslate ./shared/wire:FuzzAppendWriteRequestV2 ./shared/wire:FuzzApplyProfile ./shared/push:FuzzConvertDuplicates ./shared/aggregate:FuzzMerge ./shared/wire:FuzzParseDecimal
FUZZTIME ?= 10s
# make test fuzzes by a count of executions (about 10 s each here), not a
# duration: Go 1.26's fuzzing coordinator can fail a duration-bounded run
# with a spurious "context deadline exceeded" at its end (golang/go#75804,
# fixed in Go 1.27).
TEST_FUZZTIME ?= 60000x
# Fuzz workers per target (make fuzz FUZZPARALLEL=2 on a machine of your own).
FUZZPARALLEL ?= 1
BENCH_COUNT ?= 6

.PHONY: all build run deps test test-short bench bench-process fuzz load vet fmt clean package build-RelayFunction

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./functions/server

## run: the relay on :9091 and, without PROMRELAY_UPSTREAM_URL, a local Prometheus on 127.0.0.1:9090
run: build
	@if [ -z "$$PROMRELAY_UPSTREAM_URL" ]; then $(MAKE) --no-print-directory deps; fi
	@RELAY_BIN=$(BIN) ./scripts/run.sh

## deps: install the real peers (Prometheus, Pushgateway) when missing
deps:
	@missing=""; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-pushgateway >/dev/null || missing="$$missing prometheus-pushgateway"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PKGS) >/dev/null; \
	fi
	@command -v zip >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq zip >/dev/null; }
	@if [ ! -x $(S_BIN) ] && command -v npm >/dev/null; then \
		echo "installing @serverless-devs/s@$(S_VERSION) into .tools"; \
		mkdir -p .tools && npm install --prefix .tools --no-audit --no-fund --silent @serverless-devs/s@$(S_VERSION) >/dev/null; \
	fi
	@prometheus --version 2>&1 | head -1
	@prometheus-pushgateway --version 2>&1 | head -1

## test: the whole suite, end-to-end tests against real peers included, and a short fuzz
test: deps vet
	PROMRELAY_E2E=1 $(GO) test $(GOFLAGS) -race -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)

## load: bounded load against the server binary (null upstream and a real Prometheus); SOAK=10m adds a soak
load: deps
	$(GO) run ./cmd/promrelay-load $(if $(SOAK),-soak $(SOAK))

## fuzz: each differential fuzz target for FUZZTIME (make fuzz FUZZTIME=1h)
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime=100x -parallel $(FUZZPARALLEL) $$pkg || exit 1; \
	done
## bench-process: whole-process CPU per sample, promrelay's server against vmagent v1.117.0 (nested module bench/process), benchstat table
bench-process:
	cd bench/process && $(GO) run . -out ../../bench-process.txt > ../../bench-process-table.txt; s=$$?; cat ../../bench-process-table.txt; exit $$s
	$(GO) run $(BENCHSTAT) -col /impl -row /path -filter '.unit:ns/sample' bench-process.txt

## test-short: unit tests only: no peer, no built binary, no network (every such test honours -short)
test-short:
	$(GO) test $(GOFLAGS) -short -count=1 ./...

vet:
	$(GO) vet ./...
	cd shared/wire/bench && $(GO) vet ./...
	cd bench/process && $(GO) vet ./...
	@test -z "$$(gofmt -l shared functions internal e2e cmd infra)" || { gofmt -l shared functions internal e2e cmd infra; echo "gofmt needed"; exit 1; }

## bench: promrelay's codec against its peers (nested module), -count $(BENCH_COUNT), benchstat table
bench:
	cd shared/wire/bench && $(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -timeout 60m . | tee ../../../bench.txt
	$(GO) run $(BENCHSTAT) -col /impl -row .name,/series,/format,/op -filter '.unit:ns/sample' bench.txt | tee bench-table.txt
## package: stripped, reproducible binaries and zips for Function Compute and Lambda (write and read entry points)
package:
	rm -rf dist
	mkdir -p dist/fc dist/fc-read dist/fc-custom dist/lambda/arm64 dist/lambda/amd64 dist/lambda-read/arm64 dist/lambda-read/amd64
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build $(RELEASE_FLAGS) -o dist/fc/main ./functions/fc
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build $(RELEASE_FLAGS) -o dist/fc-read/main ./functions/fc-read
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build $(RELEASE_FLAGS) -o dist/fc-custom/main ./functions/server
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(RELEASE_FLAGS) -tags lambda.norpc -o dist/lambda/arm64/bootstrap ./functions/lambda
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build $(RELEASE_FLAGS) -tags lambda.norpc -o dist/lambda/amd64/bootstrap ./functions/lambda
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(RELEASE_FLAGS) -tags lambda.norpc -o dist/lambda-read/arm64/bootstrap ./functions/lambda-read
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build $(RELEASE_FLAGS) -tags lambda.norpc -o dist/lambda-read/amd64/bootstrap ./functions/lambda-read
	cd dist/fc && touch -t $(ZIP_TIME) main && zip -q -X main.zip main
	cd dist/fc-read && touch -t $(ZIP_TIME) main && zip -q -X main.zip main
	cd dist/fc-custom && touch -t $(ZIP_TIME) main && zip -q -X main.zip main
	cd dist/lambda/arm64 && touch -t $(ZIP_TIME) bootstrap && zip -q -X bootstrap.zip bootstrap
	cd dist/lambda/amd64 && touch -t $(ZIP_TIME) bootstrap && zip -q -X bootstrap.zip bootstrap
	cd dist/lambda-read/arm64 && touch -t $(ZIP_TIME) bootstrap && zip -q -X bootstrap.zip bootstrap
	cd dist/lambda-read/amd64 && touch -t $(ZIP_TIME) bootstrap && zip -q -X bootstrap.zip bootstrap
	@ls -l dist/fc/main dist/fc/main.zip dist/fc-read/main dist/fc-read/main.zip dist/fc-custom/main dist/fc-custom/main.zip dist/lambda/*/bootstrap dist/lambda/*/bootstrap.zip dist/lambda-read/*/bootstrap dist/lambda-read/*/bootstrap.zip | awk '{print $$5, $$9}'

## build-RelayFunction: what `sam build` runs (BuildMethod: makefile) for template.yaml
build-RelayFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(RELEASE_FLAGS) -tags lambda.norpc -o $(ARTIFACTS_DIR)/bootstrap ./functions/lambda

## build-ReadFunction: what `sam build` runs (BuildMethod: makefile) for template.yaml's read function
.PHONY: build-ReadFunction
build-ReadFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(RELEASE_FLAGS) -tags lambda.norpc -o $(ARTIFACTS_DIR)/bootstrap ./functions/lambda-read

clean:
	rm -rf bin dist bench.txt bench-table.txt bench-process.txt bench-process-table.txt .tools
