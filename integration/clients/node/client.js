// One connection through portcullis with Node's mysql2, for the client
// matrix in integration/clients_test.go. Settings come from the environment
// (see ../python/client.py); prints the query's first value, or
// "ERROR <code>: <message>" on stderr and exits 1.
'use strict';
const fs = require('fs');
const mysql = require('mysql2');

const env = (name) => process.env[name] || '';
let ssl;
if (env('PC_TLS') === 'verify') {
  ssl = { ca: fs.readFileSync(env('PC_CA')) }; // checks the chain and the host name
} else if (env('PC_TLS') === 'skip') {
  ssl = { rejectUnauthorized: false };
}
const conn = mysql.createConnection({
  host: env('PC_HOST'),
  port: Number(env('PC_PORT')),
  user: env('PC_USER'),
  password: env('PC_PASSWORD'),
  database: env('PC_DB') || undefined,
  ssl,
  connectTimeout: 10000,
});
conn.query(env('PC_QUERY'), (err, rows, fields) => {
  if (err) {
    process.stderr.write(`ERROR ${err.errno}: ${err.sqlMessage || err.message}\n`);
    process.exit(1);
  }
  console.log(rows[0][fields[0].name]);
  conn.end();
});
