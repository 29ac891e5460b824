// Package oidc is portcullis' OpenID Connect relying party: one RP per
// configured connection. It reads the IdP's discovery document, builds
// the authorization-code request (PKCE S256, state, nonce), redeems the
// code, verifies the ID token (signature by the IdP's JWKS, issuer,
// audience, expiry, nonce; email_verified when the user name is an
// email) and renews the IdP's refresh token.
//
// Its boundary: it knows the IdP and nothing of portcullis' users,
// sessions or tokens. The portal keeps the state and nonce (sealed in a
// cookie), decides what a login grants and stores the IdP's refresh token
// encrypted; this package never logs or returns a token in an error.
package oidc
