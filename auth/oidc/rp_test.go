package oidc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/oauth2"
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
