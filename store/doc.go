// Package store is portcullis's persistence: the SCIM directory (users and
// groups), teams, the token issuer's signing keys, refresh tokens and
// one-time codes, SCIM bearer tokens, the event log the proxy nodes poll to
// kill sessions after an offboarding, the ephemeral backend users a
// sweeper removes after a crash, and the client-leg CA and certificate the
// proxy makes when none is configured (their keys sealed by the caller).
//
// Boundary: store speaks SQL to its own database and nothing else. It knows
// no HTTP, no MySQL wire protocol, no SCIM filter syntax, no token format:
// it never sees a token, only the SHA-256 the caller computed, and it keeps
// private keys as the (encrypted) bytes the caller gives. Callers get no
// SQL: lists are paged with ListOptions, lookups go by id, name or hash.
//
// There is one interface, Store, in the style of dex's storage: every
// method takes a context first and reports a missing record with
// ErrNotFound, a taken name or a second use of a one-time record with
// ErrConflict, a stale optimistic update with ErrVersionMismatch and a
// value it cannot keep with ErrInvalid, each wrapped with %w.
//
// One implementation, *DB, serves both engines; a small dialect holds what
// differs (error codes, an upsert, the migration lock):
//
//   - SQLite, the embedded default: OpenSQLite(ctx, path), pure Go
//     (modernc.org/sqlite), WAL journal, foreign keys on, a busy timeout,
//     and transactions that take the write lock at BEGIN. For one node.
//   - MySQL or MariaDB: OpenMySQL(ctx, dsn), for several proxy nodes
//     sharing one store.
//
// Open(ctx, Config) picks one by Config.Engine. Both migrate at open: the
// SQL in migrations/<engine>/NNNN_name.sql (embedded), one transaction per
// migration, recorded in the schema_version table. A database migrated by
// a newer binary is refused with ErrSchemaTooNew rather than misread.
//
// Times are stored as Unix microseconds and come back in UTC. Unique names
// (user names, group display names) are compared case-insensitively
// through a lowercased key column. The conformance suite in store/storetest
// holds both engines to the same behaviour.
package store
