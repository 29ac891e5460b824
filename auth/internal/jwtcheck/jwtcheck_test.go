package jwtcheck_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth/internal/jwtcheck"
)

// TestCheck: the steps in their order, each refusal a *Refusal.
func TestCheck(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A symmetric algorithm in the list is dropped: no issuer ever gets one.
	is := jwtcheck.NewVerifiedIssuer("issuer test", []string{"https://iss.test"}, []string{"aud"}, []string{"HS256", "ES256"}, true,
		func(context.Context, *jwt.Token) (any, error) { return &key.PublicKey, nil })
	if len(is.Algs) != 1 || is.Algs[0] != "ES256" {
		t.Fatalf("algs %v, want [ES256]", is.Algs)
	}
	pick := func(jwt.MapClaims) (*jwtcheck.VerifiedIssuer, error) { return is, nil }
	now := time.Now()
	good := jwt.MapClaims{"iss": "https://iss.test", "aud": "aud", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	sign := func(header map[string]any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		tok.Header["kid"] = "k"
		for k, v := range header {
			if v == nil {
				delete(tok.Header, k)
				continue
			}
			tok.Header[k] = v
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, good).SignedString([]byte("secret"))
	shape := jwtcheck.Shape{MaxBytes: 4096, Empty: "empty"}
	tests := []struct {
		name, token, want string
	}{
		{"good", sign(nil, good), ""},
		{"empty", "", "empty"},
		{"too large", strings.Repeat("a", 5000), "token too large"},
		{"crit", sign(map[string]any{"crit": []string{"exp"}}, good), `token header has "crit" [exp]`},
		{"symmetric", hs, `token algorithm "HS256" is not allowed for issuer test tokens: only ES256`},
		{"no kid where the issuer names its keys", sign(map[string]any{"kid": nil}, good), `no "kid" header`},
		{"wrong iss", sign(nil, jwt.MapClaims{"iss": "x", "aud": "aud", "exp": now.Add(time.Minute).Unix()}), `token issuer "x" is not trusted for issuer test`},
		{"expired", sign(nil, jwt.MapClaims{"iss": "https://iss.test", "aud": "aud", "exp": now.Add(-time.Hour).Unix()}), "token expired 1h ago (issuer test)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := jwtcheck.Check(t.Context(), tt.token, shape, pick)
			var r *jwtcheck.Refusal
			switch {
			case tt.want == "" && tt.name == "good" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (!errors.As(err, &r) || !strings.Contains(r.Reason, tt.want)):
				t.Fatalf("got %v, want a refusal containing %q", err, tt.want)
			}
		})
	}
}
