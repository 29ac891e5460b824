package config

// SSO configures browser login through the company IdP (OIDC, SAML) and
// the tokens portcullis issues for it.
type SSO struct{}
