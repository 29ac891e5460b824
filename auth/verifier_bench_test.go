package auth_test

import (
	"testing"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
)

// benchVerifier is a verifier trusting k's issuer through a jwks_file,
// and a valid token of it.
func benchVerifier(b *testing.B, k signer) (*auth.Verifier, string) {
	b.Helper()
	c := issuerConfig("files", fileIss)
	c.JWKSFile = writeJWKSFile(b, jwksJSON(b, k))
	v, err := auth.NewVerifier(b.Context(), []config.Issuer{c}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return v, mint(b, k, claims(fileIss))
}

// benchVerify measures a cold verification (signature, claims) of a
// valid token: the cost of a token the proxy has not seen.
func benchVerify(b *testing.B, k signer) {
	v, tok := benchVerifier(b, k)
	if _, err := auth.VerifyUncached(v, b.Context(), tok); err != nil {
		b.Fatalf("Verify: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := auth.VerifyUncached(v, b.Context(), tok); err != nil {
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

// BenchmarkVerifyCached is a token presented again: found by its hash.
func BenchmarkVerifyCached(b *testing.B) {
	_, e, _ := testKeys(b)
	v, tok := benchVerifier(b, e)
	if _, err := v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}
