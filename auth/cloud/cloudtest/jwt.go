package cloudtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// signingKey is one fake issuer's RSA key.
type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
	alg  string // the JWK's "alg"; empty: none, as Entra ID publishes
}

func newSigningKey(tb testing.TB, kid, alg string) signingKey {
	tb.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatalf("cloudtest: generate RSA key: %v", err)
	}
	return signingKey{kid: kid, priv: priv, alg: alg}
}

// jwks is the public JWK Set of k.
func (k signingKey) jwks() []byte {
	jwk := map[string]string{
		"kty": "RSA",
		"use": "sig",
		"kid": k.kid,
		"n":   base64.RawURLEncoding.EncodeToString(k.priv.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.priv.E)).Bytes()),
	}
	if k.alg != "" {
		jwk["alg"] = k.alg
	}
	raw, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	return raw
}

func (k signingKey) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(k.jwks())
}

// sign signs claims RS256 under k's kid, after edit (when not nil) has
// changed the token. edit may change the claims, the header (another kid)
// or the method: an HMAC method is signed with the public key's DER bytes
// as the secret (the algorithm confusion attack), "none" with no signature.
func (k signingKey) sign(tb testing.TB, claims jwt.MapClaims, edit func(*jwt.Token)) string {
	tb.Helper()
	s, err := k.trySign(claims, edit)
	if err != nil {
		tb.Fatalf("cloudtest: %v", err)
	}
	return s
}

func (k signingKey) trySign(claims jwt.MapClaims, edit func(*jwt.Token)) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = k.kid
	if edit != nil {
		edit(tok)
		if tok.Method.Alg() != "RS256" && tok.Header["alg"] == "RS256" {
			tok.Header["alg"] = tok.Method.Alg() // a new method, named in the header
		}
	}
	var key any = k.priv
	switch tok.Method.(type) {
	case *jwt.SigningMethodHMAC:
		der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
		if err != nil {
			return "", fmt.Errorf("marshal public key: %w", err)
		}
		key = der
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
	default:
		if tok.Method == jwt.SigningMethodNone {
			key = jwt.UnsafeAllowNoneSignatureType
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	const digits = "0123456789abcdef"
	out := make([]byte, 2*n)
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&0xf]
	}
	return string(out)
}
