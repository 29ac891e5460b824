package auth_test

import (
	"testing"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
)

// benchVerify measures Verify of a valid token whose issuer's keys come
// from a jwks_file: the per-connection cost of token auth in the proxy.
func benchVerify(b *testing.B, k signer) {
	b.Helper()
	c := issuerConfig("files", fileIss)
	c.JWKSFile = writeJWKSFile(b, jwksJSON(b, k))
	v, err := auth.NewVerifier(b.Context(), []config.Issuer{c}, nil)
	if err != nil {
		b.Fatal(err)
	}
	tok := mint(b, k, claims(fileIss))
	if _, err := v.Verify(b.Context(), tok); err != nil {
		b.Fatalf("Verify: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) {
	_, e, _ := testKeys(b)
	benchVerify(b, e)
}

func BenchmarkVerifyRS256(b *testing.B) {
	r, _, _ := testKeys(b)
	benchVerify(b, r)
}
