#!/usr/bin/env bash
# Makes sure Debian's sysbench is installed: `make bench` runs its
# oltp_read_only workload directly against MariaDB and through portcullis.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if command -v sysbench >/dev/null; then exit 0; fi

echo "sysbench is not installed: installing it with apt-get (for make bench)" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sysbench >/dev/null
command -v sysbench >/dev/null || { echo "apt-get installed sysbench, but it is not on PATH" >&2; exit 1; }
