package auth_test

import (
	"testing"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
)

// TestVerifyCacheIsKeyedOnTheWholeToken: once a token is cached, the same
// token with another signature is still checked, and refused.
func TestVerifyCacheIsKeyedOnTheWholeToken(t *testing.T) {
	_, e, _ := testKeys(t)
	c := issuerConfig("files", fileIss)
	c.JWKSFile = writeJWKSFile(t, jwksJSON(t, e))
	v, err := auth.NewVerifier(t.Context(), []config.Issuer{c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := mint(t, e, claims(fileIss))
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	tampered := tok[:len(tok)-4] + "AAAA"
	if tampered == tok {
		tampered = tok[:len(tok)-4] + "BBBB"
	}
	if _, err := v.Verify(t.Context(), tampered); err == nil {
		t.Fatal("a token with another signature was accepted after the good one was cached")
	}
}
