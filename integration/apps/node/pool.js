// The mysql2 recipe of the README's "Apps and connection pools": a pool
// whose every new connection logs in with the token `portcullis agent`
// keeps in a file. Run by integration/apps_test.go:
//   node pool.js HOST PORT USER TOKEN_FILE CA_FILE SECONDS MAX_AGE_MS
// It queries from 2 workers and prints one JSON line of counts.
'use strict';
const fs = require('fs');
const mysql = require('mysql2');

const [host, port, user, tokenFile, caFile, seconds, maxAgeMs] = process.argv.slice(2);

// --- recipe ---
// The proxy asks for the token in clear text (over TLS); hand it the
// token as the agent's file holds it now, at every new connection.
// Declaring caching_sha2_password as well keeps mysql2 from answering the
// proxy's greeting with a static password: the proxy then asks for clear
// text, and the plugin above answers.
const token = () => () => Buffer.from(fs.readFileSync(tokenFile, 'utf8').trim() + '\0');
const raw = mysql.createPool({
  host, port: Number(port), user,
  ssl: { ca: fs.readFileSync(caFile) }, // verifies the proxy's certificate
  authPlugins: { mysql_clear_password: token, caching_sha2_password: token },
  connectionLimit: 2, maxIdle: 2, idleTimeout: 60000,
});
// mysql2 pools have no max lifetime: retire connections older than
// maxAgeMs when they are taken (needed with end_at_token_expiry: below a
// third of the token's lifetime).
raw.on('connection', (c) => { c.bornAt = Date.now(); });
const pool = raw.promise();
async function withConnection(fn) {
  for (;;) {
    const c = await pool.getConnection();
    if (Date.now() - c.connection.bornAt > Number(maxAgeMs)) {
      c.destroy();
      continue;
    }
    try {
      return await fn(c);
    } finally {
      c.release();
    }
  }
}
// --- end of recipe ---

async function worker(end, stats) {
  while (Date.now() < end) {
    try {
      const [rows] = await withConnection((c) => c.query('SELECT CURRENT_USER() AS u'));
      stats.users[rows[0].u] = true;
    } catch (e) {
      stats.failures.push(new Date().toISOString() + ' ' + e.message);
    }
    stats.queries++;
    await new Promise((r) => setTimeout(r, 40));
  }
}

(async () => {
  const stats = { queries: 0, failures: [], users: {}, client: 'mysql2 ' + require('mysql2/package.json').version + ', node ' + process.version };
  const end = Date.now() + Number(seconds) * 1000;
  await Promise.all([worker(end, stats), worker(end, stats)]);
  await pool.end();
  stats.users = Object.keys(stats.users);
  console.log(JSON.stringify(stats));
})();
