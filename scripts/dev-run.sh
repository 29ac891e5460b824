#!/usr/bin/env bash
# `make run`: prepares .run/ (config, backend accounts with fresh passwords,
# dev signing key, a token for alice@example.com), prints how to connect,
# then runs portcullis in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/portcullis
run=.run
mkdir -p "$run/secrets"
chmod 700 "$run" "$run/secrets"
cp examples/dev/portcullis.yaml "$run/portcullis.yaml"

sql="CREATE DATABASE IF NOT EXISTS portcullis_demo;
CREATE TABLE IF NOT EXISTS portcullis_demo.notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(200));
INSERT INTO portcullis_demo.notes (body) SELECT 'hello from the database' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM portcullis_demo.notes);"
for user in pc_reader pc_writer; do
  pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  (umask 077; printf '%s' "$pw" > "$run/secrets/$user")
  sql="$sql
CREATE USER IF NOT EXISTS '$user'@'%' IDENTIFIED BY '$pw';
ALTER USER '$user'@'%' IDENTIFIED BY '$pw';"
done
sql="$sql
GRANT SELECT ON portcullis_demo.* TO 'pc_reader'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON portcullis_demo.* TO 'pc_writer'@'%';"
mariadb --protocol=tcp -h127.0.0.1 -P3306 -uroot -e "$sql"

"$bin" keys init -c "$run/portcullis.yaml" --jwks-out "$run/dev-jwks.json"
rm -f "$run/alice.token" "$run/alice.cnf"
(umask 077; "$bin" token mint -c "$run/portcullis.yaml" --email alice@example.com --groups engineering --roles writer --ttl 1h > "$run/alice.token")
# The CA the proxy's certificate is signed by (made in the store once):
# clients verify the proxy with it.
"$bin" cert -c "$run/portcullis.yaml" > "$run/ca.pem" 2>/dev/null
(umask 077; printf '[client]\nhost=127.0.0.1\nport=4000\nuser=alice@example.com\npassword=%s\nssl-ca=%s\nssl-verify-server-cert\n' "$(cat "$run/alice.token")" "$PWD/$run/ca.pem" > "$run/alice.cnf")

cat <<TXT

portcullis is starting on 127.0.0.1:4000 in front of MariaDB on 127.0.0.1:3306.
A dev token for alice@example.com (roles: reader via group engineering, writer via the roles claim; valid 1h)
is in $run/alice.token. In another terminal, paste:

  mariadb -h 127.0.0.1 -P 4000 --ssl-ca=$run/ca.pem --ssl-verify-server-cert -u alice@example.com -p"\$(cat $run/alice.token)" -e 'SELECT CURRENT_USER(), body FROM portcullis_demo.notes'

and as the writer role (identity/role):

  mariadb -h 127.0.0.1 -P 4000 --ssl-ca=$run/ca.pem --ssl-verify-server-cert -u alice@example.com/writer -p"\$(cat $run/alice.token)" portcullis_demo

$run/ca.pem is the CA the proxy's certificate is signed by (\`portcullis cert\`, or GET /v1/ca.pem on the portal):
the commands above verify the proxy with it. $run/alice.cnf holds the same settings (mode 0600), which keeps
the token off the command line:
  mariadb --defaults-extra-file=$run/alice.cnf

Stop portcullis with Ctrl-C. Audit events: $run/audit.log
TXT
exec "$bin" serve -c "$run/portcullis.yaml"
