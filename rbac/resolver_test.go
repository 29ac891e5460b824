package rbac_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/rbac"
)

func TestResolve(t *testing.T) {
	cfg := &config.Config{
		Roles: map[string]config.Role{
			"analyst": {BackendUser: "ro_analyst"},
			"dba":     {BackendUser: "dba_user"},
			"etl":     {BackendUser: "etl_user"},
		},
		Mappings: []config.Mapping{
			{Issuer: "corp", Groups: []string{"db-analysts"}, Roles: []string{"analyst"}},
			{Issuer: "corp", Groups: []string{"dbas"}, Roles: []string{"dba", "analyst"}},
			{Issuer: "ci", Roles: []string{"etl"}}, // every identity of issuer ci
		},
		DefaultRoleOrder: []string{"analyst", "dba"},
	}
	r := rbac.NewResolver(cfg, nil)
	id := func(issuer string, groups, roles []string) auth.Identity {
		return auth.Identity{Issuer: issuer, Username: "alice@example.com", Groups: groups, Roles: roles}
	}
	tests := []struct {
		name      string
		id        auth.Identity
		requested string
		wantRole  string
		wantErr   string
	}{
		{"group mapping", id("corp", []string{"db-analysts"}, nil), "", "analyst", ""},
		{"default order picks analyst over dba", id("corp", []string{"dbas"}, nil), "", "analyst", ""},
		{"requested role held", id("corp", []string{"dbas"}, nil), "dba", "dba", ""},
		{"roles claim", id("corp", nil, []string{"dba"}), "", "dba", ""},
		{"roles claim naming an unconfigured role is ignored", id("corp", nil, []string{"superuser"}), "", "", "holds no role"},
		{"mapping of another issuer does not apply", id("other", []string{"db-analysts"}, nil), "", "", "holds no role"},
		{"mapping without groups covers the issuer", id("ci", nil, nil), "", "etl", ""},
		{"requested role not held", id("corp", []string{"db-analysts"}, nil), "dba", "", `no role "dba" for alice@example.com (holds: analyst)`},
		{"requested role not configured", id("corp", []string{"db-analysts"}, nil), "root", "", `no role "root" is configured`},
		{"several roles, none in the default order", id("ci", nil, []string{"dba"}), "", "dba", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := r.Resolve(t.Context(), tt.id, tt.requested)
			if tt.wantErr != "" {
				var de *auth.DeniedError
				if !errors.As(err, &de) || !strings.Contains(de.Reason, tt.wantErr) {
					t.Fatalf("got %v, want a denial containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || g.Role != tt.wantRole || g.BackendUser != cfg.Roles[tt.wantRole].BackendUser {
				t.Fatalf("got %+v, %v; want role %s", g, err, tt.wantRole)
			}
		})
	}
}

func TestResolveSeveralRolesWithoutOrderAsksToPick(t *testing.T) {
	r := rbac.NewResolver(&config.Config{
		Roles:    map[string]config.Role{"a": {BackendUser: "a"}, "b": {BackendUser: "b"}},
		Mappings: []config.Mapping{{Issuer: "corp", Roles: []string{"a", "b"}}},
	}, nil)
	_, err := r.Resolve(t.Context(), auth.Identity{Issuer: "corp", Username: "bob"}, "")
	if err == nil || !strings.Contains(err.Error(), "connect as bob/ROLE") {
		t.Fatalf("got %v, want a hint to pick a role", err)
	}
}
