package jwks_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth/internal/jwks"
)

type key struct {
	kid  string
	priv *ecdsa.PrivateKey
	use  jwkset.USE
}

func newKey(t *testing.T, kid string) key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key{kid: kid, priv: priv, use: jwkset.UseSig}
}

// set is the public JWK Set of keys.
func set(t *testing.T, keys ...key) []byte {
	t.Helper()
	store := jwkset.NewMemoryStorage()
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(&k.priv.PublicKey, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgES256, KID: k.kid, USE: k.use},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.KeyWrite(t.Context(), jwk); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := store.JSONPublic(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mint(t *testing.T, k key) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "alice"})
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verify checks token's signature with s, as auth and auth/cloud do.
func verify(t *testing.T, s *jwks.Set, token string) error {
	_, err := jwt.Parse(token, func(tok *jwt.Token) (any, error) { return s.Key(t.Context(), tok) },
		jwt.WithValidMethods(jwks.Algs))
	return err
}

// server serves the JWK Set in body, counting fetches.
type server struct {
	URL     string
	body    atomic.Pointer[[]byte]
	fetches atomic.Int32
}

func newServer(t *testing.T, body []byte) *server {
	s := &server{}
	s.body.Store(&body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.Write(*s.body.Load())
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// TestRotation: a token signed with a key the IdP just rotated in makes the
// set fetch again; a key rotated out stops verifying; and made-up key ids
// cannot make it fetch more than once per rate-limit window.
func TestRotation(t *testing.T) {
	old, rotated := newKey(t, "old"), newKey(t, "new")
	srv := newServer(t, set(t, old))
	s, err := jwks.Fetch(t.Context(), "issuer corp", srv.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, s, mint(t, old)); err != nil {
		t.Fatalf("the first key: %v", err)
	}
	if st := s.Status(); !s.Remote() || st.LastRefresh.IsZero() || st.Failures != 0 || st.Problem != "" {
		t.Fatalf("Status after a good fetch = %+v", st)
	}

	newSet := set(t, rotated)
	srv.body.Store(&newSet)
	if err := verify(t, s, mint(t, rotated)); err != nil {
		t.Fatalf("the rotated key: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetched %d times, want 2: the unknown kid should fetch once", n)
	}

	for _, k := range []key{old, newKey(t, "made-up")} {
		start := time.Now()
		err := verify(t, s, mint(t, k))
		if err == nil || !strings.Contains(err.Error(), `token key id "`+k.kid+`" is not in issuer corp's key set`) {
			t.Fatalf("kid %s: %v", k.kid, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("kid %s refused after %v: the rate limit should refuse at once", k.kid, d)
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("fetched %d times, want 2: unknown kids within 5 minutes must not fetch again", n)
	}
}

// TestFetchProblems: a set that cannot be fetched refuses tokens with a
// reason that says why, without quoting the response, and reports it.
func TestFetchProblems(t *testing.T) {
	k := newKey(t, "k1")
	const marker = "SECRET-LOOKING-BODY"
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		body string // served with 200 unless status is set
		code int
		url  string // instead of a server
		want string
	}{
		{name: "garbage", body: "<html>" + marker, want: "jwks_url did not serve a JSON Web Key Set: invalid JSON at byte 1"},
		{name: "truncated", body: `{"keys":[{"kty":"EC",`, want: "jwks_url did not serve a JSON Web Key Set: the JSON ends early"},
		{name: "empty", want: "jwks_url did not serve a JSON Web Key Set: the response is empty"},
		{name: "wrong shape", body: `{"keys":"` + marker + `"}`, want: `jwks_url did not serve a JSON Web Key Set: field "keys" holds a JSON string`},
		{name: "oversized", body: `{"keys":[],"pad":"` + strings.Repeat(marker, 120_000) + `"}`,
			want: "jwks_url served more than 1 MiB: no key set is that large"},
		{name: "HTTP error", body: marker, code: http.StatusInternalServerError, want: "jwks_url answered with an unexpected HTTP status"},
		{name: "unreachable", url: closed.URL, want: "jwks_url is unreachable: connection refused: nothing listens there; check the endpoint and that the service is up"},
		{name: "no keys", body: `{"keys":[]}`, want: "jwks_url serves no usable keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.url
			if u == "" {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if tt.code != 0 {
						w.WriteHeader(tt.code)
					}
					w.Write([]byte(tt.body))
				}))
				t.Cleanup(srv.Close)
				u = srv.URL
			}
			s, err := jwks.Fetch(t.Context(), "Google", u, 0)
			if err != nil {
				t.Fatalf("Fetch must not fail on a bad key set: %v", err)
			}
			err = verify(t, s, mint(t, k))
			if want := "Google: signing keys unavailable (" + tt.want + ")"; err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error = %v, want it to contain %q", err, want)
			}
			if strings.Contains(err.Error(), marker) {
				t.Errorf("the reason quotes the response: %v", err)
			}
			st := s.Status()
			if tt.name != "no keys" && (st.Problem != tt.want || st.Failures == 0 || !st.LastRefresh.IsZero()) {
				t.Errorf("Status = %+v, want the problem %q", st, tt.want)
			}
		})
	}
}

// TestKeyRefusals: keys verify only what they are meant to.
func TestKeyRefusals(t *testing.T) {
	sig, enc := newKey(t, "sig"), newKey(t, "enc")
	enc.use = jwkset.UseEnc
	srv := newServer(t, set(t, sig, enc))
	s, err := jwks.Fetch(t.Context(), "issuer corp", srv.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	hmac := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice"})
	hmac.Header["kid"] = "sig"
	tests := []struct {
		name  string
		token *jwt.Token
		want  string
	}{
		{name: "a public key as an HMAC secret", token: hmac, want: `token algorithm "HS256" is not allowed: only asymmetric algorithms`},
		{name: "an encryption key", token: &jwt.Token{Method: jwt.SigningMethodES256, Header: map[string]any{"alg": "ES256", "kid": "enc"}},
			want: `token key id "enc" of issuer corp cannot verify ES256 tokens`},
		{name: "a kid that is not a string", token: &jwt.Token{Method: jwt.SigningMethodES256, Header: map[string]any{"alg": "ES256", "kid": 7}},
			want: `malformed token: the "kid" header is not a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := s.Key(t.Context(), tt.token)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Key = %T, %v; want a refusal containing %q", key, err, tt.want)
			}
		})
	}
}

// TestHangingJWKS: a JWKS that hangs does not hold up Fetch (start-up);
// tokens are refused with a reason while it hangs, and the keys are back
// within the documented bound (retryMax + retryTimeout, 7s) of the JWKS
// answering again.
func TestHangingJWKS(t *testing.T) {
	k := newKey(t, "k1")
	body := set(t, k)
	var hang atomic.Bool
	hang.Store(true)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Write(body)
	}))
	t.Cleanup(func() { close(release); srv.Close() })

	start := time.Now()
	s, err := jwks.Fetch(t.Context(), "issuer slow", srv.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Fetch waited %v on a hanging JWKS; start-up must not wait on it", d)
	}
	if st := s.Status(); !st.LastRefresh.IsZero() {
		t.Fatalf("keys loaded from a hanging JWKS: %+v", st)
	}
	if err := verify(t, s, mint(t, k)); err == nil || !strings.Contains(err.Error(), "signing keys unavailable") {
		t.Fatalf("a token while the JWKS hangs: %v", err)
	}
	hang.Store(false)
	back := time.Now()
	for s.Status().LastRefresh.IsZero() {
		if time.Since(back) > 8*time.Second {
			t.Fatalf("keys not back %v after the JWKS answered again", time.Since(back))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("keys back %v after the JWKS answered again", time.Since(back).Round(time.Millisecond))
	if err := verify(t, s, mint(t, k)); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}
