#!/usr/bin/env bash
# Makes sure the tools `make bench` drives are installed from Debian:
# sysbench (its oltp_read_only workload, direct and through portcullis) and
# haproxy (a plain TCP relay, the reference for what any proxy costs here).
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for tool in sysbench haproxy; do
	command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "not installed: ${missing[*]}: installing with apt-get (for make bench)" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for tool in "${missing[@]}"; do
	command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "apt-get installed $tool, but it is not on PATH or in /usr/sbin" >&2; exit 1; }
done
