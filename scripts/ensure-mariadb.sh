#!/usr/bin/env bash
# Makes sure a MariaDB server answers on 127.0.0.1:3306 as root with an empty
# password (the dev and test backend), installing and starting it if needed.
set -euo pipefail

ping() { mariadb-admin --protocol=tcp -h127.0.0.1 -P3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if command -v mariadb-admin >/dev/null && ping; then exit 0; fi

if [ ! -x /usr/sbin/mariadbd ] || ! command -v mariadb >/dev/null; then
  echo "MariaDB is not installed: installing mariadb-server and mariadb-client with apt-get" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client >/dev/null
fi

if ! ping; then
  echo "starting MariaDB" >&2
  as_root mkdir -p /run/mysqld
  as_root chown mysql:mysql /run/mysqld
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do
    mariadb-admin -uroot --connect-timeout=1 ping >/dev/null 2>&1 && break
    sleep 0.5
  done
fi

if ! ping; then
  # A fresh Debian install lets root in through the unix socket only:
  # allow TCP from localhost with an empty password, as the tests expect.
  as_root mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; CREATE DATABASE IF NOT EXISTS test;"
fi
ping || { echo "MariaDB does not answer on 127.0.0.1:3306 as root without a password" >&2; exit 1; }
mariadb --protocol=tcp -h127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS test"
