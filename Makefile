# The two commands a newcomer needs: `make run` and `make test`.
GO      ?= go
BIN     := bin/portcullis
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: run test build bench fuzz mariadb clean

## run: start MariaDB if needed, then portcullis with the dev config, printing a ready mariadb command
run: build mariadb
	@scripts/dev-run.sh

## test: every test, integration included (starts or installs MariaDB first)
test: mariadb
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 10m ./...

## build: a static binary with version info in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/portcullis

## bench: direct vs through portcullis, printed and written to bench/results.json
bench: mariadb
	$(GO) run ./bench
	$(GO) run ./bench -no-pool -out bench/results-nopool.json
	$(GO) test -run '^$$' -bench . -benchmem ./auth ./proxy

## fuzz: run each fuzz target for a while (FUZZTIME=30s)
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseHandshakeResponse -fuzztime $(or $(FUZZTIME),30s) ./proxy

mariadb:
	@scripts/ensure-mariadb.sh

clean:
	rm -rf bin .run
