#!/usr/bin/env bash
# Makes sure bin/golangci-lint is the pinned version, installing it through
# the Go module proxy (go install, an exact version: no @latest) when it is
# missing or another version. Prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
version=v2.15.0
bin=bin/golangci-lint
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "version ${version#v} "; then
	echo "$bin"
	exit 0
fi
echo "installing golangci-lint $version into bin/ (go install, once)" >&2
mkdir -p bin
GOBIN="$(pwd)/bin" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
"$bin" --version >&2
echo "$bin"
