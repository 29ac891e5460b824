package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"cloud.google.com/go/compute/metadata"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/internal/jwks"
	"github.com/portcullisdb/portcullis/auth/internal/jwtcheck"
	"github.com/portcullisdb/portcullis/auth/internal/safe"
)

// Google's identity token issuer and keys.
const (
	DefaultGoogleIssuer = "https://accounts.google.com"
	DefaultGoogleJWKS   = "https://www.googleapis.com/oauth2/v3/certs"
)

// gcpAlgs: Google signs identity tokens with RS256 only.
var gcpAlgs = []string{"RS256"}

// GCPConfig trusts Google-signed identity tokens for one audience. Its
// fields match config.ExchangeGCP, so one converts to the other.
type GCPConfig struct {
	// Audience is the aud the tokens must carry: what workloads pass to
	// GCPToken. A token for another audience is refused, so a token a
	// workload gave some other service cannot be replayed here. Required.
	Audience string
	Issuer   string // default https://accounts.google.com; "accounts.google.com" is accepted too
	JWKSURL  string // default https://www.googleapis.com/oauth2/v3/certs
}

// GCPVerifier checks TokenTypeGCP tokens: identity tokens the metadata
// server mints for a service account. It is safe for concurrent use.
type GCPVerifier struct {
	google *jwtcheck.VerifiedIssuer
}

// NewGCPVerifier builds a verifier for c. The keys are fetched now and kept
// fresh until ctx ends: every hour, and when a token names a key id not in
// the set (at most once per 5 minutes). A JWKS URL that cannot be fetched
// now does not fail NewGCPVerifier: it is logged and retried, and tokens are refused
// with "signing keys unavailable" until a fetch works. Cancel ctx when the
// verifier is no longer used.
func NewGCPVerifier(ctx context.Context, c GCPConfig) (*GCPVerifier, error) {
	if c.Audience == "" {
		return nil, errors.New("invalid gcp configuration:\n  audience: is empty: set the audience workloads request identity tokens for")
	}
	if c.Issuer == "" {
		c.Issuer = DefaultGoogleIssuer
	}
	if c.JWKSURL == "" {
		c.JWKSURL = DefaultGoogleJWKS
	}
	issuers := []string{c.Issuer}
	if bare, ok := strings.CutPrefix(c.Issuer, "https://"); ok {
		issuers = append(issuers, bare) // Google writes both forms
	}
	keys, err := jwks.Fetch(ctx, "Google", c.JWKSURL, 0)
	if err != nil {
		return nil, err
	}
	return &GCPVerifier{google: newPlatformIssuer("Google", issuers, c.Audience, gcpAlgs, keys)}, nil
}

// Verify checks a Google identity token and returns the identity in it:
// RS256 with Google's keys, `iss`, `aud`, `exp`, then `email_verified` must
// be true and the Principal is `email`. Refusals are *auth.DeniedError.
func (v *GCPVerifier) Verify(ctx context.Context, subjectToken string) (Identity, error) {
	claims, err := verifyPlatformJWT(ctx, subjectToken, func(jwt.MapClaims) (*jwtcheck.VerifiedIssuer, error) { return v.google, nil })
	if err != nil {
		return Identity{}, err
	}
	email, err := stringClaim(claims, "email")
	if err != nil {
		return Identity{}, err
	}
	if email == "" {
		return Identity{}, auth.Denied(`Google identity token has no "email" claim: request it from the metadata server with format=full`)
	}
	switch ev := claims["email_verified"].(type) {
	case bool:
		if !ev {
			return Identity{}, auth.Denied("Google identity token's email %q is not verified (email_verified is false)", safe.Printable(email))
		}
	case string:
		if ev != "true" {
			return Identity{}, auth.Denied("Google identity token's email %q is not verified (email_verified is %q)", safe.Printable(email), safe.Printable(ev))
		}
	case nil:
		return Identity{}, auth.Denied(`Google identity token's email %q is not verified (no "email_verified" claim)`, safe.Printable(email))
	default:
		return Identity{}, auth.Denied(`Google identity token's email %q is not verified ("email_verified" is not a boolean)`, safe.Printable(email))
	}
	exp, _ := claims.GetExpirationTime() // present: checked by the validator
	id := Identity{
		Platform:   PlatformGCP,
		Principal:  email,
		Attributes: map[string]string{"email": email},
		ExpiresAt:  exp.Time,
	}
	parts := &GCPParts{Email: strings.ToLower(email)}
	parts.AccountID, parts.Project = ParseGCPEmail(email)
	for _, c := range []struct {
		k string
		p *string
	}{{"sub", &parts.Sub}, {"azp", &parts.Azp}, {"hd", &parts.HD}} {
		s, err := stringClaim(claims, c.k)
		if err != nil {
			return Identity{}, err
		}
		*c.p = s
		setAttr(id.Attributes, c.k, s)
	}
	if parts.Sub == "" {
		return Identity{}, auth.Denied(`Google identity token has no "sub" claim: it names no account`)
	}
	id.GCP = parts
	if g, ok := claims["google"].(map[string]any); ok {
		if ce, ok := g["compute_engine"].(map[string]any); ok {
			for _, k := range []string{"project_id", "project_number", "zone", "instance_id", "instance_name"} {
				switch val := ce[k].(type) {
				case string:
					setAttr(id.Attributes, k, val)
				case float64:
					setAttr(id.Attributes, k, fmt.Sprintf("%.0f", val))
				}
			}
		}
	}
	return id, nil
}

// GCPToken asks the metadata server for an identity token of the default
// service account for audience, in the full format (with the instance's
// project and zone). The metadata server is the one at GCE_METADATA_HOST
// when that is set, else 169.254.169.254 (GCE, GKE, Cloud Run, Functions).
func GCPToken(ctx context.Context, audience string) (string, error) {
	if audience == "" {
		return "", errors.New("gcp identity token: the audience is empty: pass the audience the portal expects")
	}
	suffix := "instance/service-accounts/default/identity?audience=" + url.QueryEscape(audience) + "&format=full"
	tok, err := metadata.GetWithContext(ctx, suffix)
	if err != nil {
		return "", fmt.Errorf("gcp identity token from the metadata server: %w", err)
	}
	tok = strings.TrimSpace(tok)
	if strings.Count(tok, ".") != 2 {
		return "", errors.New("gcp identity token from the metadata server: the answer is not a JWT")
	}
	return tok, nil
}
