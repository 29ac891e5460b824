#!/usr/bin/env bash
# Makes sure the app stacks of the "Apps and connection pools" recipes are
# here, for integration/apps_test.go: Debian's SQLAlchemy (over the
# python3-pymysql and python3-mysqldb drivers), HikariCP and MariaDB
# Connector/J with a JDK, and mysql2 for Node from npm into
# integration/apps/node. Debian packages and npm only.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
/usr/bin/python3 -c 'import sqlalchemy' 2>/dev/null || need+=(python3-sqlalchemy)
/usr/bin/python3 -c 'import pymysql' 2>/dev/null || need+=(python3-pymysql)
/usr/bin/python3 -c 'import MySQLdb' 2>/dev/null || need+=(python3-mysqldb)
[ -f /usr/share/java/HikariCP.jar ] || need+=(libhikaricp-java)
[ -f /usr/share/java/mariadb-java-client.jar ] || need+=(libmariadb-java)
command -v javac >/dev/null || need+=(default-jdk-headless)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing with apt-get for the app recipe tests: ${need[*]}" >&2
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v node >/dev/null || { echo "node (20 or later) is needed for the mysql2 recipe test: install Node.js" >&2; exit 1; }
if [ ! -d integration/apps/node/node_modules/mysql2 ]; then
	echo "installing mysql2 with npm into integration/apps/node" >&2
	(cd integration/apps/node && npm ci --no-audit --no-fund --loglevel=error)
fi
