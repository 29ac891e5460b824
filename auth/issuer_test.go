package auth_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/store"
)

func newIssuer(t *testing.T, st *store.DB, kek string) *auth.TokenIssuer {
	t.Helper()
	ti, err := auth.NewTokenIssuer(t.Context(), auth.IssuerConfig{
		URL: "https://portcullis.test", Audience: "portcullis", KEK: []byte(kek), MaxTTL: time.Hour,
	}, st)
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

func openStore(t *testing.T) *store.DB {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestTokenIssuer(t *testing.T) {
	st := openStore(t)
	ti := newIssuer(t, st, "a key-encryption key of 32 bytes!")
	v, err := auth.NewVerifier(t.Context(), nil, ti)
	if err != nil {
		t.Fatal(err)
	}
	tok, exp, err := ti.Issue(auth.AccessClaims{Subject: "arn:aws:iam::1:role/etl", Username: "etl@svc", Roles: []string{"etl"}, AuthMethod: auth.MethodAWS, TTL: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < 14*time.Minute || d > 15*time.Minute {
		t.Fatalf("expiry in %v, want 15m", d)
	}
	id, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.Issuer != auth.OwnIssuerName || id.Username != "etl@svc" || id.Subject != "arn:aws:iam::1:role/etl" || len(id.Roles) != 1 {
		t.Fatalf("identity %+v", id)
	}

	t.Run("claims", func(t *testing.T) {
		claims := jwt.MapClaims{}
		parsed, _, err := jwt.NewParser().ParseUnverified(tok, claims)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "username", "roles", "auth_method"} {
			if _, ok := claims[c]; !ok {
				t.Errorf("claim %s missing", c)
			}
		}
		if parsed.Header["kid"] != ti.SigningKID() || parsed.Method.Alg() != "ES256" {
			t.Errorf("header %v", parsed.Header)
		}
	})
	t.Run("third party verifies with the JWKS alone", func(t *testing.T) {
		kf, err := keyfunc.NewJWKSetJSON(ti.JWKS())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jwt.Parse(tok, kf.Keyfunc, jwt.WithAudience("portcullis"), jwt.WithIssuer("https://portcullis.test")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("TTL is capped at the maximum", func(t *testing.T) {
		_, exp, _ := ti.Issue(auth.AccessClaims{Subject: "s", Username: "u", TTL: 48 * time.Hour})
		if time.Until(exp) > time.Hour {
			t.Fatalf("expiry %v exceeds MaxTTL", time.Until(exp))
		}
	})
	t.Run("rotation keeps old tokens valid and signs with the new kid", func(t *testing.T) {
		oldKID := ti.SigningKID()
		newKID, err := ti.Rotate(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if newKID == oldKID || ti.SigningKID() != newKID {
			t.Fatalf("kid %s -> %s (signing %s)", oldKID, newKID, ti.SigningKID())
		}
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Fatalf("a token signed before the rotation: %v", err)
		}
		fresh, _, _ := ti.Issue(auth.AccessClaims{Subject: "s", Username: "u"})
		p, _, _ := jwt.NewParser().ParseUnverified(fresh, jwt.MapClaims{})
		if p.Header["kid"] != newKID {
			t.Fatalf("new token kid %v, want %s", p.Header["kid"], newKID)
		}
		if !strings.Contains(string(ti.JWKS()), oldKID) || !strings.Contains(string(ti.JWKS()), newKID) {
			t.Fatal("the JWKS must publish both keys until the old one's tokens expire")
		}
	})
	t.Run("another node sharing the store signs with the same key", func(t *testing.T) {
		other := newIssuer(t, st, "a key-encryption key of 32 bytes!")
		if other.SigningKID() != ti.SigningKID() {
			t.Fatalf("node B signs with %s, node A with %s", other.SigningKID(), ti.SigningKID())
		}
	})
	t.Run("a wrong key-encryption key is refused clearly", func(t *testing.T) {
		_, err := auth.NewTokenIssuer(t.Context(), auth.IssuerConfig{URL: "https://portcullis.test", Audience: "portcullis", KEK: []byte("not the key the store was made with")}, st)
		if err == nil || !strings.Contains(err.Error(), "key-encryption key") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestTokenIssuerRetiredKeyExpires(t *testing.T) {
	st := openStore(t)
	ti := newIssuer(t, st, "another key-encryption key here!")
	old := ti.SigningKID()
	if _, err := ti.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Pretend the publish window is over.
	if err := st.RetireSigningKey(context.Background(), old, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := ti.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := ti.PublicKey(old); ok {
		t.Fatal("a key past its publish window is still trusted")
	}
	if _, err := st.ListSigningKeys(t.Context()); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
}
