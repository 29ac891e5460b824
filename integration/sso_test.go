package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"

	"github.com/portcullisdb/portcullis/client"
	"github.com/portcullisdb/portcullis/store"
)

// The IdPs of these tests are real implementations running in the test
// process on 127.0.0.1: zitadel's certified OpenID Provider (its example
// storage and login page), and crewjam's samlidp.

const (
	idpClientID   = "portcullis"
	otherClientID = "other-app"
	idpPassword   = "verysecure-Pc7"
	cliRedirect   = "http://127.0.0.1:9/callback" // the CLI's loopback listener; these tests read the redirect instead
)

// --- the OIDC provider ---

type idpUser struct {
	storage.User
	role     string
	disabled bool
}

// idpUsers is the OP's user directory, which tests change (role,
// disabled) as an administrator would at the IdP.
type idpUsers struct {
	mu    sync.Mutex
	users map[string]*idpUser // by ID
}

func (u *idpUsers) GetUserByID(id string) *storage.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	if x, ok := u.users[id]; ok && !x.disabled {
		c := x.User
		return &c
	}
	return nil
}

func (u *idpUsers) GetUserByUsername(name string) *storage.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.users {
		if x.Username == name && !x.disabled {
			c := x.User
			return &c
		}
	}
	return nil
}

func (u *idpUsers) ExampleClientID() string { return "service" }

func (u *idpUsers) get(id string) (idpUser, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	x, ok := u.users[id]
	if !ok {
		return idpUser{}, false
	}
	return *x, true
}

func (u *idpUsers) set(id string, f func(*idpUser)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(u.users[id])
}

// idpStorage is the example storage with what a real IdP adds: a custom
// role claim, refusing to renew sessions of disabled users, redirect URIs
// registered after the portal's port is known, and an adjustable ID token
// lifetime.
type idpStorage struct {
	*storage.Storage
	users      *idpUsers
	mu         sync.Mutex
	redirects  []string
	idTokenTTL atomic.Int64
}

func (s *idpStorage) SetUserinfoFromRequest(ctx context.Context, ui *zoidc.UserInfo, tok op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, tok, scopes); err != nil {
		return err
	}
	if u, ok := s.users.get(tok.GetSubject()); ok && u.role != "" {
		ui.AppendClaims("portcullis_role", u.role)
	}
	return nil
}

// CreateAuthRequest is OIDC Core §11 as OpenID-certified OPs apply it:
// offline_access is ignored (no refresh token) unless prompt has consent.
// The zitadel example OP grants it regardless.
func (s *idpStorage) CreateAuthRequest(ctx context.Context, req *zoidc.AuthRequest, userID string) (op.AuthRequest, error) {
	if !slices.Contains(req.Prompt, zoidc.PromptConsent) {
		req.Scopes = slices.DeleteFunc(slices.Clone(req.Scopes), func(s string) bool { return s == zoidc.ScopeOfflineAccess })
	}
	return s.Storage.CreateAuthRequest(ctx, req, userID)
}

func (s *idpStorage) TokenRequestByRefreshToken(ctx context.Context, rt string) (op.RefreshTokenRequest, error) {
	req, err := s.Storage.TokenRequestByRefreshToken(ctx, rt)
	if err != nil {
		return nil, err
	}
	if u, ok := s.users.get(req.GetSubject()); !ok || u.disabled {
		return nil, errors.New("the user is disabled")
	}
	return req, nil
}

func (s *idpStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return &idpClient{Client: c, s: s}, nil
}

type idpClient struct {
	op.Client
	s *idpStorage
}

func (c *idpClient) RedirectURIs() []string {
	if c.GetID() != idpClientID {
		return c.Client.RedirectURIs()
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.redirects
}

func (c *idpClient) IDTokenLifetime() time.Duration       { return time.Duration(c.s.idTokenTTL.Load()) }
func (c *idpClient) IDTokenUserinfoClaimsAssertion() bool { return true }

type oidcIdP struct {
	issuer string
	host   string
	users  *idpUsers
	st     *idpStorage
	swap   atomic.Pointer[string] // an ID token to put into the next token response
	// authorize is the query of the last authorization request.
	authorize atomic.Pointer[url.Values]
}

func startOIDCIdP(t *testing.T, secret string) *oidcIdP {
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/"
	users := &idpUsers{users: map[string]*idpUser{}}
	for _, u := range []struct {
		id, name, role string
		verified       bool
	}{
		{"u-alice", "alice", "member", true}, {"u-bob", "bob", "member", false},
		{"u-dora", "dora", "member", true}, {"u-erin", "erin", "member", true},
	} {
		users.users[u.id] = &idpUser{role: u.role, User: storage.User{ID: u.id, Username: u.name, Password: idpPassword,
			FirstName: u.name, LastName: "Test", Email: u.name + "@corp.test", EmailVerified: u.verified}}
	}
	clients := map[string]*storage.Client{
		idpClientID:   storage.WebClient(idpClientID, secret),
		otherClientID: storage.NativeClient(otherClientID, "http://127.0.0.1/cb"),
	}
	st := &idpStorage{Storage: storage.NewStorageWithClients(users, clients), users: users}
	st.idTokenTTL.Store(int64(5 * time.Minute))
	idp := &oidcIdP{issuer: issuer, host: srv.Listener.Addr().String(), users: users, st: st}
	router := exampleop.SetupServer(issuer, st, nil, false)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Has("response_type") {
			idp.authorize.Store(&q)
		}
		tok := idp.swap.Load()
		if r.URL.Path != "/oauth/token" || tok == nil || !idp.swap.CompareAndSwap(tok, nil) {
			router.ServeHTTP(w, r)
			return
		}
		// Token substitution: an attacker's ID token, minted by this
		// same IdP for another client, in place of the real one.
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, r)
		var body map[string]any
		json.Unmarshal(rec.Body.Bytes(), &body)
		body["id_token"] = *tok
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		json.NewEncoder(w).Encode(body)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	return idp
}

// startOIDCWithSecret starts the provider with a fresh client secret,
// which the product's config reads as ${env:PCIT_OIDC_SECRET}.
func startOIDCWithSecret(t *testing.T) *oidcIdP {
	secret := "oidc-client-secret-" + randomHex(12)
	remember(secret)
	remember(idpPassword)
	t.Setenv("PCIT_OIDC_SECRET", secret)
	return startOIDCIdP(t, secret)
}

// register sets the portal's callbacks as the client's redirect URIs.
func (idp *oidcIdP) register(portal string, conns ...string) {
	idp.st.mu.Lock()
	defer idp.st.mu.Unlock()
	for _, c := range conns {
		idp.st.redirects = append(idp.st.redirects, portal+"/v1/sso/oidc/"+c+"/callback")
	}
}

// --- the SAML IdP ---

type samlIdP struct {
	url       string
	host      string
	mode      atomic.Pointer[string] // how the next assertion is made wrong
	roles     sync.Map               // email -> portcullis_role
	otherKey  *rsa.PrivateKey
	otherCert *x509.Certificate
}

func selfSigned(t *testing.T, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

func startSAMLIdP(t *testing.T) *samlIdP {
	srv := httptest.NewUnstartedServer(nil)
	s := &samlIdP{url: "http://" + srv.Listener.Addr().String(), host: srv.Listener.Addr().String()}
	s.otherKey, s.otherCert = selfSigned(t, "an attacker's key")
	key, cert := selfSigned(t, "pcit SAML IdP")
	base, _ := url.Parse(s.url)
	idp, err := samlidp.New(samlidp.Options{URL: *base, Key: key, Certificate: cert, Store: &samlidp.MemoryStore{}, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	idp.IDP.LoginURL = idp.IDP.SSOURL // the login form posts back to /sso, which continues the SAML flow
	idp.IDP.AssertionMaker = s
	srv.Config.Handler = idp
	srv.Start()
	t.Cleanup(srv.Close)
	for _, name := range []string{"alice", "mallory"} {
		body := fmt.Sprintf(`{"name":%q,"password":%q,"email":"%s@corp.test"}`, name, idpPassword, name)
		s.put(t, "/users/"+name, body)
	}
	s.roles.Store("alice@corp.test", "member")
	return s
}

func (s *samlIdP) put(t *testing.T, path, body string) {
	req, _ := http.NewRequest(http.MethodPut, s.url+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("PUT %s at the SAML IdP: %s", path, resp.Status)
	}
}

func (s *samlIdP) setMode(m string) { s.mode.Store(&m) }

// MakeAssertion is the IdP's assertion maker: the default one, with a
// role attribute, and made wrong on purpose in the refusal tests. The
// IdP still signs whatever it makes.
func (s *samlIdP) MakeAssertion(req *saml.IdpAuthnRequest, session *saml.Session) error {
	mode := ""
	if m := s.mode.Load(); m != nil {
		mode = *m
	}
	if role, ok := s.roles.Load(session.NameID); ok {
		session.CustomAttributes = append(session.CustomAttributes, saml.Attribute{Name: "portcullis_role",
			NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", Values: []saml.AttributeValue{{Type: "xs:string", Value: role.(string)}}})
	}
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, session); err != nil {
		return err
	}
	a := req.Assertion
	switch mode {
	case "wrong-audience":
		a.Conditions.AudienceRestrictions = []saml.AudienceRestriction{{Audience: saml.Audience{Value: "https://another-sp.example/metadata"}}}
	case "expired": // issued just now, but valid only until an hour ago
		past := time.Now().Add(-time.Hour)
		a.Conditions.NotBefore, a.Conditions.NotOnOrAfter = past.Add(-time.Hour), past
		for i := range a.Subject.SubjectConfirmations {
			a.Subject.SubjectConfirmations[i].SubjectConfirmationData.NotOnOrAfter = past
		}
	case "other-key":
		other := *req.IDP
		other.Key, other.Signer, other.Certificate = s.otherKey, nil, s.otherCert
		req.IDP = &other
	}
	return nil
}

// --- the product with both IdPs ---

type ssoEnv struct {
	h    *harness
	oidc *oidcIdP
	saml *samlIdP
}

// startSSO starts the product with both IdPs; opts (at most one) adds to
// the harness options, for example a MariaDB store.
func startSSO(t *testing.T, opts ...harnessOpts) *ssoEnv {
	o := startOIDCWithSecret(t)
	s := startSAMLIdP(t)
	yaml := fmt.Sprintf(`
sso:
  connections:
    - name: corp
      display_name: Corp (OIDC)
      role_claim: portcullis_role
      role_values: {member: reader, administrator: writer}
      oidc: {issuer: %[1]q, client_id: %[2]q, client_secret: "${env:PCIT_OIDC_SECRET}", auth_params: {access_type: offline, ui_locales: en}}
    - name: corp-strict
      require_scim: true
      enforce_mfa: true
      role_claim: portcullis_role
      role_values: {member: reader}
      oidc: {issuer: %[1]q, client_id: %[2]q, client_secret: "${env:PCIT_OIDC_SECRET}"}
    - name: saml
      role_claim: portcullis_role
      role_values: {member: reader, administrator: writer}
      saml: {idp_metadata_url: %[3]q}
`, o.issuer, idpClientID, s.url+"/metadata")
	hopt := harnessOpts{}
	if len(opts) > 0 {
		hopt = opts[0]
	}
	hopt.topYAML += yaml
	h := startHarness(t, hopt)
	o.register(h.http, "corp", "corp-strict")
	resp, err := http.Get(h.http + "/v1/sso/saml/saml/metadata")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.put(t, "/services/portcullis", string(md))
	return &ssoEnv{h: h, oidc: o, saml: s}
}

// --- a browser driven over HTTP ---

type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	url    *url.URL
	loc    *url.URL // Location of a redirect
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	p := page{status: resp.StatusCode, url: req.URL, body: string(body)}
	if l := resp.Header.Get("Location"); l != "" {
		p.loc, _ = req.URL.Parse(l)
	}
	return p
}

func (b *browser) get(u string) page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// followWithin follows redirects while they stay on host.
func (b *browser) followWithin(p page, host string) page {
	for i := 0; i < 10 && p.loc != nil && p.loc.Host == host; i++ {
		p = b.get(p.loc.String())
	}
	return p
}

// formValue reads a field of an HTML form.
func formValue(body, name string) string {
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `"\s+value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// --- what the CLI does ---

type cliLogin struct{ conn, verifier, state, redirect string }

func newCLILogin(conn string) cliLogin {
	c := cliLogin{conn: conn, verifier: oauth2.GenerateVerifier(), state: oauth2.GenerateVerifier(), redirect: cliRedirect}
	remember(c.verifier)
	return c
}

func (c cliLogin) authorizeURL(portal string) string {
	return portal + "/v1/sso/authorize?" + url.Values{"connection": {c.conn}, "response_type": {"code"}, "redirect_uri": {c.redirect},
		"state": {c.state}, "code_challenge": {oauth2.S256ChallengeFromVerifier(c.verifier)}, "code_challenge_method": {"S256"}}.Encode()
}

// outcome is how a login ended: a code (or an error) on the CLI's
// redirect, or a page the browser shows.
type outcome struct {
	code, errCode, errDesc string
	status                 int
	body                   string
}

func (o outcome) refusal() string {
	if o.errDesc != "" {
		return o.errCode + ": " + o.errDesc
	}
	return fmt.Sprintf("%d %s", o.status, o.body)
}

func (c cliLogin) finish(t *testing.T, p page) outcome {
	t.Helper()
	if p.loc != nil && p.loc.String() != "" && strings.HasPrefix(p.loc.String(), c.redirect) {
		q := p.loc.Query()
		if q.Get("state") != c.state {
			t.Fatalf("the redirect to the CLI carries state %q, not the CLI's", q.Get("state"))
		}
		remember(q.Get("code"))
		return outcome{code: q.Get("code"), errCode: q.Get("error"), errDesc: q.Get("error_description")}
	}
	return outcome{status: p.status, body: p.body}
}

// tokenRequest posts to the token endpoint; tokens it gets are remembered.
func tokenRequest(t *testing.T, h *harness, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(h.http+"/v1/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := map[string]any{}
	json.NewDecoder(resp.Body).Decode(&body)
	for _, k := range []string{"access_token", "refresh_token"} {
		if s, _ := body[k].(string); s != "" {
			remember(s)
		}
	}
	return resp.StatusCode, body
}

func (c cliLogin) exchange(t *testing.T, h *harness, code, verifier string) (int, map[string]any) {
	return tokenRequest(t, h, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {c.redirect}})
}

func refresh(t *testing.T, h *harness, rt string) (int, map[string]any) {
	return tokenRequest(t, h, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// mustTokens exchanges a code and insists on an access and a refresh token.
func (c cliLogin) mustTokens(t *testing.T, h *harness, o outcome) (access, refresh string, body map[string]any) {
	t.Helper()
	if o.code == "" {
		t.Fatalf("no code: %s", o.refusal())
	}
	status, body := c.exchange(t, h, o.code, c.verifier)
	if status != http.StatusOK || str(body, "access_token") == "" || str(body, "refresh_token") == "" {
		t.Fatalf("code exchange: %d %v", status, body)
	}
	return str(body, "access_token"), str(body, "refresh_token"), body
}

// --- the OIDC login, driven over HTTP ---

type oidcHooks struct {
	idpURL   func(u *url.URL) // tamper with the request the portal sends to the IdP
	callback func(u *url.URL) // tamper with the IdP's answer to the portal
}

func (e *ssoEnv) oidcLogin(t *testing.T, b *browser, c cliLogin, user string, hk oidcHooks) outcome {
	t.Helper()
	return c.finish(t, e.oidcAt(t, b, c.authorizeURL(e.h.http), user, hk))
}

// oidcAt runs a browser login from the authorize URL start through the
// IdP's login page and returns the portal's last answer.
func (e *ssoEnv) oidcAt(t *testing.T, b *browser, start, user string, hk oidcHooks) page {
	t.Helper()
	p := b.get(start)
	if p.loc == nil || p.loc.Host != e.oidc.host {
		return p
	}
	if hk.idpURL != nil {
		hk.idpURL(p.loc)
	}
	p = b.followWithin(b.get(p.loc.String()), e.oidc.host)
	if p.url.Path != "/login/username" {
		t.Fatalf("expected the IdP's login page, got %s %d: %.300s", p.url, p.status, p.body)
	}
	p = b.post(e.oidc.issuer+"login/username", url.Values{"id": {p.url.Query().Get("authRequestID")}, "username": {user}, "password": {idpPassword}})
	p = b.followWithin(p, e.oidc.host)
	if p.loc == nil || !strings.HasPrefix(p.loc.String(), e.h.http) {
		p.body = "the IdP did not return to the portal: " + p.body
		return p
	}
	if hk.callback != nil {
		hk.callback(p.loc)
	}
	return b.get(p.loc.String())
}

// otherClientIDToken logs user in at the IdP as the other client (with
// the nonce given) and returns the ID token the IdP issues it.
func (e *ssoEnv) otherClientIDToken(t *testing.T, user, nonce string) string {
	b := newBrowser(t)
	verifier := oauth2.GenerateVerifier()
	q := url.Values{"client_id": {otherClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"},
		"scope": {"openid email profile"}, "state": {"s-" + randomHex(8)}, "nonce": {nonce},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
	p := b.followWithin(b.get(e.oidc.issuer+"auth?"+q.Encode()), e.oidc.host)
	p = b.post(e.oidc.issuer+"login/username", url.Values{"id": {p.url.Query().Get("authRequestID")}, "username": {user}, "password": {idpPassword}})
	p = b.followWithin(p, e.oidc.host)
	if p.loc == nil || p.loc.Query().Get("code") == "" {
		t.Fatalf("the other client's login: %d %s", p.status, p.body)
	}
	resp, err := http.PostForm(e.oidc.issuer+"oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {p.loc.Query().Get("code")},
		"redirect_uri": {"http://127.0.0.1:9/cb"}, "client_id": {otherClientID}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		IDToken string `json:"id_token"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if body.IDToken == "" {
		t.Fatalf("the other client got no ID token (%s)", resp.Status)
	}
	remember(body.IDToken)
	return body.IDToken
}

func wantRefusal(t *testing.T, o outcome, want string) {
	t.Helper()
	if o.code != "" {
		t.Fatalf("the login succeeded; want a refusal containing %q", want)
	}
	if !strings.Contains(o.refusal(), want) {
		t.Fatalf("refusal %q does not contain %q", o.refusal(), want)
	}
}

func wantGrantError(t *testing.T, status int, body map[string]any, want string) {
	t.Helper()
	if status == http.StatusOK || !strings.Contains(str(body, "error_description"), want) {
		t.Fatalf("got %d %v, want a refusal containing %q", status, body, want)
	}
}

func TestOIDCLogin(t *testing.T) {
	e := startSSO(t)
	h := e.h
	ctx := context.Background()

	t.Run("login, then the token through the proxy to MariaDB", func(t *testing.T) {
		c := newCLILogin("corp")
		access, refreshToken, body := c.mustTokens(t, h, e.oidcLogin(t, newBrowser(t), c, "alice", oidcHooks{}))
		if body["username"] != "alice@corp.test" || body["auth_method"] != "oidc" || refreshToken == "" {
			t.Fatalf("token response %v", body)
		}
		if got := queryString(t, h.open("alice@corp.test", access), "SELECT CURRENT_USER()"); got != readerUser+"@%" {
			t.Fatalf("CURRENT_USER() = %q, want the reader role's account", got)
		}
		u, err := h.svc.Store.GetUserByName(ctx, "alice@corp.test")
		if err != nil || u.Source != store.SourceSSO || u.Role != "reader" || !u.Active {
			t.Fatalf("user created at first login: %+v %v", u, err)
		}
	})
	t.Run("the authorize request asks for consent with offline_access (§11) and carries auth_params", func(t *testing.T) {
		c := newCLILogin("corp")
		_, refreshToken, _ := c.mustTokens(t, h, e.oidcLogin(t, newBrowser(t), c, "alice", oidcHooks{}))
		q := *e.oidc.authorize.Load()
		if q.Get("prompt") != "consent" || !strings.Contains(q.Get("scope"), "offline_access") || q.Get("access_type") != "offline" || q.Get("ui_locales") != "en" {
			t.Fatalf("authorize request %v", q)
		}
		// The IdP gave its refresh token only because of the consent:
		// without one the portal issues none (a login of one token life).
		if refreshToken == "" {
			t.Fatal("no refresh token from a §11 OP")
		}
	})
	t.Run("refresh rotates the token; reusing an old one revokes the login", func(t *testing.T) {
		c := newCLILogin("corp")
		_, rt1, _ := c.mustTokens(t, h, e.oidcLogin(t, newBrowser(t), c, "alice", oidcHooks{}))
		status, body := refresh(t, h, rt1)
		rt2 := str(body, "refresh_token")
		if status != http.StatusOK || rt2 == "" || rt2 == rt1 || str(body, "access_token") == "" {
			t.Fatalf("refresh: %d %v", status, body)
		}
		status, body = refresh(t, h, rt1)
		wantGrantError(t, status, body, "already used")
		status, body = refresh(t, h, rt2)
		wantGrantError(t, status, body, "revoked")
	})
	t.Run("the role claim sets the role at each login; sessions are re-checked", func(t *testing.T) {
		last, _ := h.svc.Store.LatestEventID(ctx)
		e.oidc.users.set("u-alice", func(u *idpUser) { u.role = "administrator" })
		defer e.oidc.users.set("u-alice", func(u *idpUser) { u.role = "member" })
		c := newCLILogin("corp")
		access, _, _ := c.mustTokens(t, h, e.oidcLogin(t, newBrowser(t), c, "alice", oidcHooks{}))
		if got := queryString(t, h.open("alice@corp.test", access), "SELECT CURRENT_USER()"); got != writerUser+"@%" {
			t.Fatalf("after the IdP made alice an administrator: CURRENT_USER() = %q", got)
		}
		events, _ := h.svc.Store.EventsSince(ctx, last, 100)
		found := false
		for _, ev := range events {
			found = found || (ev.Kind == store.EventUserRolesChanged && ev.Subject == "alice@corp.test")
		}
		if !found {
			t.Fatalf("no %s event for alice: %+v", store.EventUserRolesChanged, events)
		}
	})
	t.Run("state mismatch", func(t *testing.T) {
		for _, tt := range []struct{ name, state, want string }{
			{"a state this browser never started", "forged-" + randomHex(16), "not started in this browser"},
			{"the browser's login, another state", "", "does not match this browser"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				c := newCLILogin("corp")
				o := e.oidcLogin(t, newBrowser(t), c, "alice", oidcHooks{callback: func(u *url.URL) {
					q := u.Query()
					s := tt.state
					if s == "" {
						orig := q.Get("state") // keep the first 16 characters, which pick the cookie
						s = orig[:16] + map[bool]string{true: "Y", false: "X"}[orig[16] == 'X'] + orig[17:]
					}
					q.Set("state", s)
					u.RawQuery = q.Encode()
				}})
				wantRefusal(t, o, tt.want)
			})
		}
	})
	t.Run("nonce mismatch", func(t *testing.T) {
		c := newCLILogin("corp")
		o := e.oidcLogin(t, newBrowser(t), c, "alice", oidcHooks{idpURL: func(u *url.URL) {
			q := u.Query()
			q.Set("nonce", "injected-"+randomHex(8))
			u.RawQuery = q.Encode()
		}})
		wantRefusal(t, o, "nonce does not match")
	})
	t.Run("PKCE verifier wrong", func(t *testing.T) {
		t.Run("toward the IdP", func(t *testing.T) {
			c := newCLILogin("corp")
			o := e.oidcLogin(t, newBrowser(t), c, "alice", oidcHooks{idpURL: func(u *url.URL) {
				q := u.Query()
				q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()))
				u.RawQuery = q.Encode()
			}})
			wantRefusal(t, o, "refused to redeem the authorization code")
		})
		t.Run("toward portcullis", func(t *testing.T) {
			c := newCLILogin("corp")
			o := e.oidcLogin(t, newBrowser(t), c, "alice", oidcHooks{})
			status, body := c.exchange(t, h, o.code, oauth2.GenerateVerifier())
			wantGrantError(t, status, body, "code_verifier does not match")
		})
	})
	t.Run("an ID token from another client", func(t *testing.T) {
		c := newCLILogin("corp")
		o := e.oidcLogin(t, newBrowser(t), c, "alice", oidcHooks{idpURL: func(u *url.URL) {
			tok := e.otherClientIDToken(t, "alice", u.Query().Get("nonce")) // same IdP, same user, same nonce
			e.oidc.swap.Store(&tok)
		}})
		wantRefusal(t, o, "audience")
	})
	t.Run("an expired ID token", func(t *testing.T) {
		e.oidc.st.idTokenTTL.Store(int64(-2 * time.Minute))
		defer e.oidc.st.idTokenTTL.Store(int64(5 * time.Minute))
		c := newCLILogin("corp")
		wantRefusal(t, e.oidcLogin(t, newBrowser(t), c, "alice", oidcHooks{}), "expired")
	})
	t.Run("an email the IdP has not verified", func(t *testing.T) {
		c := newCLILogin("corp")
		wantRefusal(t, e.oidcLogin(t, newBrowser(t), c, "bob", oidcHooks{}), "email_verified")
		if _, err := h.svc.Store.GetUserByName(ctx, "bob@corp.test"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("bob was created: %v", err)
		}
	})
	t.Run("require_scim admits only provisioned users", func(t *testing.T) {
		c := newCLILogin("corp-strict")
		wantRefusal(t, e.oidcLogin(t, newBrowser(t), c, "erin", oidcHooks{}), "not provisioned")
		if _, err := h.svc.Store.CreateUser(ctx, store.User{UserName: "erin@corp.test", Active: true, Source: store.SourceSCIM}); err != nil {
			t.Fatal(err)
		}
		c = newCLILogin("corp-strict")
		access, _, _ := c.mustTokens(t, h, e.oidcLogin(t, newBrowser(t), c, "erin", oidcHooks{}))
		if got := queryString(t, h.open("erin@corp.test", access), "SELECT CURRENT_USER()"); got != readerUser+"@%" {
			t.Fatalf("CURRENT_USER() = %q", got)
		}
	})
	t.Run("a user disabled at the IdP: the next refresh fails and the login is revoked", func(t *testing.T) {
		c := newCLILogin("corp")
		_, rt, _ := c.mustTokens(t, h, e.oidcLogin(t, newBrowser(t), c, "dora", oidcHooks{}))
		status, body := refresh(t, h, rt)
		if status != http.StatusOK {
			t.Fatalf("refresh before disabling: %d %v", status, body)
		}
		rt = str(body, "refresh_token")
		e.oidc.users.set("u-dora", func(u *idpUser) { u.disabled = true })
		status, body = refresh(t, h, rt)
		wantGrantError(t, status, body, "IdP no longer accepts this login")
		status, body = refresh(t, h, rt)
		wantGrantError(t, status, body, "revoked")
	})
	t.Run("logout revokes", func(t *testing.T) {
		c := newCLILogin("corp")
		_, rt, _ := c.mustTokens(t, h, e.oidcLogin(t, newBrowser(t), c, "alice", oidcHooks{}))
		resp, err := http.PostForm(h.http+"/v1/revoke", url.Values{"token": {rt}})
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %v %v", resp, err)
		}
		resp.Body.Close()
		status, body := refresh(t, h, rt)
		wantGrantError(t, status, body, "revoked")
	})
	t.Run("authorize refuses a redirect_uri off this machine", func(t *testing.T) {
		c := newCLILogin("corp")
		c.redirect = "https://attacker.example/callback"
		o := c.finish(t, newBrowser(t).get(c.authorizeURL(h.http)))
		if o.status != http.StatusBadRequest || !strings.Contains(o.body, "redirect_uri") {
			t.Fatalf("got %s", o.refusal())
		}
	})
}

// --- SAML ---

// samlResponse runs the SAML login up to the IdP's auto-submitted form
// and returns where it posts and what.
func (e *ssoEnv) samlResponse(t *testing.T, b *browser, c cliLogin, user string) (acs string, form url.Values) {
	t.Helper()
	p := b.get(c.authorizeURL(e.h.http))
	if p.loc == nil || p.loc.Host != e.saml.host {
		t.Fatalf("authorize did not send the browser to the SAML IdP: %d %s", p.status, p.body)
	}
	p = b.get(p.loc.String())
	if strings.Contains(p.body, `name="password"`) {
		p = b.post(e.saml.url+"/sso", url.Values{"user": {user}, "password": {idpPassword},
			"SAMLRequest": {formValue(p.body, "SAMLRequest")}, "RelayState": {formValue(p.body, "RelayState")}})
	}
	m := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(p.body)
	if m == nil || formValue(p.body, "SAMLResponse") == "" {
		t.Fatalf("the IdP sent no SAML response form: %d %.500s", p.status, p.body)
	}
	remember(formValue(p.body, "SAMLResponse")) // a bearer assertion: it must not reach a log either
	return html.UnescapeString(m[1]), url.Values{"SAMLResponse": {formValue(p.body, "SAMLResponse")}, "RelayState": {formValue(p.body, "RelayState")}}
}

// editResponse changes the decoded SAML response XML.
func editResponse(t *testing.T, form url.Values, edit func(root *etree.Element)) url.Values {
	raw, err := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	edit(doc.Root())
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(out)}, "RelayState": form["RelayState"]}
}

func removeChild(el *etree.Element, tag string) {
	for _, c := range el.ChildElements() {
		if c.Tag == tag {
			el.RemoveChild(c)
		}
	}
}

func TestSAMLLogin(t *testing.T) {
	e := startSSO(t)
	h := e.h
	ctx := context.Background()
	login := func(t *testing.T, mode string) (cliLogin, string, url.Values) {
		e.saml.setMode(mode)
		defer e.saml.setMode("")
		c := newCLILogin("saml")
		acs, form := e.samlResponse(t, newBrowser(t), c, "alice")
		return c, acs, form
	}
	post := func(t *testing.T, c cliLogin, acs string, form url.Values) outcome {
		return c.finish(t, newBrowser(t).post(acs, form))
	}

	t.Run("login, then the token through the proxy to MariaDB", func(t *testing.T) {
		c, acs, form := login(t, "")
		access, _, body := c.mustTokens(t, h, post(t, c, acs, form))
		if body["username"] != "alice@corp.test" || body["auth_method"] != "saml" {
			t.Fatalf("token response %v", body)
		}
		if left := body["refresh_expires_in"].(float64); left < (7*time.Hour-time.Minute).Seconds() || left > (7*time.Hour).Seconds() {
			t.Fatalf("the login lasts %vs, want 7h", left)
		}
		if got := queryString(t, h.open("alice@corp.test", access), "SELECT CURRENT_USER()"); got != readerUser+"@%" {
			t.Fatalf("CURRENT_USER() = %q", got)
		}
		if u, err := h.svc.Store.GetUserByName(ctx, "alice@corp.test"); err != nil || u.Role != "reader" || u.Source != store.SourceSSO {
			t.Fatalf("user %+v %v", u, err)
		}
	})
	t.Run("unsigned assertion", func(t *testing.T) {
		c, acs, form := login(t, "")
		form = editResponse(t, form, func(root *etree.Element) {
			removeChild(root, "Signature")
			removeChild(root.SelectElement("Assertion"), "Signature")
		})
		wantRefusal(t, post(t, c, acs, form), "not signed")
	})
	t.Run("signature by another key", func(t *testing.T) {
		c, acs, form := login(t, "other-key")
		wantRefusal(t, post(t, c, acs, form), "does not verify with the IdP certificate")
	})
	t.Run("XML signature wrapping: an extra unsigned assertion", func(t *testing.T) {
		c, acs, form := login(t, "")
		form = editResponse(t, form, func(root *etree.Element) {
			removeChild(root, "Signature") // the response signature would catch the edit; the assertion's stays valid
			signed := root.SelectElement("Assertion")
			forged := signed.Copy()
			removeChild(forged, "Signature")
			forged.CreateAttr("ID", "id-forged-"+randomHex(8))
			forged.FindElement(".//NameID").SetText("mallory@corp.test")
			root.InsertChildAt(signed.Index(), forged)
		})
		wantRefusal(t, post(t, c, acs, form), "assertions")
		if _, err := h.svc.Store.GetUserByName(ctx, "mallory@corp.test"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the forged identity got a user: %v", err)
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		c, acs, form := login(t, "wrong-audience")
		wantRefusal(t, post(t, c, acs, form), "another service provider")
	})
	t.Run("expired assertion", func(t *testing.T) {
		c, acs, form := login(t, "expired")
		wantRefusal(t, post(t, c, acs, form), "expired")
	})
	t.Run("replayed assertion", func(t *testing.T) {
		c, acs, form := login(t, "")
		if o := post(t, c, acs, form); o.code == "" {
			t.Fatalf("first post: %s", o.refusal())
		}
		wantRefusal(t, post(t, c, acs, form), "already used")
	})
	t.Run("replayed one-time code: refused, and what the first use gave is revoked", func(t *testing.T) {
		c, acs, form := login(t, "")
		o := post(t, c, acs, form)
		_, rt, _ := c.mustTokens(t, h, o)
		status, body := c.exchange(t, h, o.code, c.verifier)
		wantGrantError(t, status, body, "already used")
		status, body = refresh(t, h, rt)
		wantGrantError(t, status, body, "revoked")
	})
	t.Run("SP metadata: one HTTP-POST ACS", func(t *testing.T) {
		p := newBrowser(t).get(h.http + "/v1/sso/saml/saml/metadata")
		acs := h.http + "/v1/sso/saml/saml/acs"
		if p.status != http.StatusOK || !strings.Contains(p.body, `entityID="`+h.http+`/v1/sso/saml/saml/metadata"`) ||
			!strings.Contains(p.body, `Location="`+acs+`"`) || strings.Contains(p.body, "HTTP-Artifact") {
			t.Fatalf("metadata %d:\n%s", p.status, p.body)
		}
	})
}

// --- the CLI: login --no-browser, token, mysql, tunnel, logout ---

// cliEnv runs the real binary against one portal with a private config
// folder (where the token cache lives).
type cliEnv struct {
	*ssoEnv
	home  string
	env   []string
	cache *client.Cache
}

func newCLIEnv(t *testing.T, e *ssoEnv) *cliEnv {
	home := t.TempDir()
	return &cliEnv{ssoEnv: e, home: home, cache: &client.Cache{Path: filepath.Join(home, "portcullis", "tokens.json")},
		env: append(os.Environ(), "XDG_CONFIG_HOME="+home, "PORTCULLIS_SERVER="+e.h.http, "BROWSER=true")}
}

func (c *cliEnv) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(portcullisBin(t), args...)
	cmd.Env = c.env
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return strings.TrimSpace(out.String()), errOut.String(), err
}

// start runs the binary in the background; lines streams its output
// (stdout or stderr) line by line.
func (c *cliEnv) start(t *testing.T, stdin io.Reader, stderr bool, args ...string) (cmd *exec.Cmd, lines <-chan string, rest *lockedBuffer) {
	t.Helper()
	cmd = exec.Command(portcullisBin(t), args...)
	cmd.Env, cmd.Stdin = c.env, stdin
	rest = &lockedBuffer{}
	pr, pw := io.Pipe()
	if stderr {
		cmd.Stderr, cmd.Stdout = pw, rest
	} else {
		cmd.Stdout, cmd.Stderr = pw, rest
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); pw.Close() })
	ch := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	return cmd, ch, rest
}

// lockedBuffer collects a running command's output; tests read it while
// the command writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitLine returns the first line matching re.
func waitLine(t *testing.T, lines <-chan string, re *regexp.Regexp) []string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the command ended without printing a line matching %s", re)
			}
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			t.Fatalf("no line matching %s within 30s", re)
		}
	}
}

// cachedLogin reads the login entry of the cache, checks the file is
// 0600 and remembers its tokens.
func (c *cliEnv) cachedLogin(t *testing.T) client.Entry {
	t.Helper()
	info, err := os.Stat(c.cache.Path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token cache %s: %v %v", c.cache.Path, info, err)
	}
	e, ok := c.cache.Get(c.h.http, client.MethodLogin)
	if !ok || e.AccessToken == "" || e.RefreshToken == "" {
		t.Fatalf("no login in the cache: %+v", e)
	}
	remember(e.AccessToken)
	remember(e.RefreshToken)
	return e
}

var codeOnPage = regexp.MustCompile(`<code id="code">([A-Z0-9-]+)</code>`)

func TestCLILogin(t *testing.T) {
	e := startSSO(t)
	c := newCLIEnv(t, e)
	// No PORTCULLIS_SERVER: `login --server` names the portal once and
	// every later command finds it by itself, as the README shows.
	c.env = slices.DeleteFunc(c.env, func(kv string) bool { return strings.HasPrefix(kv, "PORTCULLIS_SERVER=") })
	h := e.h

	t.Run("login --no-browser: the code the portal shows, pasted back", func(t *testing.T) {
		stdin, paste := io.Pipe()
		cmd, lines, out := c.start(t, stdin, true, "login", "--server", h.http, "--no-browser", "--connection", "corp")
		authURL := waitLine(t, lines, regexp.MustCompile(`^\s+(http\S+)$`))[1]
		p := e.oidcAt(t, newBrowser(t), authURL, "alice", oidcHooks{})
		m := codeOnPage.FindStringSubmatch(p.body)
		if p.status != http.StatusOK || m == nil {
			t.Fatalf("the portal showed no code: %d %s", p.status, p.body)
		}
		remember(m[1])
		fmt.Fprintln(paste, strings.ToLower(m[1])) // typed by hand: case and dashes do not matter
		paste.Close()
		if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "Logged in to "+h.http+" as alice@corp.test (via corp) until") {
			t.Fatalf("portcullis login: %v\n%s", err, out.String())
		}
		c.cachedLogin(t)
	})
	t.Run("portcullis token renews an expired access token with the refresh token", func(t *testing.T) {
		old := c.cachedLogin(t)
		old.IssuedAt, old.ExpiresAt = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
		if err := c.cache.Put(old); err != nil {
			t.Fatal(err)
		}
		tok, errOut, err := c.run(t, "token")
		remember(tok)
		if err != nil || tok == old.AccessToken || strings.Count(tok, ".") != 2 {
			t.Fatalf("portcullis token: %v %s", err, errOut)
		}
		if now := c.cachedLogin(t); now.RefreshToken == old.RefreshToken || now.AccessToken != tok {
			t.Fatal("the cache does not hold the rotated tokens")
		}
		if got := queryString(t, h.open("alice@corp.test", tok), "SELECT CURRENT_USER()"); got != readerUser+"@%" {
			t.Fatalf("CURRENT_USER() = %q", got)
		}
	})
	t.Run("portcullis mysql uses the login", func(t *testing.T) {
		for i := range 2 { // the second one as a person runs it again later
			out, errOut, err := c.run(t, "mysql", "--", "--batch", "--skip-column-names", "-e", "SELECT CURRENT_USER()")
			if err != nil || out != readerUser+"@%" {
				t.Fatalf("portcullis mysql (run %d, no --server): %v %q\n%s", i+1, err, out, errOut)
			}
		}
	})
	t.Run("status: who, where, until when, which role next", func(t *testing.T) {
		out, errOut, err := c.run(t, "status")
		for _, want := range []string{"Server:       " + h.http + " (from last login)", "Logged in as: alice@corp.test via corp",
			"Token:        valid until", "Login ends:", "Next role:    reader (holds: reader"} {
			if err != nil || !strings.Contains(out, want) {
				t.Fatalf("portcullis status: %v, no %q in\n%s\n%s", err, want, out, errOut)
			}
		}
		js, _, err := c.run(t, "status", "--json")
		var rep struct { // the stable field names scripts rely on
			Server      string    `json:"server"`
			Username    string    `json:"username"`
			NextRole    string    `json:"next_role"`
			LoggedIn    bool      `json:"logged_in"`
			SessionEnds time.Time `json:"session_ends"`
		}
		if err != nil || json.Unmarshal([]byte(js), &rep) != nil || !rep.LoggedIn || rep.Server != h.http || rep.Username != "alice@corp.test" ||
			rep.NextRole != "reader" || time.Until(rep.SessionEnds) < time.Hour {
			t.Fatalf("status --json: %v %+v\n%s", err, rep, js)
		}
	})
	t.Run("whoami refuses what the proxy would refuse", func(t *testing.T) {
		for _, auth := range []string{"", "Bearer not-a-token", "Basic abc"} {
			req, _ := http.NewRequest(http.MethodGet, h.http+"/v1/whoami", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]string
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_token" || body["error_description"] == "" {
				t.Fatalf("whoami with %q: %d %v", auth, resp.StatusCode, body)
			}
		}
	})
	t.Run("PORTCULLIS_SERVER and --server still win over the remembered server", func(t *testing.T) {
		env, flag := "http://"+freeAddr(t), "http://"+freeAddr(t) // nobody listens there
		for _, tt := range []struct {
			args []string
			want string
		}{{[]string{"token", "--server", flag}, flag}, {[]string{"token"}, env}} {
			cmd := exec.Command(portcullisBin(t), tt.args...)
			cmd.Env = append(slices.Clone(c.env), "PORTCULLIS_SERVER="+env)
			if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no valid token for "+tt.want) {
				t.Fatalf("portcullis %v with PORTCULLIS_SERVER=%s: %v %s", tt.args, env, err, out)
			}
		}
	})
	t.Run("tunnel: the mariadb CLI connects with no password", func(t *testing.T) {
		_, lines, out := c.start(t, nil, false, "tunnel", "--listen", "127.0.0.1:0", "--fingerprint", h.svc.Fingerprint)
		port := waitLine(t, lines, regexp.MustCompile(`listening on 127\.0\.0\.1:(\d+) for alice@corp\.test`))[1]
		mariadb := func(user string, args ...string) (string, error) {
			base := []string{"--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", port, "-u", user, "--skip-ssl", "--batch", "--skip-column-names"}
			o, err := exec.Command("mariadb", append(base, args...)...).CombinedOutput()
			return strings.TrimSpace(string(o)), err
		}
		for _, tt := range []struct{ name, user, db, query, want string }{
			{"any user name, no password", "anyone", "", "SELECT CURRENT_USER()", readerUser + "@%"},
			{"a default database", "gui", testDB, "SELECT DATABASE(), COUNT(*) > 0 FROM items", testDB + "\t1"},
			{"several result sets (CALL)", "gui", testDB, "CALL two_results()", "1\n2"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				args := []string{"-e", tt.query}
				if tt.db != "" {
					args = append(args, tt.db)
				}
				if got, err := mariadb(tt.user, args...); err != nil || got != tt.want {
					t.Fatalf("mariadb through the tunnel: %v %q (tunnel log:\n%s)", err, got, out.String())
				}
			})
		}
		t.Run("a role the user lacks: the proxy's refusal reaches the tool", func(t *testing.T) {
			got, err := mariadb("gui/writer", "-e", "SELECT 1")
			if err == nil || !strings.Contains(got, `no role "writer" for alice@corp.test`) {
				t.Fatalf("got %v %q", err, got)
			}
		})
		t.Run("only a loopback address is accepted", func(t *testing.T) {
			_, errOut, err := c.run(t, "tunnel", "--listen", "0.0.0.0:0", "--fingerprint", h.svc.Fingerprint)
			if err == nil || !strings.Contains(errOut, "not a loopback address") {
				t.Fatalf("got %v %s", err, errOut)
			}
		})
	})
	t.Run("logout revokes the login and forgets it", func(t *testing.T) {
		rt := c.cachedLogin(t).RefreshToken
		out, errOut, err := c.run(t, "logout")
		if err != nil || !strings.Contains(out, "Logged out of "+h.http+" (alice@corp.test)") {
			t.Fatalf("portcullis logout: %v %s %s", err, out, errOut)
		}
		status, body := refresh(t, h, rt)
		wantGrantError(t, status, body, "revoked")
		if _, errOut, err := c.run(t, "token"); err == nil || !strings.Contains(errOut, "portcullis login") {
			t.Fatalf("portcullis token after logout: %v %s", err, errOut)
		}
	})
}
