package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth"
)

func TestDiscoveryAndJWKS(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	resp, err := http.Get(h.http + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if d["issuer"] != h.http || d["jwks_uri"] != h.http+"/.well-known/jwks.json" || d["token_endpoint"] != h.http+"/v1/token" {
		t.Fatalf("discovery: %v", d)
	}
	resp, err = http.Get(h.http + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age") {
		t.Fatalf("JWKS Cache-Control %q", cc)
	}
	var raw json.RawMessage
	json.NewDecoder(resp.Body).Decode(&raw)
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	// A third party verifies portcullis' tokens with the JWKS alone.
	tok, _, err := h.svc.Issuer.Issue(auth.AccessClaims{Subject: "s", Username: "u@svc"})
	if err != nil {
		t.Fatal(err)
	}
	remember(tok)
	if _, err := jwt.Parse(tok, kf.Keyfunc, jwt.WithIssuer(h.http), jwt.WithAudience("portcullis")); err != nil {
		t.Fatalf("verify with the published JWKS: %v", err)
	}
}

func TestTokenEndpointLimits(t *testing.T) {
	h := startHarness(t, harnessOpts{topYAML: "exchange: {jwt_issuers: [corp], failures_per_minute: 3, rules: [{jwt: {issuer: corp, user: any}, username: x@svc, roles: [reader]}]}"})
	post := func(form url.Values) *http.Response {
		resp, err := http.PostForm(h.http+"/v1/token", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	t.Run("a body over 64 KiB is refused", func(t *testing.T) {
		resp, err := http.Post(h.http+"/v1/token", "application/x-www-form-urlencoded", strings.NewReader("subject_token="+strings.Repeat("A", 1<<20)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("refused requests are rate-limited per address", func(t *testing.T) {
		bad := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "subject_token": {"garbage"}}
		var last *http.Response
		for range 4 {
			last = post(bad)
		}
		if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
			t.Fatalf("after the budget: status %d, Retry-After %q", last.StatusCode, last.Header.Get("Retry-After"))
		}
	})
}

func TestKeysRotateCLI(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	before, _, err := h.svc.Issuer.Issue(auth.AccessClaims{Subject: "s", Username: "sam@svc", Roles: []string{"reader"}})
	if err != nil {
		t.Fatal(err)
	}
	remember(before)
	oldKID := h.svc.Issuer.SigningKID()
	out, errOut, code := run(t, "keys", "rotate", "-c", h.dir+"/portcullis.yaml")
	if code != 0 || !strings.Contains(out, "now signing with") {
		t.Fatalf("keys rotate: %d %q %q", code, out, errOut)
	}
	if err := h.svc.Issuer.Refresh(t.Context()); err != nil { // the server does this every 30s
		t.Fatal(err)
	}
	if h.svc.Issuer.SigningKID() == oldKID {
		t.Fatal("the server still signs with the old key")
	}
	db := h.open("sam@svc", before)
	if got := queryString(t, db, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
		t.Fatalf("a token signed before the rotation: %q", got)
	}
}
