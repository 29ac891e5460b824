// Package service assembles a running portcullis from a loaded config: the
// audit log, the token verifier, the role resolver, the client-leg TLS and
// the MySQL proxy (and, as it grows, the HTTP portal). `portcullis serve`
// and the integration tests' in-process harness both start the product
// through it, so there is one wiring.
package service
