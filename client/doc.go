// Package client is the user's side of portcullis, behind the CLI's
// `token` and `mysql` commands: it discovers a portal, obtains tokens
// (exchanging a cloud identity, or reading what `portcullis login` cached),
// keeps them in a 0600 cache file and refreshes them when a third of their
// life is left, and runs the mariadb/mysql client with a token without
// ever putting it on a command line.
package client
