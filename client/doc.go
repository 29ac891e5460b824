// Package client is the user's side of portcullis, behind the CLI's
// `token` and `mysql` commands: it discovers a portal, obtains tokens
// (exchanging a cloud identity, or reading what `portcullis login` cached),
// keeps them in a 0600 cache file and refreshes them when a third of their
// life is left, and runs the mariadb/mysql client with a token without
// ever putting it on a command line.
//
// For long-running processes, Source names where tokens come from (a
// cloud or JWT-file exchange, a login, a token file) and a Keeper shares
// one token among many users, renewing it in the background at a third of
// its life left and keeping it, with backoff and a log line, while
// renewal fails. Agent (`portcullis agent`) writes a Keeper's token to a
// token file and a MySQL option file for the apps beside it; package
// client/mysqltoken hands it to go-sql-driver's connections.
package client
