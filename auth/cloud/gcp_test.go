package cloud_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/auth/cloud/cloudtest"
)

const gcpAudience = "https://portcullis.example.com"

func TestGCPVerify(t *testing.T) {
	fake := cloudtest.NewFakeGCP(t)
	fake.Setenv(t)
	v, err := cloud.NewGCPVerifier(t.Context(), cloud.GCPConfig{Audience: gcpAudience, JWKSURL: fake.JWKSURL})
	if err != nil {
		t.Fatalf("NewGCPVerifier: %v", err)
	}
	claim := func(name string, value any) func(*jwt.Token) {
		return func(tok *jwt.Token) { tok.Claims.(jwt.MapClaims)[name] = value }
	}
	metadataToken := func(audience string) func(t *testing.T) string {
		return func(t *testing.T) string {
			tok, err := cloud.GCPToken(t.Context(), audience)
			if err != nil {
				t.Fatalf("GCPToken: %v", err)
			}
			return tok
		}
	}
	tests := []struct {
		name   string
		token  func(t *testing.T) string
		denied string
	}{
		{name: "identity token from the metadata server", token: metadataToken(gcpAudience)},
		{
			name:  `issuer without https:// ("accounts.google.com")`,
			token: func(t *testing.T) string { return fake.Mint(t, gcpAudience, claim("iss", "accounts.google.com")) },
		},
		{
			name:   "token for another audience (replay)",
			token:  metadataToken("https://vault.example.com"),
			denied: `token audience [https://vault.example.com] does not include any of [https://portcullis.example.com]`,
		},
		{
			name:   "email not verified",
			token:  func(t *testing.T) string { return fake.Mint(t, gcpAudience, claim("email_verified", false)) },
			denied: "is not verified",
		},
		{
			name: "no email_verified claim",
			token: func(t *testing.T) string {
				return fake.Mint(t, gcpAudience, func(tok *jwt.Token) { delete(tok.Claims.(jwt.MapClaims), "email_verified") })
			},
			denied: `not verified (no "email_verified" claim)`,
		},
		{
			name: "no email",
			token: func(t *testing.T) string {
				return fake.Mint(t, gcpAudience, func(tok *jwt.Token) { delete(tok.Claims.(jwt.MapClaims), "email") })
			},
			denied: `no "email" claim`,
		},
		{
			name: "expired",
			token: func(t *testing.T) string {
				return fake.Mint(t, gcpAudience, claim("exp", time.Now().Add(-10*time.Minute).Unix()))
			},
			denied: "token expired 10m ago (Google)",
		},
		{
			name:   "wrong issuer",
			token:  func(t *testing.T) string { return fake.Mint(t, gcpAudience, claim("iss", "https://evil.example.com")) },
			denied: `token issuer "https://evil.example.com" is not trusted for Google`,
		},
		{
			name: "unknown key id",
			token: func(t *testing.T) string {
				return fake.Mint(t, gcpAudience, func(tok *jwt.Token) { tok.Header["kid"] = "not-a-google-key" })
			},
			denied: `token key id "not-a-google-key" is not in Google's key set`,
		},
		{
			name: "HS256 signed with the public key",
			token: func(t *testing.T) string {
				return fake.Mint(t, gcpAudience, func(tok *jwt.Token) { tok.Method = jwt.SigningMethodHS256 })
			},
			denied: `token algorithm "HS256" is not allowed for Google tokens: only RS256`,
		},
		{
			name: "signature of another token",
			token: func(t *testing.T) string {
				a := strings.Split(fake.Mint(t, gcpAudience, nil), ".")
				b := strings.Split(fake.Mint(t, gcpAudience, claim("email", "admin@example.com")), ".")
				return b[0] + "." + b[1] + "." + a[2]
			},
			denied: "token signature is invalid for Google",
		},
		{name: "garbage", token: func(*testing.T) string { return "garbage" }, denied: "not a JWT"},
		{name: "oversized", token: func(*testing.T) string { return strings.Repeat("a.", 9<<10) }, denied: "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t)
			id, err := v.Verify(t.Context(), tok)
			if tc.denied != "" {
				requireDenied(t, err, tc.denied, tok, tok[strings.LastIndex(tok, ".")+1:])
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Platform != "gcp" || id.Principal != cloudtest.DefaultGCPEmail {
				t.Errorf("identity = %s %q, want gcp %q", id.Platform, id.Principal, cloudtest.DefaultGCPEmail)
			}
			if id.Attributes["project_id"] != cloudtest.DefaultGCPProject || id.Attributes["project_number"] != "123456789012" {
				t.Errorf("Attributes = %v, want project %s (123456789012)", id.Attributes, cloudtest.DefaultGCPProject)
			}
			if until := time.Until(id.ExpiresAt); until < 59*time.Minute || until > time.Hour {
				t.Errorf("ExpiresAt in %v, want the token's exp, 1h", until)
			}
		})
	}
}

func TestGCPToken(t *testing.T) {
	fake := cloudtest.NewFakeGCP(t)
	tests := []struct {
		name     string
		host     string
		audience string
		errorHas string
	}{
		{name: "token", host: fake.Host, audience: gcpAudience},
		{name: "empty audience", host: fake.Host, errorHas: "the audience is empty"},
		{name: "metadata server unreachable", host: "127.0.0.1:9", audience: gcpAudience, errorHas: "metadata server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GCE_METADATA_HOST", tc.host)
			ctx, cancel := t.Context(), func() {}
			if tc.errorHas != "" {
				ctx, cancel = contextWithTimeout(t, time.Second)
			}
			defer cancel()
			tok, err := cloud.GCPToken(ctx, tc.audience)
			if tc.errorHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errorHas) {
					t.Fatalf("error = %v, want one containing %q", err, tc.errorHas)
				}
				return
			}
			if err != nil || strings.Count(tok, ".") != 2 {
				t.Fatalf("GCPToken = %.20q, %v; want a JWT", tok, err)
			}
		})
	}
}

func TestGCPKeysUnavailable(t *testing.T) {
	fake := cloudtest.NewFakeGCP(t)
	v, err := cloud.NewGCPVerifier(t.Context(), cloud.GCPConfig{Audience: gcpAudience, JWKSURL: "http://127.0.0.1:9/oauth2/v3/certs"})
	if err != nil {
		t.Fatalf("NewGCPVerifier with an unreachable JWKS URL: %v, want it to start and refuse tokens", err)
	}
	tok := fake.Mint(t, gcpAudience, nil)
	_, err = v.Verify(t.Context(), tok)
	requireDenied(t, err, "Google: signing keys unavailable (jwks_url is unreachable: connection refused", tok)
}

func TestNewGCPVerifierConfig(t *testing.T) {
	if _, err := cloud.NewGCPVerifier(t.Context(), cloud.GCPConfig{}); err == nil || !strings.Contains(err.Error(), "audience: is empty") {
		t.Fatalf("error = %v, want it to name the empty audience", err)
	}
}

// TestPlatformTokenRefusesCrit: a Google or Entra ID token with a "crit"
// header is refused by the same checker as user tokens.
func TestPlatformTokenRefusesCrit(t *testing.T) {
	crit := func(tok *jwt.Token) { tok.Header["crit"] = []string{"exp"} }
	fake := cloudtest.NewFakeGCP(t)
	g, err := cloud.NewGCPVerifier(t.Context(), cloud.GCPConfig{Audience: gcpAudience, Issuer: fake.Issuer, JWKSURL: fake.JWKSURL})
	if err != nil {
		t.Fatal(err)
	}
	tok := fake.Mint(t, gcpAudience, crit)
	_, err = g.Verify(t.Context(), tok)
	requireDenied(t, err, `token header has "crit" [exp]`, tok)
	if _, err := g.Verify(t.Context(), fake.Mint(t, gcpAudience, nil)); err != nil {
		t.Fatalf("without crit: %v", err)
	}

	const tenant = "7d3f9a41-2b6c-4e8d-9f10-000000000c71"
	entra := cloudtest.NewFakeEntra(t, tenant)
	az, err := cloud.NewAzureVerifier(t.Context(), []cloud.AzureTenant{{TenantID: tenant, Issuer: entra.Issuer, JWKSURL: entra.JWKSURL, Audience: "api://portcullis"}})
	if err != nil {
		t.Fatal(err)
	}
	tok = entra.Mint(t, "api://portcullis", crit)
	_, err = az.Verify(t.Context(), tok)
	requireDenied(t, err, `token header has "crit" [exp]`, tok)
}
