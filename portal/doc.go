// Package portal is portcullis' HTTP surface: the issuer's discovery
// document and JWKS, the token exchange endpoint and health checks (and,
// as it grows, SSO, SCIM and the admin API). It is thin: the decisions are
// made in auth and rbac; portal parses requests, limits them, writes the
// answers and the audit lines. It knows nothing of the MySQL wire.
package portal
