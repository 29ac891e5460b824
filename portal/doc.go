// Package portal is portcullis' HTTP surface: the issuer's discovery
// document and JWKS, the token endpoints (exchange, SSO codes and
// refresh), SSO through OIDC and SAML, SCIM, the admin API, and the web
// pages: local login with MFA, /account and the admin console, which
// also turns IdP connections on and off (sso_enable.go). It is thin: the
// decisions are made in auth and rbac; portal parses requests, limits
// them, writes the answers and the audit lines. It knows nothing of the
// MySQL wire.
package portal
