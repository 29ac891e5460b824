// Package exchange trades a workload's proof of identity for a portcullis
// access token (RFC 8693 token exchange): it picks the verifier by the
// subject token type (AWS, Azure, GCP, or a JWT from a configured issuer),
// matches the verified identity against the configured rules (first match
// wins), and has the token issuer sign a short-lived token for the rule's
// user name and roles. The portal calls it; it knows nothing of HTTP.
package exchange
