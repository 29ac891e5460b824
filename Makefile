# The two commands a newcomer needs: `make run` and `make test`.
GO      ?= go
BIN     := bin/portcullis
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  := $(shell git rev-parse --short=12 HEAD 2>/dev/null)
DATE    := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)

.PHONY: run run-reset man lint test build bench fuzz mariadb chromium bench-tools clients clean test-short

## run: start MariaDB if needed, then portcullis with the dev config, printing a ready mariadb command
run: build mariadb
	@scripts/dev-run.sh

## run-reset: drop this checkout's dev accounts, database and .run/, then as run
run-reset: build mariadb
	@scripts/dev-run.sh --reset

## test: every test, integration included (starts or installs MariaDB, installs chromium for the browser login test
## and the client matrix's clients)
test: mariadb chromium clients
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

## test-short: the unit tests only, as the README promises for `go test -short` (no MariaDB, no browser)
test-short:
	$(GO) test -race -short -count=1 ./...

## lint: golangci-lint (pinned, installed into bin/ through the Go module proxy) with .golangci.yml: import directions, staticcheck, revive, errorlint
lint:
	$$(scripts/ensure-golangci-lint.sh) run ./...

## build: a static binary with version info in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)" -o $(BIN) ./cmd/portcullis

## man: the man pages, generated from the commands, into man/ (man -l man/portcullis.1)
man: build
	$(BIN) man --dir man

## bench: direct vs through portcullis, each figure against its target; printed and written to bench/results.json
bench: build mariadb bench-tools
	$(GO) run ./bench -portcullis $(BIN)
	$(GO) test -run '^$$' -bench . -benchmem ./proxy

## fuzz: run each fuzz target for a while (FUZZTIME=30s each)
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseHandshakeResponse -fuzztime $(or $(FUZZTIME),30s) ./proxy/wire
	$(GO) test -run '^$$' -fuzz FuzzParseGreeting -fuzztime $(or $(FUZZTIME),30s) ./proxy/wire
	$(GO) test -run '^$$' -fuzz FuzzFilter -fuzztime $(or $(FUZZTIME),30s) ./directory/scim
	$(GO) test -run '^$$' -fuzz FuzzCheckShape -fuzztime $(or $(FUZZTIME),30s) ./auth/saml
	$(GO) test -run '^$$' -fuzz FuzzAWSVerify -fuzztime $(or $(FUZZTIME),30s) ./auth/cloud
	$(GO) test -run '^$$' -fuzz FuzzVerify -fuzztime $(or $(FUZZTIME),30s) ./auth
	$(GO) test -run '^$$' -fuzz 'FuzzNormalize$$' -fuzztime $(or $(FUZZTIME),30s) ./auth/username
	$(GO) test -run '^$$' -fuzz FuzzASCIIFastPath -fuzztime $(or $(FUZZTIME),30s) ./auth/username
	$(GO) test -run '^$$' -fuzz FuzzGuard -fuzztime $(or $(FUZZTIME),30s) ./proxy

mariadb:
	@scripts/ensure-mariadb.sh

chromium:
	@scripts/ensure-chromium.sh

bench-tools:
	@scripts/ensure-bench-tools.sh

clients:
	@scripts/ensure-clients.sh
	@scripts/ensure-app-clients.sh

clean:
	rm -rf bin .run man
