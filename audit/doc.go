// Package audit writes the audit stream: one JSON line per decision (a
// connection granted or refused, a session's end). It is separate from the
// operational log so it can be shipped and kept on its own terms. Events
// carry identities and reasons, never a token, password or key.
package audit
