package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
)

const (
	urlIss  = "https://corp.example.com"
	fileIss = "https://files.example.com"
)

// signer is one test key: what signs, under which kid and alg.
type signer struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

func (s signer) public() crypto.PublicKey { return s.priv.Public() }

var (
	keysOnce                 sync.Once
	keysErr                  error
	rsaKey, ecKey, edKey     signer
	otherECKey, rotatedECKey signer
)

// testKeys makes the keys once per test binary: RSA 2048 is slow.
func testKeys(tb testing.TB) (rsaS, ecS, edS signer) {
	tb.Helper()
	keysOnce.Do(func() {
		r, err1 := rsa.GenerateKey(rand.Reader, 2048)
		e1, err2 := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		e2, err3 := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		e3, err4 := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, ed, err5 := ed25519.GenerateKey(rand.Reader)
		if keysErr = errors.Join(err1, err2, err3, err4, err5); keysErr != nil {
			return
		}
		rsaKey = signer{"rsa-1", jwt.SigningMethodRS256, r}
		ecKey = signer{"ec-1", jwt.SigningMethodES256, e1}
		edKey = signer{"ed-1", jwt.SigningMethodEdDSA, ed}
		otherECKey = signer{"ec-1", jwt.SigningMethodES256, e2} // same kid, different key
		rotatedECKey = signer{"ec-2", jwt.SigningMethodES256, e3}
	})
	if keysErr != nil {
		tb.Fatalf("generate keys: %v", keysErr)
	}
	return rsaKey, ecKey, edKey
}

// jwksJSON is the public JWK Set of the given keys.
func jwksJSON(tb testing.TB, keys ...signer) []byte {
	tb.Helper()
	ctx := context.Background()
	store := jwkset.NewMemoryStorage()
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.ALG(k.method.Alg()), KID: k.kid, USE: jwkset.UseSig},
		})
		if err != nil {
			tb.Fatalf("jwk %s: %v", k.kid, err)
		}
		if err := store.KeyWrite(ctx, jwk); err != nil {
			tb.Fatal(err)
		}
	}
	raw, err := store.JSONPublic(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// jwksServer serves a JWK Set that a test can change, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = body
}

func writeJWKSFile(tb testing.TB, body []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "jwks.json")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func issuerConfig(name, iss string) config.Issuer {
	return config.Issuer{
		Name:          name,
		Issuer:        iss,
		Audiences:     []string{"portcullis"},
		UsernameClaim: "email",
		RolesClaim:    "roles",
		GroupsClaim:   "groups",
	}
}

// claims are valid claims for iss: issued now, valid for an hour.
func claims(iss string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss":    iss,
		"sub":    "u-42",
		"aud":    "portcullis",
		"iat":    now.Unix(),
		"nbf":    now.Unix(),
		"exp":    now.Add(time.Hour).Unix(),
		"jti":    "token-1",
		"email":  "alice@example.com",
		"groups": []string{"eng", "ops"},
		"roles":  "dba",
	}
}

// esHeader is the header mint writes for ecKey.
const esHeader = `{"alg":"ES256","kid":"ec-1","typ":"JWT"}`

func mint(tb testing.TB, k signer, c jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(k.method, c)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return s
}

// mintNoKID mints a token whose header names no key: the verifier tries
// every key of the issuer's set.
func mintNoKID(tb testing.TB, k signer, c jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(k.method, c).SignedString(k.priv)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return s
}

// mintRaw signs header and payload as they are: JSON that jwt.MapClaims
// cannot express (a name twice, null, an object that is not one).
func mintRaw(tb testing.TB, k signer, header, payload string) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sig, err := k.method.Sign(signing, k.priv)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// rawClaims is c as JSON with the members in extra added last, e.g.
// `"email":null`.
func rawClaims(tb testing.TB, c jwt.MapClaims, extra string) string {
	tb.Helper()
	raw, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSuffix(string(raw), "}") + "," + extra + "}"
}

// with returns a copy of c with changes applied; a nil value deletes.
func with(c jwt.MapClaims, changes jwt.MapClaims) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// testVerifier trusts "corp" (keys from a jwks_url) and "files" (keys from
// a jwks_file), both holding the RSA, EC and Ed25519 test keys.
func testVerifier(t *testing.T) *auth.Verifier {
	t.Helper()
	r, e, d := testKeys(t)
	set := jwksJSON(t, r, e, d)
	srv := newJWKSServer(t, set)
	corp := issuerConfig("corp", urlIss)
	corp.JWKSURL = srv.URL + "/jwks.json"
	files := issuerConfig("files", fileIss)
	files.JWKSFile = writeJWKSFile(t, set)
	v, err := auth.NewVerifier(t.Context(), []config.Issuer{corp, files}, nil)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// checkDenied asserts err is a *DeniedError whose reason holds every want
// and neither the token nor its signature.
func checkDenied(t *testing.T, token string, err error, want ...string) {
	t.Helper()
	var denied *auth.DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("error = %v (%T), want a *auth.DeniedError", err, err)
	}
	t.Logf("reason: %s", denied.Reason)
	for _, w := range want {
		if !strings.Contains(denied.Reason, w) {
			t.Errorf("reason %q does not contain %q", denied.Reason, w)
		}
	}
	if token != "" && strings.Contains(denied.Reason, token) {
		t.Errorf("reason %q contains the token", denied.Reason)
	}
	if parts := strings.Split(token, "."); len(parts) == 3 && len(parts[2]) > 8 && strings.Contains(denied.Reason, parts[2]) {
		t.Errorf("reason %q contains the token's signature", denied.Reason)
	}
}

func TestVerifyValid(t *testing.T) {
	v := testVerifier(t)
	r, e, d := testKeys(t)
	tests := []struct {
		name       string
		key        signer
		iss        string
		wantIssuer string
	}{
		{name: "RS256 via jwks_url", key: r, iss: urlIss, wantIssuer: "corp"},
		{name: "ES256 via jwks_url", key: e, iss: urlIss, wantIssuer: "corp"},
		{name: "EdDSA via jwks_url", key: d, iss: urlIss, wantIssuer: "corp"},
		{name: "RS256 via jwks_file", key: r, iss: fileIss, wantIssuer: "files"},
		{name: "ES256 via jwks_file", key: e, iss: fileIss, wantIssuer: "files"},
		{name: "EdDSA via jwks_file", key: d, iss: fileIss, wantIssuer: "files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claims(tt.iss)
			id, err := v.Verify(t.Context(), mint(t, tt.key, c))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if want := claimsIdentity(tt.wantIssuer, tt.iss, c); !identityEqual(id, want) {
				t.Errorf("identity = %+v, want %+v", id, want)
			}
		})
	}
}

// claimsIdentity is the identity the test claims c carry, from issuer
// name and iss.
func claimsIdentity(name, iss string, c jwt.MapClaims) auth.Identity {
	return auth.Identity{
		Issuer:    name,
		IssuerURL: iss,
		Subject:   "u-42",
		Username:  "alice@example.com",
		Groups:    []string{"eng", "ops"},
		Roles:     []string{"dba"},
		ExpiresAt: time.Unix(c["exp"].(int64), 0),
		TokenID:   "token-1",
	}
}

// TestVerifyClaimShapes: the claims read exactly as JSON decoded into a
// map: names match exactly, the last of a name twice counts, null is
// absent, roles and groups are a string or an array of strings.
func TestVerifyClaimShapes(t *testing.T) {
	v := testVerifier(t)
	_, e, _ := testKeys(t)
	c := claims(urlIss)
	want := claimsIdentity("corp", urlIss, c)
	tests := []struct {
		name   string
		token  string
		change func(*auth.Identity)
	}{
		{name: "no kid: every key of the set is tried", token: mintNoKID(t, e, c)},
		{name: "username claim twice: the last counts",
			token:  mintRaw(t, e, esHeader, rawClaims(t, c, `"email":"mallory@example.com"`)),
			change: func(id *auth.Identity) { id.Username = "mallory@example.com" }},
		{name: "names match exactly", token: mint(t, e, with(c, jwt.MapClaims{"Email": "mallory@example.com", "ROLES": "root"}))},
		{name: "roles, groups and jti null",
			token:  mintRaw(t, e, esHeader, rawClaims(t, with(c, jwt.MapClaims{"roles": nil, "groups": nil, "jti": nil}), `"roles":null,"groups":null,"jti":null`)),
			change: func(id *auth.Identity) { id.Roles, id.Groups, id.TokenID = nil, nil, "" }},
		{name: "roles an array, groups one string", token: mint(t, e, with(c, jwt.MapClaims{"roles": []string{"dba", "ro"}, "groups": "eng"})),
			change: func(id *auth.Identity) { id.Roles, id.Groups = []string{"dba", "ro"}, []string{"eng"} }},
		{name: "aud an array", token: mint(t, e, with(c, jwt.MapClaims{"aud": []string{"other", "portcullis"}}))},
		{name: "other claims of any shape", token: mint(t, e, with(c, jwt.MapClaims{"x": map[string]any{"y": []any{1, nil, "z"}}}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(t.Context(), tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := want
			if tt.change != nil {
				tt.change(&want)
			}
			if !identityEqual(id, want) {
				t.Errorf("identity = %+v, want %+v", id, want)
			}
		})
	}
}

// TestVerifyUsernameClaimSub: an issuer may name the user by a registered
// claim; it is read once, with the rules of both.
func TestVerifyUsernameClaimSub(t *testing.T) {
	_, e, _ := testKeys(t)
	c := issuerConfig("files", fileIss)
	c.UsernameClaim = "sub"
	c.RolesClaim = "aud"
	c.JWKSFile = writeJWKSFile(t, jwksJSON(t, e))
	v, err := auth.NewVerifier(t.Context(), []config.Issuer{c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(t.Context(), mint(t, e, claims(fileIss)))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.Username != "u-42" || id.Subject != "u-42" || !slices.Equal(id.Roles, []string{"portcullis"}) {
		t.Errorf("identity = %+v, want user and subject u-42, roles [portcullis]", id)
	}

	tok := mint(t, e, with(claims(fileIss), jwt.MapClaims{"sub": 42}))
	_, err = v.Verify(t.Context(), tok)
	checkDenied(t, tok, err, `token claim "sub" is not a string`)
	tok = mint(t, e, with(claims(fileIss), jwt.MapClaims{"sub": nil}))
	_, err = v.Verify(t.Context(), tok)
	checkDenied(t, tok, err, `token has no "sub" claim: issuer files names the user with it`)
}

func identityEqual(a, b auth.Identity) bool {
	return a.Issuer == b.Issuer && a.IssuerURL == b.IssuerURL && a.Subject == b.Subject &&
		a.Username == b.Username && slices.Equal(a.Groups, b.Groups) && slices.Equal(a.Roles, b.Roles) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.TokenID == b.TokenID
}

func TestVerifyDenied(t *testing.T) {
	v := testVerifier(t)
	r, e, _ := testKeys(t)
	now := time.Now()

	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(r.public()))})
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(urlIss))
	hs.Header["kid"] = r.kid
	hsToken := must(hs.SignedString(rsaPEM))

	none := jwt.NewWithClaims(jwt.SigningMethodNone, claims(urlIss))
	none.Header["kid"] = e.kid
	noneToken := must(none.SignedString(jwt.UnsafeAllowNoneSignatureType))

	longIss := "https://" + strings.Repeat("x", 300) + ".example.com"

	tests := []struct {
		name  string
		token string
		want  []string
	}{
		{name: "empty", token: "", want: []string{"empty password: pass a token as the password"}},
		{name: "garbage", token: "hunter2 is my password", want: []string{"malformed token: not a JWT"}},
		{name: "three garbage parts", token: "abc.def.ghi", want: []string{"malformed token: not a JWT"}},
		{name: "1 MB", token: strings.Repeat("a", 1<<20), want: []string{"token too large"}},
		{name: "expired", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{
			"iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix(), "exp": now.Add(-3 * time.Minute).Unix(),
		})), want: []string{"token expired 3m ago"}},
		{name: "not yet valid", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{
			"nbf": now.Add(2 * time.Minute).Unix(),
		})), want: []string{"token not valid for another 2m"}},
		{name: "wrong audience", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{
			"aud": []string{"a", "b"},
		})), want: []string{"token audience [a b] does not include any of [portcullis]"}},
		{name: "no audience", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"aud": nil})),
			want: []string{`token has no "aud" claim`}},
		{name: "wrong issuer", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{
			"iss": "https://evil.example.com",
		})), want: []string{`token issuer "https://evil.example.com" is not trusted`}},
		{name: "long issuer is cut", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"iss": longIss})),
			want: []string{`is not trusted`, "xxx..."}},
		{name: "no issuer", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"iss": nil})),
			want: []string{`token has no "iss" claim`}},
		{name: "unknown kid via jwks_file", token: mint(t, signer{"nope", e.method, e.priv}, claims(fileIss)),
			want: []string{`token key id "nope" is not in issuer files's key set`}},
		{name: "unknown kid via jwks_url", token: mint(t, signer{"nope", e.method, e.priv}, claims(urlIss)),
			want: []string{`token key id "nope" is not in issuer corp's key set`}},
		{name: "bad signature", token: mint(t, otherECKey, claims(urlIss)),
			want: []string{"token signature is invalid for issuer corp"}},
		{name: "alg other than the key's", token: mint(t, signer{r.kid, jwt.SigningMethodRS384, r.priv}, claims(urlIss)),
			want: []string{`token key id "rsa-1" of issuer corp cannot verify RS384 tokens`}},
		{name: "alg none", token: noneToken,
			want: []string{`token algorithm "none" is not allowed for issuer corp tokens`, "only asymmetric algorithms"}},
		{name: "HS256 with the RSA public key as secret", token: hsToken,
			want: []string{`token algorithm "HS256" is not allowed for issuer corp tokens: only asymmetric algorithms (RS*, PS*, ES256, ES384, EdDSA) are accepted`}},
		{name: "lifetime over max", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{
			"iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix(), "exp": now.Add(47 * time.Hour).Unix(),
		})), want: []string{"token lifetime 48h0m0s exceeds the 24h0m0s maximum for issuer corp"}},
		{name: "lifetime from nbf without iat", token: mint(t, e, with(claims(fileIss), jwt.MapClaims{
			"iat": nil, "nbf": now.Add(-time.Hour).Unix(), "exp": now.Add(47 * time.Hour).Unix(),
		})), want: []string{"token lifetime 48h0m0s exceeds the 24h0m0s maximum for issuer files"}},
		{name: "neither iat nor nbf", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"iat": nil, "nbf": nil})),
			want: []string{`token has neither "iat" nor "nbf"`}},
		{name: "no exp", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"exp": nil})),
			want: []string{`token has no "exp" claim`}},
		{name: "iat in the future", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"iat": now.Add(10 * time.Minute).Unix()})),
			want: []string{"token issued 10m in the future"}},
		{name: "missing username claim", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"email": nil})),
			want: []string{`token has no "email" claim`}},
		{name: "username claim not a string", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"email": 42})),
			want: []string{`token claim "email" is not a string`}},
		{name: "username claim with NUL and vertical tab", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"email": "alice@example.com\x00\v"})),
			want: []string{`token claim "email" cannot name a user`, "control character (U+0000) at position 18"}},
		{name: "username claim with a bidi override", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"email": "alice\u202e@example.com"})),
			want: []string{"bidirectional control character (U+202E)"}},
		{name: "username claim of spaces", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"email": "   "})),
			want: []string{`token claim "email" cannot name a user`, "is empty"}},
		{name: "groups of the wrong type", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"groups": []any{"eng", 7}})),
			want: []string{`token claim "groups" is not a string or an array of strings`}},

		// Claims of the wrong type, null, or named in another case.
		{name: "exp not a number", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"exp": "soon"})),
			want: []string{`token claim "exp" is not a NumericDate`}},
		{name: "exp null", token: mintRaw(t, e, esHeader, rawClaims(t, with(claims(urlIss), jwt.MapClaims{"exp": nil}), `"exp":null`)),
			want: []string{`token claim "exp" is not a NumericDate`}},
		{name: "exp zero", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"exp": 0})),
			want: []string{`token has no "exp" claim: tokens that never expire are refused`}},
		{name: "nbf not a number", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"nbf": "now"})),
			want: []string{`token claim "nbf" is not a NumericDate`}},
		{name: "iat not a number", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"iat": true})),
			want: []string{`token claim "iat" is not a NumericDate`}},
		{name: "aud a number", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"aud": 7})),
			want: []string{`token has no "aud" claim: request it for one of [portcullis]`}},
		{name: "aud array holding a number", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"aud": []any{"portcullis", 7}})),
			want: []string{`token claim "aud" is not a string or an array of strings`}},
		{name: "iss not a string", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"iss": 7})),
			want: []string{`token has no "iss" claim: cannot tell which issuer signed it`}},
		{name: "sub not a string", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"sub": 7})),
			want: []string{`token claim "sub" is not a string`}},
		{name: "sub null", token: mintRaw(t, e, esHeader, rawClaims(t, with(claims(urlIss), jwt.MapClaims{"sub": nil}), `"sub":null`)),
			want: []string{`token claim "sub" is not a string`}},
		{name: "jti not a string", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"jti": 7})),
			want: []string{`token claim "jti" is not a string`}},
		{name: "username claim null", token: mintRaw(t, e, esHeader, rawClaims(t, with(claims(urlIss), jwt.MapClaims{"email": nil}), `"email":null`)),
			want: []string{`token has no "email" claim: issuer corp names the user with it`}},
		{name: "username claim empty", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"email": ""})),
			want: []string{`token has an empty "email" claim: issuer corp names the user with it`}},
		{name: "username claim in another case", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"email": nil, "EMAIL": "alice@example.com"})),
			want: []string{`token has no "email" claim`}},
		{name: "username claim twice, the last null", token: mintRaw(t, e, esHeader, rawClaims(t, claims(urlIss), `"email":null`)),
			want: []string{`token has no "email" claim`}},
		{name: "exp twice, the last in the past", token: mintRaw(t, e, esHeader, rawClaims(t, claims(urlIss), fmt.Sprintf(`"exp":%d`, now.Add(-3*time.Minute).Unix()))),
			want: []string{"token expired 3m ago"}},
		{name: "roles a number", token: mint(t, e, with(claims(urlIss), jwt.MapClaims{"roles": 7})),
			want: []string{`token claim "roles" is not a string or an array of strings`}},

		// Header, claims and signature that do not decode.
		{name: "no alg", token: mintRaw(t, e, `{"kid":"ec-1"}`, rawClaims(t, claims(urlIss), `"x":1`)),
			want: []string{`malformed token: no "alg" header: only asymmetric algorithms`}},
		{name: "alg not a string", token: mintRaw(t, e, `{"alg":7,"kid":"ec-1"}`, rawClaims(t, claims(urlIss), `"x":1`)),
			want: []string{`malformed token: no "alg" header: only asymmetric algorithms`}},
		{name: "unknown alg", token: mintRaw(t, e, `{"alg":"XS999","kid":"ec-1"}`, rawClaims(t, claims(urlIss), `"x":1`)),
			want: []string{`token algorithm "XS999" is not allowed for issuer corp tokens: only asymmetric algorithms`}},
		{name: "header null", token: mintRaw(t, e, `null`, rawClaims(t, claims(urlIss), `"x":1`)),
			want: []string{`malformed token: no "alg" header`}},
		{name: "header not an object", token: mintRaw(t, e, `["ES256"]`, rawClaims(t, claims(urlIss), `"x":1`)),
			want: []string{"malformed token: not a JWT"}},
		{name: "claims not an object", token: mintRaw(t, e, esHeader, `["alice@example.com"]`),
			want: []string{"malformed token: not a JWT"}},
		{name: "claims null", token: mintRaw(t, e, esHeader, `null`),
			want: []string{`token has no "iss" claim`}},
		{name: "claims not base64url", token: "eyJhbGciOiJFUzI1NiJ9.e30*.c2ln",
			want: []string{"malformed token: not a JWT"}},
		{name: "signature not base64url", token: mint(t, e, claims(urlIss)) + "*",
			want: []string{"malformed token: not a JWT"}},
		{name: "HS256 with a signature not base64url", token: hsToken + "*",
			want: []string{"malformed token: not a JWT"}},
		{name: "no kid and no key of the set", token: mintNoKID(t, otherECKey, claims(urlIss)),
			want: []string{"token signature is invalid for issuer corp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(t.Context(), tt.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", id)
			}
			checkDenied(t, tt.token, err, tt.want...)
		})
	}
}

func TestVerifyJWKSRotation(t *testing.T) {
	_, e, _ := testKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, e))
	corp := issuerConfig("corp", urlIss)
	corp.JWKSURL = srv.URL
	v, err := auth.NewVerifier(t.Context(), []config.Issuer{corp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), mint(t, e, claims(urlIss))); err != nil {
		t.Fatalf("Verify with the first key: %v", err)
	}

	// The IdP adds a key and signs with it: the unknown kid makes the
	// verifier fetch the set again.
	srv.set(jwksJSON(t, e, rotatedECKey))
	id, err := v.Verify(t.Context(), mint(t, rotatedECKey, claims(urlIss)))
	if err != nil {
		t.Fatalf("Verify with the rotated key: %v", err)
	}
	if id.Username != "alice@example.com" {
		t.Errorf("username = %q", id.Username)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("jwks fetched %d times, want 2", n)
	}

	// Another unknown kid soon after is refused at once, without a fetch.
	start := time.Now()
	tok := mint(t, signer{"made-up", e.method, e.priv}, claims(urlIss))
	_, err = v.Verify(t.Context(), tok)
	checkDenied(t, tok, err, `token key id "made-up" is not in issuer corp's key set`)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusal took %v: the rate limit should refuse at once", d)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("jwks fetched %d times, want 2", n)
	}
}

func TestVerifyJWKSUnreachable(t *testing.T) {
	_, e, _ := testKeys(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there now

	corp := issuerConfig("corp", urlIss)
	corp.JWKSURL = addr + "/jwks.json"
	v, err := auth.NewVerifier(t.Context(), []config.Issuer{corp}, nil)
	if err != nil {
		t.Fatalf("NewVerifier must not fail on an unreachable jwks_url: %v", err)
	}
	tok := mint(t, e, claims(urlIss))
	_, err = v.Verify(t.Context(), tok)
	checkDenied(t, tok, err, "issuer corp: signing keys unavailable (jwks_url is unreachable: connection refused")
}

func TestVerifyJWKSRecovers(t *testing.T) {
	t.Parallel() // waits for the first retry, 5s after start
	_, e, _ := testKeys(t)
	var up atomic.Bool
	body := jwksJSON(t, e)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	corp := issuerConfig("corp", urlIss)
	corp.JWKSURL = srv.URL
	v, err := auth.NewVerifier(t.Context(), []config.Issuer{corp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := mint(t, e, claims(urlIss))
	_, err = v.Verify(t.Context(), tok)
	checkDenied(t, tok, err, "issuer corp: signing keys unavailable")

	up.Store(true)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err = v.Verify(t.Context(), tok); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys still unavailable after the jwks_url came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestVerifyJWKSBadStatus(t *testing.T) {
	_, e, _ := testKeys(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	corp := issuerConfig("corp", urlIss)
	corp.JWKSURL = srv.URL
	v, err := auth.NewVerifier(t.Context(), []config.Issuer{corp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := mint(t, e, claims(urlIss))
	_, err = v.Verify(t.Context(), tok)
	checkDenied(t, tok, err, "signing keys unavailable", "unexpected HTTP status")
}

func TestNewVerifierConfigErrors(t *testing.T) {
	good := issuerConfig("corp", urlIss)
	good.JWKSFile = "/nonexistent/jwks.json"
	tests := []struct {
		name    string
		issuers []config.Issuer
		want    []string
	}{
		{
			name:    "missing jwks_file",
			issuers: []config.Issuer{good},
			want:    []string{"issuer corp", "jwks_file", "/nonexistent/jwks.json"},
		},
		{
			name: "every problem at once",
			issuers: []config.Issuer{
				{Name: "a", Issuer: urlIss, Audiences: []string{"x"}},
				{Name: "a", Issuer: urlIss, JWKSURL: "https://x", JWKSFile: "y"},
			},
			want: []string{"issuers[a]: has neither jwks_url nor jwks_file", "issuers[a].name: is used twice",
				"is also the issuer of", "issuers[a].audiences: is empty", "has both jwks_url and jwks_file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.NewVerifier(t.Context(), tt.issuers, nil)
			if err == nil {
				t.Fatal("NewVerifier accepted a bad configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestJWKSFileErrorHidesContent(t *testing.T) {
	secret := `{"keys": [ {"kty": "EC", "d": "c2VjcmV0LWtleS1ieXRlcw"` // cut short
	path := writeJWKSFile(t, []byte(secret))
	c := issuerConfig("corp", urlIss)
	c.JWKSFile = path
	_, err := auth.NewVerifier(t.Context(), []config.Issuer{c}, nil)
	if err == nil {
		t.Fatal("NewVerifier accepted a broken jwks_file")
	}
	if strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("error %q quotes the file", err)
	}
	if !strings.Contains(err.Error(), "is not a JSON Web Key Set") {
		t.Errorf("error %q does not say what is wrong", err)
	}
}

// Dev issuer.

func TestInitDevKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "nested", "dev-key.pem")
	created, err := auth.InitDevKey(path)
	if err != nil || !created {
		t.Fatalf("InitDevKey = %v, %v; want true, nil", created, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %v, want 0600", perm)
	}
	dinfo, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := dinfo.Mode().Perm(); perm != 0o700 {
		t.Errorf("key folder mode = %v, want 0700", perm)
	}
	first, _ := os.ReadFile(path)
	if !strings.Contains(string(first), "BEGIN PRIVATE KEY") {
		t.Errorf("key file is not PKCS#8 PEM")
	}

	created, err = auth.InitDevKey(path)
	if err != nil || created {
		t.Fatalf("second InitDevKey = %v, %v; want false, nil", created, err)
	}
	second, _ := os.ReadFile(path)
	if string(first) != string(second) {
		t.Error("second InitDevKey changed the key")
	}
}

func TestLoadDevIssuerMissingKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.pem")
	_, err := auth.LoadDevIssuer(config.DevIssuer{KeyFile: path})
	if err == nil {
		t.Fatal("LoadDevIssuer accepted a missing key file")
	}
	for _, w := range []string{path, "portcullis keys init"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %q is not os.ErrNotExist", err)
	}
}

func newDevIssuer(t *testing.T) *auth.DevIssuer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dev-key.pem")
	if _, err := auth.InitDevKey(path); err != nil {
		t.Fatal(err)
	}
	dev, err := auth.LoadDevIssuer(config.DevIssuer{Enabled: true, KeyFile: path})
	if err != nil {
		t.Fatal(err)
	}
	return dev
}

func TestDevIssuerRoundTrip(t *testing.T) {
	dev := newDevIssuer(t)
	v, err := auth.NewVerifier(t.Context(), nil, dev)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  auth.MintRequest
		want auth.Identity
	}{
		{
			name: "all fields",
			req: auth.MintRequest{Subject: "u-7", Email: "bob@example.com", Roles: []string{"dba", "ro"},
				Groups: []string{"eng"}, TTL: 10 * time.Minute},
			want: auth.Identity{Issuer: "dev", IssuerURL: "portcullis-dev", Subject: "u-7", Username: "bob@example.com",
				Roles: []string{"dba", "ro"}, Groups: []string{"eng"}},
		},
		{
			name: "defaults",
			req:  auth.MintRequest{Email: "carol@example.com"},
			want: auth.Identity{Issuer: "dev", IssuerURL: "portcullis-dev", Subject: "carol@example.com",
				Username: "carol@example.com"},
		},
	}
	jti := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().Truncate(time.Second)
			tok, err := dev.Mint(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			id, err := v.Verify(t.Context(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			ttl := tt.req.TTL
			if ttl == 0 {
				ttl = time.Hour
			}
			if d := id.ExpiresAt.Sub(before.Add(ttl)); d < 0 || d > 2*time.Second {
				t.Errorf("expires at %v, want about %v", id.ExpiresAt, before.Add(ttl))
			}
			if !jti.MatchString(id.TokenID) {
				t.Errorf("token id %q is not 128-bit hex", id.TokenID)
			}
			tt.want.ExpiresAt, tt.want.TokenID = id.ExpiresAt, id.TokenID
			if !identityEqual(id, tt.want) {
				t.Errorf("identity = %+v, want %+v", id, tt.want)
			}
		})
	}
}

func TestDevIssuerRefusals(t *testing.T) {
	dev := newDevIssuer(t)
	v, err := auth.NewVerifier(t.Context(), nil, dev)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := dev.Mint(auth.MintRequest{Email: "bob@example.com", Audience: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(t.Context(), tok)
	checkDenied(t, tok, err, "token audience [someone-else] does not include any of [portcullis]")

	if _, err := dev.Mint(auth.MintRequest{Email: "bob@example.com", TTL: 25 * time.Hour}); err == nil {
		t.Error("Mint accepted a TTL over 24h")
	}
	if _, err := dev.Mint(auth.MintRequest{}); err == nil {
		t.Error("Mint accepted a request without an email")
	}

	// Another dev key under the same issuer name is not trusted.
	other := newDevIssuer(t)
	tok, err = other.Mint(auth.MintRequest{Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(t.Context(), tok)
	checkDenied(t, tok, err, "is not in issuer dev's key set")
}

func TestDevIssuerJWKS(t *testing.T) {
	dev := newDevIssuer(t)
	raw, err := dev.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"d"`) {
		t.Fatalf("JWKS holds private key material: %s", raw)
	}
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := dev.Mint(auth.MintRequest{Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.Parse(tok, kf.Keyfunc, jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience("portcullis"))
	if err != nil || !parsed.Valid {
		t.Fatalf("a third party could not verify a dev token with JWKS(): %v", err)
	}

	// The same set served as a jwks_url works for a Verifier too.
	srv := newJWKSServer(t, raw)
	c := issuerConfig("devjwks", dev.Issuer())
	c.JWKSURL = srv.URL
	v, err := auth.NewVerifier(t.Context(), []config.Issuer{c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("Verify via JWKS(): %v", err)
	}
	if id.Issuer != "devjwks" || id.Username != "bob@example.com" {
		t.Errorf("identity = %+v", id)
	}
}

func TestNewVerifierDevNameReserved(t *testing.T) {
	dev := newDevIssuer(t)
	c := issuerConfig("dev", urlIss)
	c.JWKSFile = writeJWKSFile(t, []byte(`{"keys":[]}`))
	_, err := auth.NewVerifier(t.Context(), []config.Issuer{c}, dev)
	if err == nil || !strings.Contains(err.Error(), `"dev" is reserved`) {
		t.Fatalf("err = %v, want the dev name refused", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestVerifyStaleKeys: while the JWKS URL is down, the cached keys keep
// verifying tokens for jwks_max_stale, then tokens are refused with a
// reason that says why.
func TestVerifyStaleKeys(t *testing.T) {
	_, e, _ := testKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, e))
	corp := issuerConfig("corp", urlIss)
	corp.JWKSURL = srv.URL
	corp.JWKSMaxStale = 500 * time.Millisecond
	v, err := auth.NewVerifier(t.Context(), []config.Issuer{corp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for v.KeySets()[0].LastRefresh.IsZero() { // keys are fetched in the background
		time.Sleep(10 * time.Millisecond)
	}
	srv.Close() // the IdP's JWKS goes down
	// An unknown kid makes the verifier try a refresh, which fails.
	tok := mint(t, signer{"new-kid", e.method, e.priv}, claims(urlIss))
	if _, err := v.Verify(t.Context(), tok); err == nil {
		t.Fatal("unknown kid accepted")
	}
	good := mint(t, e, claims(urlIss))
	if _, err := v.Verify(t.Context(), good); err != nil {
		t.Fatalf("cached keys within jwks_max_stale: %v", err)
	}
	time.Sleep(600 * time.Millisecond)
	// A token the cache has not seen: a cached one may be served for up
	// to the cache's 5 minutes more, a bound well inside jwks_max_stale.
	fresh := mint(t, e, claims(urlIss))
	_, err = v.Verify(t.Context(), fresh)
	checkDenied(t, fresh, err, "signing keys are stale")
	if st := v.KeySets(); len(st) != 1 || st[0].Failures == 0 || st[0].LastRefresh.IsZero() || st[0].Problem == "" {
		t.Fatalf("KeySets = %+v", st)
	}
}

// FuzzVerify: whatever a token's header and claims hold, signed by a
// trusted key or not, it is refused with a *DeniedError that does not
// quote its signature, or accepted with a user name.
func FuzzVerify(f *testing.F) {
	_, e, _ := testKeys(f)
	c := issuerConfig("files", fileIss)
	c.JWKSFile = writeJWKSFile(f, jwksJSON(f, e))
	v, err := auth.NewVerifier(f.Context(), []config.Issuer{c}, nil)
	if err != nil {
		f.Fatal(err)
	}
	good := string(must(json.Marshal(claims(fileIss))))
	for _, header := range []string{esHeader, `{"alg":"ES256"}`, `{"alg":"none"}`, `{"alg":7}`, `null`, `[]`} {
		f.Add(header, good, true)
	}
	f.Add(esHeader, rawClaims(f, claims(fileIss), `"email":null,"exp":0`), true)
	f.Add(esHeader, `null`, true)
	f.Add("a.b.c", "", false)
	f.Add("not a token", "", false)
	f.Fuzz(func(t *testing.T, header, payload string, sign bool) {
		tok := header // unsigned: the header is the whole token
		if sign {
			tok = mintRaw(t, e, header, payload)
		}
		id, err := v.Verify(t.Context(), tok)
		if err == nil {
			if id.Username == "" || id.Issuer != "files" {
				t.Fatalf("accepted without a user: %+v", id)
			}
			return
		}
		var denied *auth.DeniedError
		if !errors.As(err, &denied) {
			t.Fatalf("error = %v (%T), want a *auth.DeniedError", err, err)
		}
		if parts := strings.Split(tok, "."); len(parts) == 3 && len(parts[2]) > 8 && strings.Contains(denied.Reason, parts[2]) {
			t.Fatalf("reason %q contains the token's signature", denied.Reason)
		}
	})
}
