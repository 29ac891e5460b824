package oidc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/portcullisdb/portcullis/config"
)

func TestTruthy(t *testing.T) {
	for _, tt := range []struct {
		v    any
		want bool
	}{{true, true}, {"true", true}, {"TRUE", true}, {false, false}, {"false", false}, {nil, false}, {1, false}, {"yes", false}} {
		if got := truthy(tt.v); got != tt.want {
			t.Errorf("truthy(%#v) = %v", tt.v, got)
		}
	}
}

func TestFlatten(t *testing.T) {
	got := flatten(map[string]any{"role": "member", "groups": []any{"a", 2, "b"}, "n": 3.0, "obj": map[string]any{}})
	if strings.Join(got["role"], ",") != "member" || strings.Join(got["groups"], ",") != "a,b" || len(got) != 2 {
		t.Fatalf("flatten = %v", got)
	}
}

func TestTokenEndpointError(t *testing.T) {
	rp := &RP{cfg: Config{Name: "corp"}}
	refusal := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_grant"}
	outage := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 503}}
	tests := []struct {
		name      string
		err       error
		transient bool
		want      string
	}{
		{"the IdP says no", refusal, false, "refused to renew the session (invalid_grant)"},
		{"the IdP fails", outage, true, "unreachable or failing"},
		{"no answer", errors.New("dial tcp: connection refused"), true, "unreachable or failing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *Error
			if !errors.As(rp.tokenEndpointError("renew the session", tt.err), &e) || e.Transient != tt.transient || !strings.Contains(e.Reason, tt.want) {
				t.Fatalf("got %+v", e)
			}
		})
	}
}

func TestNewToleratesAnUnreachableIdP(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there now
	rp, err := New(context.Background(), Config{Name: "corp", Issuer: srv.URL + "/", ClientID: "c", RedirectURL: "http://127.0.0.1/cb"})
	if err != nil || rp.Ready() {
		t.Fatalf("New with the IdP down: %v (ready %v); want an RP that retries", err, rp != nil && rp.Ready())
	}
	if _, err := rp.AuthURL(context.Background(), "s", "n", "v"); err == nil || !strings.Contains(err.Error(), "cannot be reached") {
		t.Fatalf("AuthURL on an unreachable IdP: %v", err)
	}
}

func TestNewRefusesAnotherIssuer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"https://elsewhere.example/","authorization_endpoint":"x","token_endpoint":"y","jwks_uri":"z"}`))
	}))
	defer srv.Close()
	_, err := New(context.Background(), Config{Name: "corp", Issuer: srv.URL + "/", ClientID: "c", RedirectURL: "http://127.0.0.1/cb"})
	if err == nil || !strings.Contains(err.Error(), `names issuer "https://elsewhere.example/"`) {
		t.Fatalf("got %v", err)
	}
}

func TestAuthParams(t *testing.T) {
	offline := []string{"openid", "email", "offline_access"}
	tests := []struct {
		name   string
		scopes []string
		params map[string]string
		want   map[string]string // "" : absent
	}{
		{"offline_access asks for consent (OIDC Core §11)", offline, nil, map[string]string{"prompt": "consent"}},
		{"no offline_access: no prompt", []string{"openid"}, nil, map[string]string{"prompt": ""}},
		{"extra parameters are sent", offline, map[string]string{"access_type": "offline", "domain_hint": "corp.example"},
			map[string]string{"prompt": "consent", "access_type": "offline", "domain_hint": "corp.example"}},
		{"a prompt of auth_params replaces the default", offline, map[string]string{"prompt": "consent select_account"}, map[string]string{"prompt": "consent select_account"}},
		{"an empty value leaves the parameter out", offline, map[string]string{"prompt": ""}, map[string]string{"prompt": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := &RP{cfg: Config{Scopes: tt.scopes, AuthParams: tt.params}}
			cfg := oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: "https://idp.test/authorize"}, Scopes: tt.scopes}
			u, err := url.Parse(cfg.AuthCodeURL("st", rp.authParams("n", oauth2.GenerateVerifier())...))
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			for k, v := range tt.want {
				if got, ok := q[k]; (v == "" && ok) || (v != "" && (len(got) != 1 || got[0] != v)) {
					t.Errorf("%s = %q, want %q (URL %s)", k, got, v, u)
				}
			}
			if q.Get("nonce") != "n" || q.Get("code_challenge_method") != "S256" || q.Get("state") != "st" {
				t.Errorf("nonce, state or PKCE lost: %s", u)
			}
		})
	}
	t.Run("the parameters the RP owns cannot be set", func(t *testing.T) {
		for _, k := range config.ReservedAuthParams {
			_, err := New(context.Background(), Config{Name: "corp", Issuer: "http://127.0.0.1:1/", ClientID: "c", RedirectURL: "http://127.0.0.1/cb",
				AuthParams: map[string]string{k: "x"}})
			if err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("auth_params %s: %v", k, err)
			}
		}
	})
}
