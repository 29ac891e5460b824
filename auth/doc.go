// Package auth turns a bearer token into an Identity, and runs portcullis'
// own development issuer.
//
// The Verifier trusts a fixed set of issuers, each named in config. It picks
// the issuer by the token's unverified `iss`, fetches that issuer's keys (a
// JWKS file read once, or a JWKS URL refreshed in the background and on an
// unknown key id, rate-limited; package auth/internal/jwks), allows only
// asymmetric algorithms (RS*, PS*, ES256, ES384, EdDSA), refuses a "crit"
// header, and checks iss, aud, exp, nbf and iat: all of that is the one JWT
// checker, auth/internal/jwtcheck, which auth/cloud uses for the platforms'
// tokens too. Then the Verifier checks the issuer's maximum token lifetime
// and reads the username, groups and roles claims. Names keep the two sides
// of the trust boundary apart: verifiedIssuer (and config.Issuer) are
// issuers whose tokens we check; TokenIssuer (config.OwnIssuer) is the one
// we sign as. The DevIssuer signs ES256 tokens for `make run` and tests with a
// key from `portcullis keys init`; the Verifier trusts it under the name
// "dev" without any HTTP.
//
// Every refusal is a *DeniedError whose Reason a person can act on
// ("token expired 3m ago"). Reasons and errors never contain a token, a
// signature or key bytes, so they are safe to send to a MySQL client and to
// write to logs.
//
// Boundary: auth knows nothing of the MySQL wire or of HTTP routes; it never
// imports proxy or portal. They use it through small interfaces of their own.
package auth
