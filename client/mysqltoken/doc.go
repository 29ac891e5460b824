// Package mysqltoken gives a go-sql-driver/mysql connection pool a fresh
// portcullis token for every new connection, so an app keeps working for
// days while each token lives minutes.
//
// A Tokens shares one token among every connection of a pool (one
// exchange per renewal, not one per connection) and renews it from a
// client.Source (a cloud or JWT workload exchange, a person's login, or
// the file `portcullis agent` keeps) when a third of its life is left,
// in the background, so a connection never waits for the portal while a
// valid token is at hand. When renewal fails the current token is used
// until it expires, with a warning in the log, and renewal is retried
// with backoff.
//
// Two ways in:
//
//   - NewConnector (recommended) returns a driver.Connector for sql.OpenDB.
//     Its connections also retire themselves, before database/sql hands them
//     out again, once their token is about to expire: a role with
//     end_at_token_expiry then never ends a session under a query, and
//     no pool max-lifetime needs tuning.
//   - BeforeConnect plugs into a mysql.Config you build yourself
//     (cfg.Apply(mysql.BeforeConnect(t.BeforeConnect))). Sessions then
//     outlive their tokens unless the role has end_at_token_expiry: with
//     it, set db.SetConnMaxLifetime below a third of the token lifetime.
//
// The token goes as a clear-text password (mysql_clear_password), so
// both refuse a config without TLS, as the proxy would.
//
// Boundary: mysqltoken knows go-sql-driver and database/sql/driver;
// tokens come from package client, which knows the portal.
package mysqltoken
