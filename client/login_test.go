package client

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCallbackHandler(t *testing.T) {
	tests := []struct {
		name       string
		query      url.Values
		wantStatus int
		wantCode   string
		wantErr    string
		delivered  bool
	}{
		{"the code of our login", url.Values{"state": {"s-ours"}, "code": {"c1"}}, 200, "c1", "", true},
		{"another state is ignored", url.Values{"state": {"s-theirs"}, "code": {"c2"}}, 400, "", "", false},
		{"the portal's refusal", url.Values{"state": {"s-ours"}, "error": {"access_denied"}, "error_description": {"nonce does not match"}}, 403, "", "nonce does not match", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan callback, 1)
			rec := httptest.NewRecorder()
			callbackHandler("s-ours", got).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/callback?"+tt.query.Encode(), nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d", rec.Code)
			}
			select {
			case cb := <-got:
				if !tt.delivered || cb.code != tt.wantCode || (tt.wantErr != "") != (cb.err != nil) || (cb.err != nil && !strings.Contains(cb.err.Error(), tt.wantErr)) {
					t.Fatalf("callback %+v", cb)
				}
			default:
				if tt.delivered {
					t.Fatal("nothing delivered")
				}
			}
		})
	}
}

func TestAuthorizeURL(t *testing.T) {
	u, err := url.Parse(authorizeURL(LoginOptions{Server: "https://p.test/", Connection: "okta"}, "http://127.0.0.1:5/callback", "st", "verifier-verifier-verifier-verifier-verifier"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Path != "/v1/sso/authorize" || q.Get("connection") != "okta" || q.Get("code_challenge_method") != "S256" ||
		len(q.Get("code_challenge")) != 43 || strings.Contains(u.String(), "verifier-verifier") {
		t.Fatalf("authorize URL %s", u)
	}
}

func TestCacheDelete(t *testing.T) {
	c := &Cache{Path: filepath.Join(t.TempDir(), "tokens.json")}
	now := time.Now()
	c.Put(Entry{Server: "https://p.test", AccessToken: "a", RefreshToken: "r", Method: MethodLogin, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	c.Put(Entry{Server: "https://p.test", AccessToken: "g", Method: "gcp", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err := c.Delete("https://p.test/", MethodLogin); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("https://p.test", MethodLogin); ok {
		t.Fatal("the login is still cached")
	}
	if e, ok := c.Get("https://p.test", "gcp"); !ok || e.AccessToken != "g" {
		t.Fatal("another entry was lost")
	}
}

func TestCheckConnection(t *testing.T) {
	body := `{"connections":[{"name":"okta","type":"oidc"},{"name":"adfs","type":"saml"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/off/v1/sso/connections" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	tests := []struct{ server, conn, want string }{
		{srv.URL, "okta", ""},
		{srv.URL, "nope", `no login connection "nope": use --connection with one of okta, adfs`},
		{srv.URL, "", "several login connections"},
		{srv.URL + "/off", "", "no browser login configured"},
	}
	for _, tt := range tests {
		err := checkConnection(t.Context(), LoginOptions{Server: tt.server, Connection: tt.conn})
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("checkConnection(%s, %q) = %v, want %q", tt.server, tt.conn, err, tt.want)
		}
	}
}
