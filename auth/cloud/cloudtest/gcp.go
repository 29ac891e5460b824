package cloudtest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults of FakeGCP.
const (
	DefaultGCPEmail   = "workload@portcullis-test.iam.gserviceaccount.com"
	DefaultGCPProject = "portcullis-test"
	GoogleIssuer      = "https://accounts.google.com"
)

// FakeGCP is a loopback GCE metadata server that mints RS256 identity
// tokens for one service account, plus the Google issuer's JWKS endpoint
// that verifies them. Tokens carry Google's real issuer
// (https://accounts.google.com); only the keys are the fake's.
//
// Point the metadata client at it with GCE_METADATA_HOST=Host (Setenv does).
// Like the real server it answers
// /computeMetadata/v1/instance/service-accounts/default/identity?audience=...[&format=full]
// and .../default/email only with the header Metadata-Flavor: Google.
type FakeGCP struct {
	// Host is host:port for GCE_METADATA_HOST.
	Host string
	// Issuer is the `iss` of minted tokens, GoogleIssuer.
	Issuer string
	// JWKSURL serves the public keys of minted tokens.
	JWKSURL string
	// Email is the service account's email. Change it only before the
	// first token request.
	Email string

	key signingKey
}

// NewFakeGCP starts a fake metadata server and Google JWKS endpoint.
func NewFakeGCP(tb testing.TB) *FakeGCP {
	tb.Helper()
	f := &FakeGCP{
		Issuer: GoogleIssuer,
		Email:  DefaultGCPEmail,
		key:    newSigningKey(tb, randomHex(20), "RS256"),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/v3/certs", f.key.serveJWKS)
	mux.HandleFunc("GET /computeMetadata/v1/instance/service-accounts/default/identity", f.metadata(f.serveIdentity))
	mux.HandleFunc("GET /computeMetadata/v1/instance/service-accounts/default/email", f.metadata(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(f.Email))
	}))
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	f.Host = strings.TrimPrefix(srv.URL, "http://")
	f.JWKSURL = srv.URL + "/oauth2/v3/certs"
	return f
}

// Setenv points the metadata client at the fake for the rest of the test.
func (f *FakeGCP) Setenv(t testing.TB) {
	t.Setenv("GCE_METADATA_HOST", f.Host)
}

// Mint mints an identity token for audience as the metadata server would
// (format=full), after edit (when not nil) has changed it: the claims
// (tok.Claims.(jwt.MapClaims)), the header (another kid) or the method.
func (f *FakeGCP) Mint(tb testing.TB, audience string, edit func(*jwt.Token)) string {
	tb.Helper()
	return f.key.sign(tb, f.claims(audience, true), edit)
}

func (f *FakeGCP) claims(audience string, full bool) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss":            f.Issuer,
		"aud":            audience,
		"azp":            "110000000000000000001",
		"sub":            "110000000000000000001",
		"email":          f.Email,
		"email_verified": true,
		"iat":            now.Unix(),
		"exp":            now.Add(time.Hour).Unix(),
	}
	if full {
		c["google"] = map[string]any{"compute_engine": map[string]any{
			"project_id":     DefaultGCPProject,
			"project_number": 123456789012,
			"zone":           "europe-west1-b",
			"instance_id":    "4242424242424242424",
			"instance_name":  "portcullis-test-vm",
		}}
	}
	return c
}

// metadata refuses requests without Metadata-Flavor: Google, as the real
// server does, and marks answers as Google's.
func (f *FakeGCP) metadata(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Metadata-Flavor", "Google")
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "Missing required header \"Metadata-Flavor\": \"Google\"", http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

func (f *FakeGCP) serveIdentity(w http.ResponseWriter, r *http.Request) {
	audience := r.URL.Query().Get("audience")
	if audience == "" {
		http.Error(w, "non-empty audience parameter required", http.StatusBadRequest)
		return
	}
	tok, err := f.key.trySign(f.claims(audience, r.URL.Query().Get("format") == "full"), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8") // what the real server says
	_, _ = w.Write([]byte(tok))
}
