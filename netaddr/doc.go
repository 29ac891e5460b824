// Package netaddr is the one place portcullis decides whether a host is
// this machine (where plain-text HTTP, a passwordless tunnel, a pprof
// listener or a login redirect are acceptable) and how a client's
// address is written as a key (failed-login budgets, audit events).
//
// It is a leaf: standard library only, importable from every layer.
package netaddr
