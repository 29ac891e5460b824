package portal

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/store"
)

func TestPasswordRefusal(t *testing.T) {
	okta := &SSOConnection{Name: "okta", DisplayName: "Okta"}
	used := store.User{Role: AdminRole, Extra: mustJSON(map[string]any{ssoLoginKey: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)})}
	tests := []struct {
		name    string
		u       store.User
		enabled []*SSOConnection
		want    string // "" allowed, else a part of the refusal
	}{
		{"SSO off: a member's password works", store.User{Role: "reader"}, nil, ""},
		{"SSO off: even after an SSO login", used, nil, ""},
		{"SSO on: a member is sent to SSO", store.User{Role: "reader"}, []*SSOConnection{okta}, "log in with Okta (the button below, or portcullis login --connection okta)"},
		{"SSO on: an administrator before any SSO login", store.User{Role: AdminRole}, []*SSOConnection{okta}, ""},
		{"SSO on: an administrator after their first SSO login", used, []*SSOConnection{okta}, "you did on 2026-11-02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := passwordRefusal(tt.u, tt.enabled)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("passwordRefusal = %q, want %q", got, tt.want)
			}
		})
	}
}
