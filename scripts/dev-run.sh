#!/usr/bin/env bash
# `make run`: prepares .run/ (config, backend accounts, dev signing key, a
# token for alice@example.com), prints how to connect, then runs portcullis
# in the foreground.
#
# The MariaDB objects carry a suffix made from this checkout's path
# (pc_reader_<id>, pc_writer_<id>, portcullis_demo_<id>), so two checkouts
# sharing one MariaDB never touch each other's accounts. Passwords are made
# once and kept in .run/secrets; .run/portcullis.yaml is written only when
# missing, so edits to it survive the next `make run`.
#
#   scripts/dev-run.sh            prepare what is missing, then serve
#   scripts/dev-run.sh --reset    drop this checkout's objects and .run/, then as above (`make run-reset`)
#   scripts/dev-run.sh --drop     drop this checkout's objects and .run/, and stop
#   PORTCULLIS_DEV_NO_SERVE=1     prepare and print, but do not serve (tests)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/portcullis
run=.run
id=$(pwd -P | sha256sum | cut -c1-8)
reader=pc_reader_$id writer=pc_writer_$id db=portcullis_demo_$id
mariadb_root() { mariadb --protocol=tcp -h127.0.0.1 -P3306 -uroot "$@"; }

drop() {
  mariadb_root -e "DROP USER IF EXISTS '$reader'@'%'; DROP USER IF EXISTS '$writer'@'%'; DROP DATABASE IF EXISTS $db;"
  rm -rf "$run"
  echo "dropped $reader, $writer and $db, and removed $run/"
}
case "${1:-}" in
  --drop) drop; exit 0 ;;
  --reset) drop ;;
  "") ;;
  *) echo "usage: $0 [--reset|--drop]" >&2; exit 2 ;;
esac

mkdir -p "$run/secrets"
chmod 700 "$run" "$run/secrets"
if [ -e "$run/portcullis.yaml" ]; then
  echo "keeping $run/portcullis.yaml (your edits stay; \`make run-reset\` starts fresh)"
else
  sed -e "s/\bpc_reader\b/$reader/g" -e "s/\bpc_writer\b/$writer/g" examples/dev/portcullis.yaml > "$run/portcullis.yaml"
fi

sql="CREATE DATABASE IF NOT EXISTS $db;
CREATE TABLE IF NOT EXISTS $db.notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(200));
INSERT INTO $db.notes (body) SELECT 'hello from the database' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM $db.notes);"
for user in "$reader" "$writer"; do
  if [ ! -s "$run/secrets/$user" ]; then # made once, then reused
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$run/secrets/$user")
  fi
  pw=$(cat "$run/secrets/$user")
  sql="$sql
CREATE USER IF NOT EXISTS '$user'@'%' IDENTIFIED BY '$pw';
ALTER USER '$user'@'%' IDENTIFIED BY '$pw';"
done
sql="$sql
GRANT SELECT ON $db.* TO '$reader'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON $db.* TO '$writer'@'%';"
mariadb_root -e "$sql"

"$bin" keys init -c "$run/portcullis.yaml" --jwks-out "$run/dev-jwks.json"
rm -f "$run/alice.token" "$run/alice.cnf"
(umask 077; "$bin" token mint -c "$run/portcullis.yaml" --email alice@example.com --groups engineering --roles writer --ttl 1h > "$run/alice.token")
(umask 077; printf '[client]\nhost=127.0.0.1\nport=4000\nuser=alice@example.com\npassword=%s\nssl\n' "$(cat "$run/alice.token")" > "$run/alice.cnf")

cat <<TXT

portcullis is starting on 127.0.0.1:4000 in front of MariaDB on 127.0.0.1:3306
(this checkout's accounts: $reader, $writer; database $db).
A dev token for alice@example.com (roles: reader via group engineering, writer via the roles claim; valid 1h)
is in $run/alice.token. In another terminal, paste:

  mariadb -h 127.0.0.1 -P 4000 --ssl -u alice@example.com -p"\$(cat $run/alice.token)" -e 'SELECT CURRENT_USER(), body FROM $db.notes'

and as the writer role (identity/role):

  mariadb -h 127.0.0.1 -P 4000 --ssl -u alice@example.com/writer -p"\$(cat $run/alice.token)" $db

$run/alice.cnf holds the same settings (mode 0600), which keeps the token off the command line:
  mariadb --defaults-extra-file=$run/alice.cnf

Stop portcullis with Ctrl-C. Audit events: $run/audit.log
TXT
if [ -n "${PORTCULLIS_DEV_NO_SERVE:-}" ]; then
  exit 0
fi
exec "$bin" serve -c "$run/portcullis.yaml"
