// Package local hashes and checks the passwords of local accounts
// (argon2id, a random salt per hash, constant-time comparison) and keeps
// the per-account and per-address failure budgets that lock an account
// out for a while after repeated wrong passwords. It stores nothing: the
// caller keeps the encoded hash.
package local
