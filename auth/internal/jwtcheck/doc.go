// Package jwtcheck is the one checker of JWTs that portcullis verifies:
// tokens of the issuers it trusts (auth.Verifier) and the platform tokens
// workloads exchange (auth/cloud: Google, Entra ID). It is the verifying
// side of the trust boundary only; the tokens portcullis signs are made by
// auth.TokenIssuer and pass through here like any other when presented.
//
// Check runs every step in one order, with one wording of every refusal:
// size and shape; the header (a "crit" header is refused, RFC 7515
// §4.1.11, since no extension is understood); the trusted issuer, picked
// by the caller from the unverified claims; the algorithm, against that
// issuer's allow-list (asymmetric only); the signature, with the keys of
// that issuer (package jwks); `iss`; then `aud`, `exp` (required), `nbf`
// and `iat` with 30s of leeway. Each refusal is a *Refusal whose reason
// a person can act on and never holds the token, its signature or a key.
//
// Boundary: it knows nothing of users, roles or platforms; callers read
// their own claims from the verified result.
package jwtcheck
