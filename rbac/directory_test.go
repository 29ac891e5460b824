package rbac_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/rbac"
	"github.com/portcullisdb/portcullis/store"
)

// TestDirectoryIsTheSourceOfTruth: for users SCIM provisioned, roles come
// from teams and the role attribute; token claims no longer count.
func TestDirectoryIsTheSourceOfTruth(t *testing.T) {
	ctx := t.Context()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mk := func(name, role string, active bool) store.User {
		u, err := st.CreateUser(ctx, store.User{UserName: name, Active: active, Role: role, Source: store.SourceSCIM})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	alice, bob, carol := mk("alice@example.com", "", true), mk("bob@example.com", "dba", true), mk("carol@example.com", "", false)
	dave := mk("dave@example.com", "", true)
	if _, err := st.CreateGroup(ctx, store.Group{DisplayName: "DB-Analysts", Members: []string{alice.ID, carol.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateGroup(ctx, store.Group{DisplayName: "marketing", Members: []string{dave.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutTeam(ctx, store.Team{Name: "analytics", Groups: []string{"db-analysts"}, Roles: []string{"analyst"}}); err != nil {
		t.Fatal(err)
	}
	_ = bob
	r := rbac.NewResolver(&config.Config{
		Roles:    map[string]config.Role{"analyst": {BackendUser: "ro"}, "dba": {BackendUser: "dba"}},
		Mappings: []config.Mapping{{Issuer: "corp", Groups: []string{"admins"}, Roles: []string{"dba"}}},
	}, st)
	id := func(name string, roles, groups []string) auth.Identity {
		return auth.Identity{Issuer: "corp", Username: name, Roles: roles, Groups: groups}
	}
	tests := []struct {
		name    string
		id      auth.Identity
		want    string
		wantErr string
	}{
		{"team of a directory group (names compared case-insensitively)", id("alice@example.com", nil, nil), "analyst", ""},
		{"token claims do not count for a directory user", id("alice@example.com", []string{"dba"}, []string{"admins"}), "analyst", ""},
		{"SCIM role attribute", id("bob@example.com", nil, nil), "dba", ""},
		{"deactivated user", id("carol@example.com", []string{"analyst"}, nil), "", "deactivated in the directory"},
		{"a group with no team grants nothing", id("dave@example.com", []string{"analyst"}, nil), "", "holds no role"},
		{"a user the directory does not know keeps token roles", id("erin@example.com", nil, []string{"admins"}), "dba", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := r.Resolve(ctx, tt.id, "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %+v, %v; want %q", g, err, tt.wantErr)
				}
				return
			}
			if err != nil || g.Role != tt.want {
				t.Fatalf("got %+v, %v; want %s", g, err, tt.want)
			}
		})
	}
	t.Run("store unavailable: fail closed", func(t *testing.T) {
		st.Close()
		if _, err := r.Resolve(ctx, id("erin@example.com", []string{"analyst"}, nil), ""); err == nil || !strings.Contains(err.Error(), "directory is unavailable") {
			t.Fatalf("got %v", err)
		}
	})
}

// TestDirectoryTrust: a tombstone refuses a name whatever the token
// claims, a token from before a re-provisioning is refused, and an
// external issuer speaks only for its own directory's users, never for
// a local account; portcullis' own tokens are not held to it.
func TestDirectoryTrust(t *testing.T) {
	ctx := t.Context()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	mk := func(u store.User) {
		u.Active, u.Role = true, "analyst"
		if _, err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	mk(store.User{UserName: "root@example.com", Source: store.SourceLocal})
	mk(store.User{UserName: "ann@example.com", Source: store.SourceSCIM, SourceName: "corp"})
	mk(store.User{UserName: "ent@example.com", Source: store.SourceSCIM, SourceName: "entra"})
	mk(store.User{UserName: "back@example.com", Source: store.SourceSCIM, SourceName: "corp", NotBefore: now})
	if _, err := st.PutTombstone(ctx, store.Tombstone{UserName: "gone@example.com", Source: store.SourceSCIM, SourceName: "corp"}); err != nil {
		t.Fatal(err)
	}
	r := rbac.NewResolver(&config.Config{
		Roles:   map[string]config.Role{"analyst": {BackendUser: "ro"}},
		Issuers: []config.Issuer{{Name: "corp"}},
	}, rbac.NewDirectoryCache(st, time.Minute))
	tests := []struct {
		name    string
		id      auth.Identity
		wantErr string
	}{
		{"its own directory", auth.Identity{Issuer: "corp", Username: "ann@example.com", IssuedAt: now}, ""},
		{"a deleted name, whatever the claims", auth.Identity{Issuer: "corp", Username: "gone@example.com", Roles: []string{"analyst"}},
			"gone@example.com was deleted from the directory"},
		{"a token from before the re-provisioning", auth.Identity{Issuer: "portcullis", Username: "back@example.com", IssuedAt: now.Add(-time.Minute)},
			"provisioned again"},
		{"a token from after it", auth.Identity{Issuer: "portcullis", Username: "back@example.com", IssuedAt: now.Add(time.Minute)}, ""},
		{"another directory's user", auth.Identity{Issuer: "corp", Username: "ent@example.com", IssuedAt: now},
			"ent@example.com belongs to SCIM connection entra; issuer corp does not speak for it"},
		{"a local account", auth.Identity{Issuer: "corp", Username: "root@example.com", IssuedAt: now},
			"root@example.com belongs to the local accounts; issuer corp does not speak for it"},
		{"portcullis' own token for a local account", auth.Identity{Issuer: "portcullis", Username: "root@example.com", IssuedAt: now}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Resolve(ctx, tt.id, "")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want a refusal containing %q", err, tt.wantErr)
			}
		})
	}
}
