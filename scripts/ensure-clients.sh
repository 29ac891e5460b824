#!/usr/bin/env bash
# Makes sure the MySQL clients the integration tests drive are installed:
# from Debian the mariadb CLI, PyMySQL, mysqlclient, MariaDB Connector/J with
# a JDK to compile its test program, and sysbench; from npm, Node's mysql2
# (pinned by integration/clients/node/package-lock.json).
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
here="$(cd "$(dirname "$0")/.." && pwd)"

missing=()
command -v mariadb >/dev/null || missing+=(mariadb-client)
command -v sysbench >/dev/null || missing+=(sysbench)
/usr/bin/python3 -c 'import pymysql' 2>/dev/null || missing+=(python3-pymysql)
/usr/bin/python3 -c 'import MySQLdb' 2>/dev/null || missing+=(python3-mysqldb)
[ -f /usr/share/java/mariadb-java-client.jar ] || missing+=(libmariadb-java)
command -v javac >/dev/null || missing+=(default-jdk-headless)
command -v npm >/dev/null || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
	echo "not installed: ${missing[*]}: installing with apt-get (for the client tests)" >&2
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_dir="$here/integration/clients/node"
if [ ! -d "$node_dir/node_modules/mysql2" ] || [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
	echo "installing mysql2 for the client tests (npm ci in integration/clients/node)" >&2
	(cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
