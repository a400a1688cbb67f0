# promrelay — see README.md.
GO       ?= go
GOFLAGS  ?=
BIN      := bin/promrelay
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests and `make run` use as real peers.
APT_PKGS := prometheus prometheus-pushgateway

.PHONY: all build run deps test test-short bench vet fmt clean

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
	@prometheus --version 2>&1 | head -1
	@prometheus-pushgateway --version 2>&1 | head -1

## test: the whole suite, end-to-end tests against real peers included
test: deps vet
	PROMRELAY_E2E=1 $(GO) test $(GOFLAGS) -race -count=1 -timeout 30m ./...

## test-short: unit tests only, no real peers needed
test-short:
	$(GO) test $(GOFLAGS) -short -count=1 ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l shared functions internal e2e)" || { gofmt -l shared functions internal e2e; echo "gofmt needed"; exit 1; }

## bench: codec benchmarks (ns/sample, allocs)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./shared/wire/ ./shared/push/ | tee bench.txt

clean:
	rm -rf bin dist bench.txt
