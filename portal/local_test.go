package portal_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/portal"
	"github.com/portcullisdb/portcullis/store"
)

func localServer(t *testing.T, failures int) (*httptest.Server, store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	al, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	const adminToken = "unit-admin-token"
	p := portal.New(portal.Options{Audit: al, Admin: portal.AdminOptions{Token: adminToken, Store: st, Roles: []string{"reader"}},
		Local: &portal.LocalOptions{Store: st, Key: []byte(strings.Repeat("k", 32)), MFARequired: true, TrustDays: 30,
			FailuresPerMinute: failures, Issuer: "portcullis", SessionTTL: time.Hour, AccessTTL: time.Minute}})
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("POST", srv.URL+"/v1/admin/users/local", strings.NewReader(`{"user_name":"ann@example.com","role":"reader"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create local user: %v %v", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pw := regexp.MustCompile(`"password":"([^"]+)"`).FindSubmatch(body)
	return srv, st, string(pw[1])
}

func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// csrfOf loads the login page and returns its form token.
func csrfOf(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP = %q", csp)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "pc_csrf" && (!ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode) {
			t.Fatalf("the CSRF cookie must be HttpOnly and SameSite=Strict: %+v", ck)
		}
	}
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in the login form")
	}
	return string(m[1])
}

func TestLocalLoginForm(t *testing.T) {
	srv, _, pw := localServer(t, 3)
	c := browser(t)
	post := func(form url.Values) (*http.Response, string) {
		resp, err := c.PostForm(srv.URL+"/login", form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	tok := csrfOf(t, c, srv.URL)
	tests := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"no CSRF token", url.Values{"username": {"ann@example.com"}, "password": {pw}}, http.StatusForbidden, "came from another site"},
		{"wrong CSRF token", url.Values{"csrf": {tok + "x"}, "username": {"ann@example.com"}, "password": {pw}}, http.StatusForbidden, "came from another site"},
		{"unknown user", url.Values{"csrf": {tok}, "username": {"nobody@example.com"}, "password": {pw}}, http.StatusUnauthorized, "wrong user name or password"},
		{"wrong password 1", url.Values{"csrf": {tok}, "username": {"ann@example.com"}, "password": {"nope"}}, http.StatusUnauthorized, "wrong user name or password"},
		{"wrong password 2", url.Values{"csrf": {tok}, "username": {"ann@example.com"}, "password": {"nope"}}, http.StatusUnauthorized, "wrong user name or password"},
		{"wrong password 3", url.Values{"csrf": {tok}, "username": {"ann@example.com"}, "password": {"nope"}}, http.StatusUnauthorized, "wrong user name or password"},
		{"locked, even with the right password", url.Values{"csrf": {tok}, "username": {"ANN@example.com"}, "password": {pw}}, http.StatusTooManyRequests, "locked, try again in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(tt.form)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("status %d, want %d; body lacks %q:\n%s", resp.StatusCode, tt.status, tt.want, body)
			}
			if strings.Contains(body, pw) {
				t.Fatal("the page shows the password")
			}
		})
	}
}

func TestLocalLoginGoesToEnrolment(t *testing.T) {
	srv, _, pw := localServer(t, 10)
	c := browser(t)
	tok := csrfOf(t, c, srv.URL)
	resp, err := c.PostForm(srv.URL+"/login", url.Values{"csrf": {tok}, "username": {"ann@example.com"}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login/enrol" {
		t.Fatalf("first login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "pc_login" && (!ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode) {
			t.Fatalf("login state cookie flags: %+v", ck)
		}
	}
	// Without a session, /account and /console send the browser to /login.
	for _, path := range []string{"/account", "/console", "/console/sessions", "/console/audit"} {
		r, err := browser(t).Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
			t.Fatalf("GET %s without a session: %d %s", path, r.StatusCode, r.Header.Get("Location"))
		}
	}
}
