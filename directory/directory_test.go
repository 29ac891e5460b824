package directory_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/directory"
	"github.com/portcullisdb/portcullis/store"
	"github.com/portcullisdb/portcullis/store/storetest"
)

var roles = []string{"dba", "reader"}

// engines open a fresh store of each engine.
var engines = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store {
		return storetest.OpenOrFail(t, func(ctx context.Context) (*store.DB, error) {
			return store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "portcullis.db"))
		})
	}},
	{"mariadb", func(t *testing.T) store.Store {
		dsn := storetest.MySQLDatabase(t, "pcdir")
		return storetest.OpenOrFail(t, func(ctx context.Context) (*store.DB, error) { return store.OpenMySQL(ctx, dsn) })
	}},
}

// failingEvents fails every event insert made in an Update.
type failingEvents struct{ store.Store }

func (f failingEvents) Update(ctx context.Context, fn func(tx store.Store) error) error {
	return f.Store.Update(ctx, func(tx store.Store) error { return fn(eventsDown{tx}) })
}

type eventsDown struct{ store.Store }

func (eventsDown) AppendEvent(context.Context, store.Event) (int64, error) {
	return 0, errors.New("event log unavailable")
}

var console = directory.Actor{Kind: directory.ActorConsole, Name: "root@example.com"}

// TestWriteAndEventTogether: when the event cannot be written, the
// change that implies it is not written either, on both engines.
func TestWriteAndEventTogether(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			st := e.open(t)
			u, err := directory.New(st, roles, nil).CreateUser(ctx, console, store.User{UserName: "eve@example.com", Active: true, Source: store.SourceSCIM, SourceName: "okta"})
			if err != nil {
				t.Fatal(err)
			}
			broken := directory.New(failingEvents{st}, roles, nil)
			if _, err := broken.SetActive(ctx, console, u.ID, false); err == nil {
				t.Fatal("SetActive succeeded with the event log down")
			}
			if _, _, err := broken.DeleteUser(ctx, console, u.ID, nil); err == nil {
				t.Fatal("DeleteUser succeeded with the event log down")
			}
			got, err := st.GetUser(ctx, u.ID)
			if err != nil || !got.Active {
				t.Fatalf("after failed writes the user is %+v (%v): want it active and present", got, err)
			}
			if _, err := st.GetTombstone(ctx, u.UserName); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a failed delete left a tombstone: %v", err)
			}
			ok := directory.New(st, roles, nil)
			if _, err := ok.SetActive(ctx, console, u.ID, false); err != nil {
				t.Fatal(err)
			}
			events, _ := st.EventsSince(ctx, 0, 10)
			if len(events) != 1 || events[0].Kind != store.EventUserDeactivated {
				t.Fatalf("events = %+v, want one deactivation", events)
			}
		})
	}
}

func TestCheckRole(t *testing.T) {
	d := directory.New(nil, roles, nil)
	tests := []struct {
		name  string
		actor directory.Actor
		role  string
		want  error
	}{
		{"scim, configured", directory.Actor{Kind: directory.ActorSCIM, Name: "okta"}, "dba", nil},
		{"scim, none", directory.Actor{Kind: directory.ActorSCIM, Name: "okta"}, "", nil},
		{"scim, administrator", directory.Actor{Kind: directory.ActorSCIM, Name: "okta"}, directory.AdminRole, directory.ErrForbidden},
		{"scim, unknown", directory.Actor{Kind: directory.ActorSCIM, Name: "okta"}, "root", directory.ErrInvalid},
		{"sso, administrator", directory.Actor{Kind: directory.ActorSSO, Name: "corp"}, directory.AdminRole, directory.ErrForbidden},
		{"console, administrator", console, directory.AdminRole, nil},
		{"admin API, administrator", directory.Actor{Kind: directory.ActorAdminAPI}, directory.AdminRole, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.CheckRole(tt.actor, tt.role)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("CheckRole = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), "dba, reader") {
				t.Fatalf("the refusal does not name the allowed roles: %v", err)
			}
		})
	}
}

func TestSpeaksFor(t *testing.T) {
	corp := directory.Speaker{Kind: store.SourceSSO, Name: "corp", Directories: []string{"okta"}}
	tests := []struct {
		name string
		sp   directory.Speaker
		u    store.User
		want string // "" allowed, else a part of the refusal
	}{
		{"its own login's user", corp, store.User{UserName: "a@x", Source: store.SourceSSO, SourceName: "corp"}, ""},
		{"its linked directory", corp, store.User{UserName: "a@x", Source: store.SourceSCIM, SourceName: "okta"}, ""},
		{"another directory", corp, store.User{UserName: "a@x", Source: store.SourceSCIM, SourceName: "entra"},
			"a@x belongs to SCIM connection entra; SSO connection corp does not speak for it"},
		{"another connection's login", corp, store.User{UserName: "a@x", Source: store.SourceSSO, SourceName: "other"},
			"a@x belongs to SSO connection other; SSO connection corp does not speak for it"},
		{"a local administrator", corp, store.User{UserName: "root@x", Source: store.SourceLocal, Role: directory.AdminRole},
			"root@x belongs to the local accounts (an administrator); SSO connection corp does not speak for it"},
		{"a local account, linked", directory.Speaker{Kind: store.SourceSSO, Name: "corp", LocalAccounts: true},
			store.User{UserName: "root@x", Source: store.SourceLocal, Role: directory.AdminRole}, ""},
		{"an issuer never for a local account", directory.Speaker{Kind: store.SourceIssuer, Name: "corp", LocalAccounts: true},
			store.User{UserName: "root@x", Source: store.SourceLocal}, "issuer corp does not speak for it"},
		{"outside its domains", directory.Speaker{Kind: store.SourceIssuer, Name: "corp", Directories: []string{"okta"}, Domains: []string{"corp.test"}},
			store.User{UserName: "a@evil.test", Source: store.SourceSCIM, SourceName: "okta"}, "outside the user-name domains of issuer corp"},
		{"inside its domains", directory.Speaker{Kind: store.SourceIssuer, Name: "corp", Directories: []string{"okta"}, Domains: []string{"corp.test"}},
			store.User{UserName: "a@Corp.Test", Source: store.SourceSCIM, SourceName: "okta"}, ""},
		{"a user from before sources, by an SSO connection", corp, store.User{UserName: "old@x", Source: store.SourceSSO}, ""},
		{"a SCIM user from before sources, by an SSO connection", corp, store.User{UserName: "old@x", Source: store.SourceSCIM}, ""},
		{"a user from before sources, never by an issuer", directory.Speaker{Kind: store.SourceIssuer, Name: "ci", Directories: []string{"ci"}},
			store.User{UserName: "old@x", Source: store.SourceSSO}, "issuer ci does not speak for it"},
		{"a SCIM user from before sources, never by an issuer", directory.Speaker{Kind: store.SourceIssuer, Name: "ci", Directories: []string{"ci"}},
			store.User{UserName: "old@x", Source: store.SourceSCIM}, "issuer ci does not speak for it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := directory.SpeaksFor(tt.sp, tt.u)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, directory.ErrForbidden)):
				t.Fatalf("got %v, want a refusal containing %q", err, tt.want)
			}
		})
	}
}

func TestSSOLogin(t *testing.T) {
	ctx := t.Context()
	st := engines[0].open(t)
	d := directory.New(st, roles, nil)
	a := directory.Speaker{Kind: store.SourceSSO, Name: "a"}
	b := directory.Speaker{Kind: store.SourceSSO, Name: "b"}

	u, err := d.SSOLogin(ctx, a, directory.Login{UserName: "ann@example.com", Role: "reader", SetRole: true})
	if err != nil || u.Source != store.SourceSSO || u.SourceName != "a" || u.Role != "reader" {
		t.Fatalf("first login through a: %+v %v", u, err)
	}
	if _, err := d.SSOLogin(ctx, b, directory.Login{UserName: "ann@example.com"}); !errors.Is(err, directory.ErrForbidden) ||
		!strings.Contains(err.Error(), "SSO connection a") || !strings.Contains(err.Error(), "SSO connection b") {
		t.Fatalf("b logging in a's user: %v, want a refusal naming both", err)
	}
	// A role claim never makes an administrator, nor unmakes one.
	if u, err := d.SSOLogin(ctx, a, directory.Login{UserName: "max@example.com", Role: directory.AdminRole, SetRole: true}); err != nil || u.Role != "" {
		t.Fatalf("a role claim of administrator: %+v %v", u, err)
	}
	if _, err := d.SetRole(ctx, console, u.ID, directory.AdminRole); err != nil {
		t.Fatal(err)
	}
	if got, err := d.SSOLogin(ctx, a, directory.Login{UserName: "ann@example.com", Role: "reader", SetRole: true}); err != nil || got.Role != directory.AdminRole {
		t.Fatalf("an administrator's SSO login with role claim reader: %+v %v", got, err)
	}
	// SCIM cannot grant it either.
	if _, err := d.SetRole(ctx, directory.Actor{Kind: directory.ActorSCIM, Name: "a"}, u.ID, directory.AdminRole); !errors.Is(err, directory.ErrForbidden) {
		t.Fatalf("SCIM granting administrator: %v", err)
	}
	// Deleted: refused until provisioned again.
	if _, _, err := d.DeleteUser(ctx, console, u.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SSOLogin(ctx, a, directory.Login{UserName: "ann@example.com"}); !errors.Is(err, directory.ErrDeleted) ||
		err.Error() != "ann@example.com was deleted from the directory" {
		t.Fatalf("login of a deleted user: %v", err)
	}
}

func TestCheckToken(t *testing.T) {
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	u := store.User{UserName: "ann@example.com", NotBefore: at}
	if err := directory.CheckToken(u, at.Add(-time.Second)); !errors.Is(err, directory.ErrDeleted) {
		t.Fatalf("a token from before the re-provisioning: %v", err)
	}
	if err := directory.CheckToken(u, at.Add(time.Second)); err != nil {
		t.Fatalf("a token from after: %v", err)
	}
	if err := directory.CheckToken(store.User{}, time.Time{}); err != nil {
		t.Fatalf("a user never deleted: %v", err)
	}
}

// TestRenameKeepsNamesRefused: a rename leaves a tombstone on the old
// name (its tokens must not fall back to their claims), and taking a
// deleted name refuses that name's old tokens.
func TestRenameKeepsNamesRefused(t *testing.T) {
	ctx := t.Context()
	st := engines[0].open(t)
	d := directory.New(st, roles, nil)
	scim := directory.Actor{Kind: directory.ActorSCIM, Name: "okta"}
	gone, err := d.CreateUser(ctx, scim, store.User{UserName: "gone@example.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.DeleteUser(ctx, scim, gone.ID, nil); err != nil {
		t.Fatal(err)
	}
	u, err := d.CreateUser(ctx, scim, store.User{UserName: "old@example.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	_, renamed, _, err := d.UpdateUser(ctx, scim, u.ID, func(cur store.User) (store.User, bool, error) {
		cur.UserName = "gone@example.com"
		return cur, false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if renamed.NotBefore.IsZero() {
		t.Fatal("taking a deleted name kept the name's old tokens valid (NotBefore unset)")
	}
	if _, err := st.GetTombstone(ctx, "gone@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the taken name kept its tombstone: %v", err)
	}
	if _, err := st.GetTombstone(ctx, "old@example.com"); err != nil {
		t.Fatalf("the old name has no tombstone: %v", err)
	}
}
