// Package storetest is the conformance suite every store engine must pass,
// as dex's storage/conformance: store's own tests run it against SQLite and
// MariaDB, and a new engine gets the same suite for free.
package storetest

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/auth/username"
	"github.com/portcullisdb/portcullis/store"
)

// Run runs the whole suite. open must return a fresh, empty, migrated
// store each time it is called, and arrange (with t.Cleanup) to close and
// drop it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"users", testUsers},
		{"user conflicts", testUserConflicts},
		{"update user", testUpdateUser},
		{"list users", testListUsers},
		{"delete user cascades", testDeleteUserCascades},
		{"groups", testGroups},
		{"group members", testGroupMembers},
		{"list groups", testListGroups},
		{"teams", testTeams},
		{"signing keys", testSigningKeys},
		{"refresh tokens", testRefreshTokens},
		{"refresh token used once under concurrency", testRefreshTokenRace},
		{"auth codes", testAuthCodes},
		{"auth code consumed once under concurrency", testAuthCodeRace},
		{"refresh token rotation", testRotateRefreshToken},
		{"refresh family race: one winner, whole family revoked", testRefreshFamilyRace},
		{"auth code redemption", testRedeemAuthCode},
		{"auth code redemption race: one winner, whole family revoked", testRedeemAuthCodeRace},
		{"scim tokens", testSCIMTokens},
		{"connection settings", testConnectionSettings},
		{"login failures", testLoginFailures},
		{"spent proofs", testSpentProofs},
		{"a proof is spent once under concurrency", testSpentProofRace},
		{"events", testEvents},
		{"concurrent events", testConcurrentEvents},
		{"ephemeral users", testEphemeralUsers},
		{"injection-looking strings", testInjectionStrings},
		{"invalid input", testInvalid},
		{"ping", func(t *testing.T, s store.Store) {
			if err := s.Ping(t.Context()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, open(t))
		})
	}
}

// --- helpers ---

func must[T any](t *testing.T, what string) func(T, error) T {
	t.Helper()
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// wantUTC fails unless every time is UTC and at microsecond precision.
func wantUTC(t *testing.T, what string, times ...time.Time) {
	t.Helper()
	for _, tm := range times {
		if tm.Location() != time.UTC {
			t.Fatalf("%s: time %v is in %v, want UTC", what, tm, tm.Location())
		}
		if tm.Nanosecond()%1000 != 0 {
			t.Fatalf("%s: time %v has sub-microsecond digits", what, tm)
		}
		if tm.IsZero() {
			t.Fatalf("%s: time is zero", what)
		}
	}
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// micro is t as the store gives it back.
func micro(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

func ptr[T any](v T) *T { return &v }

func newUser(name string) store.User {
	return store.User{
		UserName:    name,
		ExternalID:  "ext-" + name,
		DisplayName: "Display " + name,
		GivenName:   "Given",
		FamilyName:  "Family",
		Emails: []store.Email{
			{Value: name + "@example.com", Type: "work", Primary: true},
			{Value: name + "@home.example", Type: "home"},
		},
		Active: true,
		Role:   "analyst",
		Source: store.SourceSCIM,
		Extra:  json.RawMessage(`{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Data"}}`),
	}
}

// --- users ---

func testUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := newUser("Alice@Example.com")
	created := must[store.User](t, "CreateUser")(s.CreateUser(ctx, in))
	if created.ID == "" || created.Version != 1 {
		t.Fatalf("CreateUser: got id %q version %d, want an id and version 1", created.ID, created.Version)
	}
	wantUTC(t, "CreateUser", created.Created, created.Updated)
	want := in
	want.ID, want.Version, want.Created, want.Updated = created.ID, 1, created.Created, created.Updated
	wantEqual(t, "CreateUser result", created, want)

	tests := []struct {
		name string
		get  func() (store.User, error)
	}{
		{"by id", func() (store.User, error) { return s.GetUser(ctx, created.ID) }},
		{"by exact name", func() (store.User, error) { return s.GetUserByName(ctx, "Alice@Example.com") }},
		{"by lowercased name", func() (store.User, error) { return s.GetUserByName(ctx, "alice@example.com") }},
		{"by uppercased name", func() (store.User, error) { return s.GetUserByName(ctx, "ALICE@EXAMPLE.COM") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := must[store.User](t, "get")(tt.get())
			wantEqual(t, "user", got, want)
		})
	}

	missing := []struct {
		name string
		err  error
	}{
		{"get unknown id", func() error { _, err := s.GetUser(ctx, "no-such-id"); return err }()},
		{"get unknown name", func() error { _, err := s.GetUserByName(ctx, "bob@example.com"); return err }()},
		{"delete unknown", s.DeleteUser(ctx, "no-such-id")},
		{"update unknown", func() error { _, err := s.UpdateUser(ctx, newUser("ghost"), 0); return err }()},
	}
	for _, tt := range missing {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.name, tt.err, store.ErrNotFound) })
	}

	t.Run("minimal user round-trips nil fields", func(t *testing.T) {
		u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, store.User{UserName: "min", Source: store.SourceLocal}))
		got := must[store.User](t, "GetUser")(s.GetUser(ctx, u.ID))
		wantEqual(t, "minimal user", got, u)
		if got.Emails != nil || got.Extra != nil {
			t.Fatalf("minimal user: emails %v extra %q, want nil", got.Emails, got.Extra)
		}
	})
	t.Run("caller-chosen id kept", func(t *testing.T) {
		u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, store.User{ID: "fixed-id", UserName: "fixed"}))
		wantEqual(t, "id", u.ID, "fixed-id")
		must[store.User](t, "GetUser")(s.GetUser(ctx, "fixed-id"))
	})
}

func testUserConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("carol@example.com")))
	must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("Ärger@example.com")))
	tests := []struct {
		name string
		user store.User
	}{
		{"same name", newUser("carol@example.com")},
		{"differs only by case", newUser("Carol@EXAMPLE.com")},
		{"non-ASCII differs only by case", newUser("äRGER@example.com")},
		{"same id", store.User{ID: first.ID, UserName: "other@example.com"}},
		// One normalisation (auth/username): trimmed, NFKC, case-folded.
		{"leading space", newUser(" carol@example.com")},
		{"trailing space", newUser("carol@example.com ")},
		{"no-break space", newUser("\u00a0carol@example.com")},
		{"kelvin sign is k", newUser("\u212Aate@example.com")},
		{"full-width letters", newUser("ｃａｒｏｌ@example.com")},
	}
	must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("kate@example.com")))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.CreateUser(ctx, tt.user)
			wantErr(t, "CreateUser", err, store.ErrConflict)
		})
	}
	t.Run("lookup by any spelling", func(t *testing.T) {
		for _, name := range []string{" Carol@Example.com ", "ＣＡＲＯＬ@example.com"} {
			got := must[store.User](t, "GetUserByName")(s.GetUserByName(ctx, name))
			wantEqual(t, "user found by "+name, got.ID, first.ID)
		}
		got := must[store.User](t, "GetUserByName")(s.GetUserByName(ctx, "\u212Aate@example.com"))
		wantEqual(t, "kate found by the kelvin sign", got.UserName, "kate@example.com")
	})
	t.Run("stored name is trimmed", func(t *testing.T) {
		u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("  Dave@Example.com ")))
		wantEqual(t, "created", u.UserName, "Dave@Example.com")
		got := must[store.User](t, "GetUser")(s.GetUser(ctx, u.ID))
		wantEqual(t, "read back", got.UserName, "Dave@Example.com")
		u.UserName = "\u3000Dave@Example.com"
		u = must[store.User](t, "UpdateUser")(s.UpdateUser(ctx, u, u.Version))
		wantEqual(t, "updated", u.UserName, "Dave@Example.com")
	})
	for _, name := range []string{"eve@example.com\x00", "eve\v@example.com", "eve\u200b@example.com", "eve\u202e@example.com", "   "} {
		t.Run(fmt.Sprintf("refused %q", name), func(t *testing.T) {
			_, err := s.CreateUser(ctx, newUser(name))
			wantErr(t, "CreateUser", err, store.ErrInvalid)
			_, err = s.GetUserByName(ctx, name)
			wantErr(t, "GetUserByName", err, store.ErrInvalid)
			u := first
			u.UserName = name
			_, err = s.UpdateUser(ctx, u, 0)
			wantErr(t, "UpdateUser", err, store.ErrInvalid)
		})
	}
	_, total := listUsers(t, s, store.ListOptions{})
	wantEqual(t, "users after conflicts", total, 4)
}

func listUsers(t *testing.T, s store.Store, opts store.ListOptions) ([]store.User, int) {
	t.Helper()
	users, total, err := s.ListUsers(t.Context(), opts)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	return users, total
}

func testUpdateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("dave@example.com")))
	must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("erin@example.com")))

	u.DisplayName, u.Active, u.Role = "Dave D.", false, "dba"
	u.Emails = []store.Email{{Value: "dave@new.example", Primary: true}}
	u.Extra = json.RawMessage(`{"x":1}`)
	v2 := must[store.User](t, "UpdateUser")(s.UpdateUser(ctx, u, 1))
	wantEqual(t, "version after update", v2.Version, int64(2))
	wantEqual(t, "created kept", v2.Created, u.Created)
	if v2.Updated.Before(u.Updated) {
		t.Fatalf("updated went back: %v before %v", v2.Updated, u.Updated)
	}
	want := u
	want.Version, want.Updated = 2, v2.Updated
	wantEqual(t, "updated user", v2, want)
	wantEqual(t, "stored user", must[store.User](t, "GetUser")(s.GetUser(ctx, u.ID)), v2)

	tests := []struct {
		name     string
		change   func(u *store.User)
		expected int64
		err      error // nil: succeeds
	}{
		{name: "stale version", expected: 1, err: store.ErrVersionMismatch},
		{name: "future version", expected: 99, err: store.ErrVersionMismatch},
		{name: "current version", expected: 2},
		{name: "unconditional", expected: 0},
		{name: "rename to a taken name, other case", change: func(u *store.User) { u.UserName = "ERIN@example.com" }, err: store.ErrConflict},
		{name: "rename case only", change: func(u *store.User) { u.UserName = "Dave@Example.com" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := must[store.User](t, "GetUser")(s.GetUser(ctx, u.ID))
			next := cur
			if tt.change != nil {
				tt.change(&next)
			}
			got, err := s.UpdateUser(ctx, next, tt.expected)
			if tt.err != nil {
				wantErr(t, "UpdateUser", err, tt.err)
				after := must[store.User](t, "GetUser")(s.GetUser(ctx, u.ID))
				wantEqual(t, "user after a refused update", after, cur)
				return
			}
			if err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
			wantEqual(t, "version", got.Version, cur.Version+1)
		})
	}
	got := must[store.User](t, "GetUserByName")(s.GetUserByName(ctx, "DAVE@EXAMPLE.COM"))
	wantEqual(t, "renamed user name", got.UserName, "Dave@Example.com")
}

func testListUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	users, total := listUsers(t, s, store.ListOptions{})
	if len(users) != 0 || total != 0 {
		t.Fatalf("empty store: %d users, total %d", len(users), total)
	}
	var all []store.User
	for i := range 7 {
		all = append(all, must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser(fmt.Sprintf("user%d@example.com", i)))))
	}
	slices.SortFunc(all, func(a, b store.User) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	tests := []struct {
		name string
		opts store.ListOptions
		want []store.User
	}{
		{"all", store.ListOptions{}, all},
		{"first page", store.ListOptions{Limit: 3}, all[:3]},
		{"middle page", store.ListOptions{Offset: 3, Limit: 3}, all[3:6]},
		{"last page", store.ListOptions{Offset: 6, Limit: 3}, all[6:]},
		{"past the end", store.ListOptions{Offset: 10, Limit: 3}, nil},
		{"offset only", store.ListOptions{Offset: 5}, all[5:]},
		{"negative offset is zero", store.ListOptions{Offset: -1, Limit: 2}, all[:2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total := listUsers(t, s, tt.opts)
			wantEqual(t, "total", total, 7)
			wantEqual(t, "users", got, tt.want)
		})
	}
}

func testDeleteUserCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	gone := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("frank@example.com")))
	stays := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("grace@example.com")))
	g := must[store.Group](t, "CreateGroup")(s.CreateGroup(ctx, store.Group{DisplayName: "eng", Members: []string{gone.ID, stays.ID}}))
	other := must[store.Group](t, "CreateGroup")(s.CreateGroup(ctx, store.Group{DisplayName: "other", Members: []string{stays.ID}}))
	now := time.Now()
	rt := must[store.RefreshToken](t, "CreateRefreshToken")(s.CreateRefreshToken(ctx, store.RefreshToken{UserID: gone.ID, Hash: hash("rt"), ExpiresAt: now.Add(time.Hour)}))
	must[store.AuthCode](t, "CreateAuthCode")(s.CreateAuthCode(ctx, store.AuthCode{UserID: gone.ID, Hash: hash("code"), ExpiresAt: now.Add(time.Minute)}))

	if err := s.DeleteUser(ctx, gone.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"user gone", func(t *testing.T) {
			_, err := s.GetUser(ctx, gone.ID)
			wantErr(t, "GetUser", err, store.ErrNotFound)
		}},
		{"delete again", func(t *testing.T) { wantErr(t, "DeleteUser", s.DeleteUser(ctx, gone.ID), store.ErrNotFound) }},
		{"membership gone, group version bumped", func(t *testing.T) {
			got := must[store.Group](t, "GetGroup")(s.GetGroup(ctx, g.ID))
			wantEqual(t, "members", got.Members, []string{stays.ID})
			wantEqual(t, "version", got.Version, g.Version+1)
		}},
		{"other group untouched", func(t *testing.T) {
			got := must[store.Group](t, "GetGroup")(s.GetGroup(ctx, other.ID))
			wantEqual(t, "other group", got, other)
		}},
		{"groups of deleted user", func(t *testing.T) {
			got := must[[]store.Group](t, "GroupsOfUser")(s.GroupsOfUser(ctx, gone.ID))
			wantEqual(t, "groups", len(got), 0)
		}},
		{"refresh token gone", func(t *testing.T) {
			_, err := s.GetRefreshTokenByHash(ctx, rt.Hash)
			wantErr(t, "GetRefreshTokenByHash", err, store.ErrNotFound)
		}},
		{"auth code gone", func(t *testing.T) {
			_, err := s.ConsumeAuthCode(ctx, hash("code"), now)
			wantErr(t, "ConsumeAuthCode", err, store.ErrNotFound)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

// --- groups ---

func testGroups(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("a@example.com")))
	b := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("b@example.com")))
	in := store.Group{
		DisplayName: "Data Engineers",
		ExternalID:  "okta-123",
		Extra:       json.RawMessage(`{"urn:example":{"cost":"42"}}`),
		Members:     []string{b.ID, a.ID, b.ID},
	}
	g := must[store.Group](t, "CreateGroup")(s.CreateGroup(ctx, in))
	if g.ID == "" || g.Version != 1 {
		t.Fatalf("CreateGroup: id %q version %d", g.ID, g.Version)
	}
	wantUTC(t, "CreateGroup", g.Created, g.Updated)
	wantEqual(t, "members sorted and unique", g.Members, sorted(a.ID, b.ID))

	gets := []struct {
		name string
		get  func() (store.Group, error)
	}{
		{"by id", func() (store.Group, error) { return s.GetGroup(ctx, g.ID) }},
		{"by name", func() (store.Group, error) { return s.GetGroupByName(ctx, "Data Engineers") }},
		{"by name, other case", func() (store.Group, error) { return s.GetGroupByName(ctx, "data ENGINEERS") }},
	}
	for _, tt := range gets {
		t.Run(tt.name, func(t *testing.T) {
			wantEqual(t, "group", must[store.Group](t, "get")(tt.get()), g)
		})
	}

	errs := []struct {
		name string
		err  func() error
		want error
	}{
		{"duplicate name, other case", func() error {
			_, err := s.CreateGroup(ctx, store.Group{DisplayName: "DATA engineers"})
			return err
		}, store.ErrConflict},
		{"unknown member", func() error {
			_, err := s.CreateGroup(ctx, store.Group{DisplayName: "ghosts", Members: []string{"no-such-user"}})
			return err
		}, store.ErrNotFound},
		{"get unknown", func() error { _, err := s.GetGroup(ctx, "nope"); return err }, store.ErrNotFound},
		{"get unknown name", func() error { _, err := s.GetGroupByName(ctx, "nope"); return err }, store.ErrNotFound},
		{"update unknown", func() error {
			_, err := s.UpdateGroup(ctx, store.Group{ID: "nope", DisplayName: "x"}, 0)
			return err
		}, store.ErrNotFound},
		{"update stale", func() error {
			_, err := s.UpdateGroup(ctx, g, 7)
			return err
		}, store.ErrVersionMismatch},
		{"update with unknown member", func() error {
			next := g
			next.Members = []string{a.ID, "no-such-user"}
			_, err := s.UpdateGroup(ctx, next, g.Version)
			return err
		}, store.ErrNotFound},
		{"delete unknown", func() error { return s.DeleteGroup(ctx, "nope") }, store.ErrNotFound},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.name, tt.err(), tt.want) })
	}
	wantEqual(t, "group after refused changes", must[store.Group](t, "GetGroup")(s.GetGroup(ctx, g.ID)), g)
	if _, err := s.GetGroupByName(ctx, "ghosts"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a group with an unknown member was half-created: %v", err)
	}

	t.Run("update replaces members", func(t *testing.T) {
		next := g
		next.DisplayName, next.Members, next.Extra = "Data Engineering", []string{b.ID}, nil
		got := must[store.Group](t, "UpdateGroup")(s.UpdateGroup(ctx, next, g.Version))
		want := next
		want.Version, want.Updated = g.Version+1, got.Updated
		wantEqual(t, "updated group", got, want)
		wantEqual(t, "stored group", must[store.Group](t, "GetGroup")(s.GetGroup(ctx, g.ID)), got)
		got = must[store.Group](t, "UpdateGroup")(s.UpdateGroup(ctx, store.Group{ID: g.ID, DisplayName: "empty"}, 0))
		if got.Members != nil {
			t.Fatalf("members after clearing: %v", got.Members)
		}
	})
	t.Run("groups of user", func(t *testing.T) {
		must[store.Group](t, "UpdateGroup")(s.UpdateGroup(ctx, store.Group{ID: g.ID, DisplayName: "zeta", Members: []string{a.ID}}, 0))
		alpha := must[store.Group](t, "CreateGroup")(s.CreateGroup(ctx, store.Group{DisplayName: "Alpha", Members: []string{a.ID, b.ID}}))
		got := must[[]store.Group](t, "GroupsOfUser")(s.GroupsOfUser(ctx, a.ID))
		var names []string
		for _, gg := range got {
			names = append(names, gg.DisplayName)
			if gg.Members != nil {
				t.Fatalf("GroupsOfUser returned members: %v", gg.Members)
			}
		}
		wantEqual(t, "groups of a, by name", names, []string{"Alpha", "zeta"})
		got = must[[]store.Group](t, "GroupsOfUser")(s.GroupsOfUser(ctx, b.ID))
		wantEqual(t, "groups of b", len(got), 1)
		wantEqual(t, "group of b", got[0].ID, alpha.ID)
	})
	t.Run("delete", func(t *testing.T) {
		if err := s.DeleteGroup(ctx, g.ID); err != nil {
			t.Fatalf("DeleteGroup: %v", err)
		}
		_, err := s.GetGroup(ctx, g.ID)
		wantErr(t, "GetGroup after delete", err, store.ErrNotFound)
		must[store.User](t, "member survives")(s.GetUser(ctx, a.ID))
	})
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func testGroupMembers(t *testing.T, s store.Store) {
	ctx := t.Context()
	var ids []string
	for i := range 4 {
		ids = append(ids, must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser(fmt.Sprintf("m%d", i)))).ID)
	}
	g := must[store.Group](t, "CreateGroup")(s.CreateGroup(ctx, store.Group{DisplayName: "members"}))
	tests := []struct {
		name        string
		op          func() error
		err         error
		wantMembers []string
		bump        bool // the version changes
	}{
		{"add two", func() error { return s.AddMembers(ctx, g.ID, ids[0], ids[1]) }, nil, sorted(ids[0], ids[1]), true},
		{"add again is a no-op", func() error { return s.AddMembers(ctx, g.ID, ids[1], ids[0]) }, nil, sorted(ids[0], ids[1]), false},
		{"add one new one old", func() error { return s.AddMembers(ctx, g.ID, ids[1], ids[2], ids[2]) }, nil, sorted(ids[0], ids[1], ids[2]), true},
		{"add unknown user", func() error { return s.AddMembers(ctx, g.ID, ids[3], "no-such-user") }, store.ErrNotFound, sorted(ids[0], ids[1], ids[2]), false},
		{"add to unknown group", func() error { return s.AddMembers(ctx, "no-such-group", ids[3]) }, store.ErrNotFound, sorted(ids[0], ids[1], ids[2]), false},
		{"remove one and a non-member", func() error { return s.RemoveMembers(ctx, g.ID, ids[0], ids[3]) }, nil, sorted(ids[1], ids[2]), true},
		{"remove non-members is a no-op", func() error { return s.RemoveMembers(ctx, g.ID, ids[0], "no-such-user") }, nil, sorted(ids[1], ids[2]), false},
		{"remove from unknown group", func() error { return s.RemoveMembers(ctx, "no-such-group", ids[1]) }, store.ErrNotFound, sorted(ids[1], ids[2]), false},
		{"remove the rest", func() error { return s.RemoveMembers(ctx, g.ID, ids[1], ids[2]) }, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := must[store.Group](t, "GetGroup")(s.GetGroup(ctx, g.ID))
			err := tt.op()
			if tt.err != nil {
				wantErr(t, tt.name, err, tt.err)
			} else if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			after := must[store.Group](t, "GetGroup")(s.GetGroup(ctx, g.ID))
			wantEqual(t, "members", after.Members, tt.wantMembers)
			wantVersion := before.Version
			if tt.bump {
				wantVersion++
			}
			wantEqual(t, "version", after.Version, wantVersion)
		})
	}
}

func testListGroups(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("lister")))
	var all []store.Group
	for i := range 5 {
		g := store.Group{DisplayName: fmt.Sprintf("group %d", i)}
		if i%2 == 0 {
			g.Members = []string{u.ID}
		}
		all = append(all, must[store.Group](t, "CreateGroup")(s.CreateGroup(ctx, g)))
	}
	slices.SortFunc(all, func(a, b store.Group) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	tests := []struct {
		name string
		opts store.ListOptions
		want []store.Group
	}{
		{"all", store.ListOptions{}, all},
		{"page", store.ListOptions{Offset: 1, Limit: 2}, all[1:3]},
		{"tail", store.ListOptions{Offset: 4, Limit: 2}, all[4:]},
		{"past the end", store.ListOptions{Offset: 9}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total, err := s.ListGroups(ctx, tt.opts)
			if err != nil {
				t.Fatalf("ListGroups: %v", err)
			}
			wantEqual(t, "total", total, 5)
			wantEqual(t, "groups", got, tt.want)
		})
	}
}

// --- teams ---

func testTeams(t *testing.T, s store.Store) {
	ctx := t.Context()
	teams := must[[]store.Team](t, "ListTeams")(s.ListTeams(ctx))
	wantEqual(t, "no teams", len(teams), 0)

	first := must[store.Team](t, "PutTeam")(s.PutTeam(ctx, store.Team{Name: "data", Groups: []string{"Data Engineers", "Analysts"}, Roles: []string{"reader"}}))
	wantUTC(t, "PutTeam", first.Created, first.Updated)
	wantEqual(t, "team", must[store.Team](t, "GetTeam")(s.GetTeam(ctx, "data")), first)

	time.Sleep(2 * time.Millisecond)
	second := must[store.Team](t, "PutTeam")(s.PutTeam(ctx, store.Team{Name: "data", Roles: []string{"reader", "writer"}}))
	wantEqual(t, "created kept on replace", second.Created, first.Created)
	if !second.Updated.After(first.Updated) {
		t.Fatalf("updated not moved: %v then %v", first.Updated, second.Updated)
	}
	want := store.Team{Name: "data", Roles: []string{"reader", "writer"}, Created: first.Created, Updated: second.Updated}
	wantEqual(t, "replaced team", must[store.Team](t, "GetTeam")(s.GetTeam(ctx, "data")), want)

	must[store.Team](t, "PutTeam")(s.PutTeam(ctx, store.Team{Name: "admins", Groups: []string{}, Roles: []string{"dba"}}))
	teams = must[[]store.Team](t, "ListTeams")(s.ListTeams(ctx))
	var names []string
	for _, tm := range teams {
		names = append(names, tm.Name)
	}
	wantEqual(t, "teams by name", names, []string{"admins", "data"})
	wantEqual(t, "empty groups kept empty", teams[0].Groups, []string{})

	tests := []struct {
		name string
		err  error
		want error
	}{
		{"get unknown", func() error { _, err := s.GetTeam(ctx, "nope"); return err }(), store.ErrNotFound},
		{"delete", s.DeleteTeam(ctx, "data"), nil},
		{"get deleted", func() error { _, err := s.GetTeam(ctx, "data"); return err }(), store.ErrNotFound},
		{"delete again", s.DeleteTeam(ctx, "data"), store.ErrNotFound},
		{"team names are case-sensitive", func() error { _, err := s.GetTeam(ctx, "ADMINS"); return err }(), store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == nil && tt.err != nil {
				t.Fatalf("%s: %v", tt.name, tt.err)
			}
			if tt.want != nil {
				wantErr(t, tt.name, tt.err, tt.want)
			}
		})
	}
}

// --- signing keys ---

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	old := must[store.SigningKey](t, "AddSigningKey")(s.AddSigningKey(ctx, store.SigningKey{
		KID: "k1", Alg: store.AlgES256, PrivateKey: []byte{0, 1, 2, 0xff}, PublicJWK: []byte(`{"kty":"EC"}`),
	}))
	wantUTC(t, "AddSigningKey", old.Created)
	if old.ActiveUntil != nil {
		t.Fatalf("new key has ActiveUntil %v", old.ActiveUntil)
	}
	time.Sleep(2 * time.Millisecond)
	cur := must[store.SigningKey](t, "AddSigningKey")(s.AddSigningKey(ctx, store.SigningKey{
		KID: "k2", Alg: store.AlgRS256, PrivateKey: []byte("encrypted"), PublicJWK: []byte(`{"kty":"RSA"}`),
	}))
	wantEqual(t, "keys", must[[]store.SigningKey](t, "ListSigningKeys")(s.ListSigningKeys(ctx)), []store.SigningKey{old, cur})

	errs := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate kid", func() error {
			_, err := s.AddSigningKey(ctx, store.SigningKey{KID: "k1", Alg: store.AlgES256, PrivateKey: []byte("x"), PublicJWK: []byte("{}")})
			return err
		}(), store.ErrConflict},
		{"unsupported alg", func() error {
			_, err := s.AddSigningKey(ctx, store.SigningKey{KID: "k3", Alg: "HS256", PrivateKey: []byte("x"), PublicJWK: []byte("{}")})
			return err
		}(), store.ErrInvalid},
		{"retire unknown", s.RetireSigningKey(ctx, "nope", now, now), store.ErrNotFound},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.name, tt.err, tt.want) })
	}

	// k1 retired long ago and past its publishing window; k2 retired but
	// still published; k3 current.
	if err := s.RetireSigningKey(ctx, "k1", now.Add(-48*time.Hour), now.Add(-time.Hour)); err != nil {
		t.Fatalf("RetireSigningKey: %v", err)
	}
	if err := s.RetireSigningKey(ctx, "k2", now, now.Add(24*time.Hour)); err != nil {
		t.Fatalf("RetireSigningKey: %v", err)
	}
	must[store.SigningKey](t, "AddSigningKey")(s.AddSigningKey(ctx, store.SigningKey{KID: "k3", Alg: store.AlgES256, PrivateKey: []byte("p"), PublicJWK: []byte("{}")}))
	keys := must[[]store.SigningKey](t, "ListSigningKeys")(s.ListSigningKeys(ctx))
	wantEqual(t, "key count", len(keys), 3)
	wantEqual(t, "k2 active until", keys[1].ActiveUntil, ptr(micro(now)))
	wantEqual(t, "k2 retire after", keys[1].RetireAfter, micro(now.Add(24*time.Hour)))

	n := must[int64](t, "DeleteExpiredSigningKeys")(s.DeleteExpiredSigningKeys(ctx, now))
	wantEqual(t, "deleted keys", n, int64(1))
	keys = must[[]store.SigningKey](t, "ListSigningKeys")(s.ListSigningKeys(ctx))
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.KID)
	}
	wantEqual(t, "keys left", kids, []string{"k2", "k3"})
	n = must[int64](t, "DeleteExpiredSigningKeys")(s.DeleteExpiredSigningKeys(ctx, now.Add(1000*time.Hour)))
	wantEqual(t, "current key never expires", n, int64(1))
}

// --- refresh tokens ---

func testRefreshTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("rt@example.com")))
	other := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("rt2@example.com")))

	root := must[store.RefreshToken](t, "CreateRefreshToken")(s.CreateRefreshToken(ctx, store.RefreshToken{
		UserID: u.ID, Hash: hash("t1"), ClientData: json.RawMessage(`{"conn":"okta","upstream":"enc"}`), ExpiresAt: now.Add(time.Hour),
	}))
	if root.ID == "" || root.FamilyID != root.ID {
		t.Fatalf("first token of a family: id %q family %q, want the family to be the id", root.ID, root.FamilyID)
	}
	wantUTC(t, "CreateRefreshToken", root.Created, root.ExpiresAt)
	wantEqual(t, "by hash", must[store.RefreshToken](t, "GetRefreshTokenByHash")(s.GetRefreshTokenByHash(ctx, hash("t1"))), root)

	child := must[store.RefreshToken](t, "CreateRefreshToken")(s.CreateRefreshToken(ctx, store.RefreshToken{
		FamilyID: root.FamilyID, UserID: u.ID, Hash: hash("t2"), ExpiresAt: now.Add(time.Hour),
	}))
	otherFamily := must[store.RefreshToken](t, "CreateRefreshToken")(s.CreateRefreshToken(ctx, store.RefreshToken{UserID: u.ID, Hash: hash("t3"), ExpiresAt: now.Add(time.Hour)}))
	otherUser := must[store.RefreshToken](t, "CreateRefreshToken")(s.CreateRefreshToken(ctx, store.RefreshToken{UserID: other.ID, Hash: hash("t4"), ExpiresAt: now.Add(time.Hour)}))
	expired := must[store.RefreshToken](t, "CreateRefreshToken")(s.CreateRefreshToken(ctx, store.RefreshToken{UserID: other.ID, Hash: hash("t5"), ExpiresAt: now.Add(-time.Minute)}))

	errs := []struct {
		name string
		err  error
		want error
	}{
		{"unknown user", func() error {
			_, err := s.CreateRefreshToken(ctx, store.RefreshToken{UserID: "no-such-user", Hash: hash("t9"), ExpiresAt: now})
			return err
		}(), store.ErrNotFound},
		{"duplicate hash", func() error {
			_, err := s.CreateRefreshToken(ctx, store.RefreshToken{UserID: u.ID, Hash: hash("t1"), ExpiresAt: now})
			return err
		}(), store.ErrConflict},
		{"unknown hash", func() error { _, err := s.GetRefreshTokenByHash(ctx, hash("nope")); return err }(), store.ErrNotFound},
		{"mark used", s.MarkRefreshTokenUsed(ctx, root.ID, now), nil},
		{"mark used again", s.MarkRefreshTokenUsed(ctx, root.ID, now.Add(time.Second)), store.ErrConflict},
		{"mark unknown", s.MarkRefreshTokenUsed(ctx, "nope", now), store.ErrNotFound},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == nil {
				if tt.err != nil {
					t.Fatalf("%s: %v", tt.name, tt.err)
				}
				return
			}
			wantErr(t, tt.name, tt.err, tt.want)
		})
	}
	got := must[store.RefreshToken](t, "GetRefreshTokenByHash")(s.GetRefreshTokenByHash(ctx, root.Hash))
	wantEqual(t, "used at (first use kept)", got.UsedAt, ptr(micro(now)))

	t.Run("revoke family", func(t *testing.T) {
		n := must[int64](t, "RevokeRefreshFamily")(s.RevokeRefreshFamily(ctx, root.FamilyID, now))
		wantEqual(t, "revoked", n, int64(2))
		n = must[int64](t, "RevokeRefreshFamily")(s.RevokeRefreshFamily(ctx, root.FamilyID, now.Add(time.Second)))
		wantEqual(t, "revoked again", n, int64(0))
		for _, rt := range []store.RefreshToken{root, child} {
			got := must[store.RefreshToken](t, "get")(s.GetRefreshTokenByHash(ctx, rt.Hash))
			wantEqual(t, "revoked at (first revocation kept)", got.RevokedAt, ptr(micro(now)))
		}
		got := must[store.RefreshToken](t, "get")(s.GetRefreshTokenByHash(ctx, otherFamily.Hash))
		if got.RevokedAt != nil {
			t.Fatalf("other family revoked too")
		}
	})
	t.Run("revoke user", func(t *testing.T) {
		n := must[int64](t, "RevokeUserRefreshTokens")(s.RevokeUserRefreshTokens(ctx, u.ID, now))
		wantEqual(t, "revoked", n, int64(1)) // the family was revoked already
		got := must[store.RefreshToken](t, "get")(s.GetRefreshTokenByHash(ctx, otherUser.Hash))
		if got.RevokedAt != nil {
			t.Fatalf("other user's token revoked too")
		}
	})
	t.Run("delete expired", func(t *testing.T) {
		n := must[int64](t, "DeleteExpiredRefreshTokens")(s.DeleteExpiredRefreshTokens(ctx, now))
		wantEqual(t, "deleted", n, int64(1))
		_, err := s.GetRefreshTokenByHash(ctx, expired.Hash)
		wantErr(t, "expired token", err, store.ErrNotFound)
		must[store.RefreshToken](t, "live token")(s.GetRefreshTokenByHash(ctx, otherUser.Hash))
	})
}

func testRefreshTokenRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("race@example.com")))
	rt := must[store.RefreshToken](t, "CreateRefreshToken")(s.CreateRefreshToken(ctx, store.RefreshToken{UserID: u.ID, Hash: hash("race"), ExpiresAt: time.Now().Add(time.Hour)}))
	errs := race(10, func(i int) error {
		return s.MarkRefreshTokenUsed(ctx, rt.ID, time.Now().Add(time.Duration(i)*time.Millisecond))
	})
	checkOneWinner(t, errs)
}

// race runs fn n times at once and returns the errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func checkOneWinner(t *testing.T, errs []error) {
	t.Helper()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrConflict):
		default:
			t.Errorf("goroutine %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent callers won, want exactly 1", wins, len(errs))
	}
}

// --- auth codes ---

func testAuthCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("code@example.com")))
	c := must[store.AuthCode](t, "CreateAuthCode")(s.CreateAuthCode(ctx, store.AuthCode{
		Hash: hash("code-1"), UserID: u.ID, FamilyID: "fam-1", Data: json.RawMessage(`{"pkce":"abc"}`), ExpiresAt: now.Add(time.Minute),
	}))
	wantUTC(t, "CreateAuthCode", c.Created, c.ExpiresAt)
	must[store.AuthCode](t, "CreateAuthCode")(s.CreateAuthCode(ctx, store.AuthCode{Hash: hash("old"), UserID: u.ID, ExpiresAt: now.Add(-time.Second)}))

	t.Run("first use", func(t *testing.T) {
		got := must[store.AuthCode](t, "ConsumeAuthCode")(s.ConsumeAuthCode(ctx, hash("code-1"), now))
		want := c
		want.UsedAt = ptr(micro(now))
		wantEqual(t, "consumed code", got, want)
	})
	t.Run("second use returns the code with ErrConflict", func(t *testing.T) {
		got, err := s.ConsumeAuthCode(ctx, hash("code-1"), now.Add(time.Second))
		wantErr(t, "ConsumeAuthCode", err, store.ErrConflict)
		wantEqual(t, "family of the reused code", got.FamilyID, "fam-1")
		wantEqual(t, "user of the reused code", got.UserID, u.ID)
		wantEqual(t, "first use kept", got.UsedAt, ptr(micro(now)))
	})
	errs := []struct {
		name string
		hash []byte
		want error
	}{
		{"expired", hash("old"), store.ErrNotFound},
		{"unknown", hash("nope"), store.ErrNotFound},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.ConsumeAuthCode(ctx, tt.hash, now)
			wantErr(t, "ConsumeAuthCode", err, tt.want)
		})
	}
	t.Run("duplicate hash", func(t *testing.T) {
		_, err := s.CreateAuthCode(ctx, store.AuthCode{Hash: hash("code-1"), UserID: u.ID, ExpiresAt: now})
		wantErr(t, "CreateAuthCode", err, store.ErrConflict)
	})
	t.Run("unknown user", func(t *testing.T) {
		_, err := s.CreateAuthCode(ctx, store.AuthCode{Hash: hash("code-x"), UserID: "no-such-user", ExpiresAt: now})
		wantErr(t, "CreateAuthCode", err, store.ErrNotFound)
	})
	t.Run("delete expired", func(t *testing.T) {
		n := must[int64](t, "DeleteExpiredAuthCodes")(s.DeleteExpiredAuthCodes(ctx, now))
		wantEqual(t, "deleted", n, int64(1))
		_, err := s.ConsumeAuthCode(ctx, hash("code-1"), now)
		wantErr(t, "used, unexpired code kept", err, store.ErrConflict)
	})
}

func testAuthCodeRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("coderace@example.com")))
	must[store.AuthCode](t, "CreateAuthCode")(s.CreateAuthCode(ctx, store.AuthCode{Hash: hash("race"), UserID: u.ID, ExpiresAt: time.Now().Add(time.Minute)}))
	errs := race(10, func(int) error {
		_, err := s.ConsumeAuthCode(ctx, hash("race"), time.Now())
		return err
	})
	checkOneWinner(t, errs)
}

// --- rotation and redemption: the use and the next token commit together ---

func testRotateRefreshToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("rotate@example.com")))
	root := must[store.RefreshToken](t, "CreateRefreshToken")(s.CreateRefreshToken(ctx, store.RefreshToken{UserID: u.ID, Hash: hash("r1"), ExpiresAt: now.Add(time.Hour)}))

	next := must[store.RefreshToken](t, "RotateRefreshToken")(s.RotateRefreshToken(ctx, root.ID, now,
		&store.RefreshToken{Hash: hash("r2"), ClientData: json.RawMessage(`{"conn":"okta"}`), ExpiresAt: now.Add(time.Hour)}))
	wantEqual(t, "next token's family", next.FamilyID, root.FamilyID)
	wantEqual(t, "next token's user", next.UserID, u.ID)
	wantEqual(t, "next token stored", must[store.RefreshToken](t, "get")(s.GetRefreshTokenByHash(ctx, hash("r2"))), next)
	wantEqual(t, "used token marked", must[store.RefreshToken](t, "get")(s.GetRefreshTokenByHash(ctx, hash("r1"))).UsedAt, ptr(micro(now)))

	_, err := s.RotateRefreshToken(ctx, root.ID, now, &store.RefreshToken{Hash: hash("r3"), ExpiresAt: now.Add(time.Hour)})
	wantErr(t, "rotate a used token", err, store.ErrConflict)
	if _, err := s.GetRefreshTokenByHash(ctx, hash("r3")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused rotation stored its next token: %v", err)
	}
	_, err = s.RotateRefreshToken(ctx, "no-such-token", now, nil)
	wantErr(t, "rotate an unknown token", err, store.ErrNotFound)

	// A family revoked (by a sign-out, say) refuses rotation of any of
	// its tokens, and of one created in it afterwards.
	must[int64](t, "RevokeRefreshFamily")(s.RevokeRefreshFamily(ctx, root.FamilyID, now))
	_, err = s.RotateRefreshToken(ctx, next.ID, now, &store.RefreshToken{Hash: hash("r4"), ExpiresAt: now.Add(time.Hour)})
	wantErr(t, "rotate a revoked token", err, store.ErrRevoked)
	late := must[store.RefreshToken](t, "CreateRefreshToken")(s.CreateRefreshToken(ctx, store.RefreshToken{FamilyID: root.FamilyID, UserID: u.ID, Hash: hash("r5"), ExpiresAt: now.Add(time.Hour)}))
	_, err = s.RotateRefreshToken(ctx, late.ID, now, &store.RefreshToken{Hash: hash("r6"), ExpiresAt: now.Add(time.Hour)})
	wantErr(t, "rotate in a revoked family", err, store.ErrRevoked)
}

// testRefreshFamilyRace is a thief and the real client refreshing one
// token at once, as the portal's refresh handler does it: read, rotate,
// and on a reuse revoke the family. Exactly one wins, and because the
// other was a reuse the whole family ends revoked, the winner's new token
// included: it must never survive and keep rotating.
func testRefreshFamilyRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("family-race@example.com")))
	const rounds, racers = 50, 2
	for round := range rounds {
		root := must[store.RefreshToken](t, "CreateRefreshToken")(s.CreateRefreshToken(ctx, store.RefreshToken{
			UserID: u.ID, Hash: hash(fmt.Sprintf("fr-%d", round)), ExpiresAt: time.Now().Add(time.Hour)}))
		errs := race(racers, func(i int) error {
			got, err := s.GetRefreshTokenByHash(ctx, root.Hash)
			if err != nil {
				return err
			}
			if got.UsedAt == nil {
				_, err = s.RotateRefreshToken(ctx, got.ID, time.Now(), &store.RefreshToken{
					Hash: hash(fmt.Sprintf("fr-%d-%d", round, i)), ExpiresAt: time.Now().Add(time.Hour)})
				if !errors.Is(err, store.ErrConflict) {
					return err
				}
			}
			if _, rerr := s.RevokeRefreshFamily(ctx, got.FamilyID, time.Now()); rerr != nil {
				return rerr
			}
			return fmt.Errorf("reuse: %w", store.ErrConflict)
		})
		checkOneWinner(t, errs)
		for i := range racers {
			rt, err := s.GetRefreshTokenByHash(ctx, hash(fmt.Sprintf("fr-%d-%d", round, i)))
			if errors.Is(err, store.ErrNotFound) {
				continue // the loser's next token was never stored
			}
			if err != nil {
				t.Fatal(err)
			}
			if rt.RevokedAt == nil {
				t.Fatalf("round %d: the winner's new refresh token survived the family's revocation", round)
			}
		}
	}
}

func testRedeemAuthCode(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("redeem@example.com")))
	must[store.AuthCode](t, "CreateAuthCode")(s.CreateAuthCode(ctx, store.AuthCode{Hash: hash("c1"), UserID: u.ID, FamilyID: "fam-c1",
		Data: json.RawMessage(`{"pkce":"right"}`), ExpiresAt: now.Add(time.Minute)}))
	must[store.AuthCode](t, "CreateAuthCode")(s.CreateAuthCode(ctx, store.AuthCode{Hash: hash("c-old"), UserID: u.ID, ExpiresAt: now.Add(-time.Second)}))
	errWrongVerifier := errors.New("wrong verifier")
	check := func(verifier string) func(store.AuthCode) (*store.RefreshToken, error) {
		return func(c store.AuthCode) (*store.RefreshToken, error) {
			if string(c.Data) != `{"pkce":"`+verifier+`"}` {
				return nil, errWrongVerifier
			}
			return &store.RefreshToken{Hash: hash("c1-refresh-" + verifier), ExpiresAt: now.Add(time.Hour)}, nil
		}
	}

	_, err := s.RedeemAuthCode(ctx, hash("c1"), now, check("wrong"))
	if !errors.Is(err, errWrongVerifier) {
		t.Fatalf("wrong verifier: %v, want use's own error", err)
	}
	c := must[store.AuthCode](t, "RedeemAuthCode after a wrong verifier")(s.RedeemAuthCode(ctx, hash("c1"), now, check("right")))
	wantEqual(t, "used at", c.UsedAt, ptr(micro(now)))
	rt := must[store.RefreshToken](t, "first refresh token")(s.GetRefreshTokenByHash(ctx, hash("c1-refresh-right")))
	wantEqual(t, "first token's family", rt.FamilyID, "fam-c1")
	wantEqual(t, "first token's user", rt.UserID, u.ID)

	_, err = s.RedeemAuthCode(ctx, hash("c1"), now, check("wrong"))
	if !errors.Is(err, errWrongVerifier) {
		t.Fatalf("a used code with a wrong verifier: %v, want use's error (no reuse: it must not revoke)", err)
	}
	got, err := s.RedeemAuthCode(ctx, hash("c1"), now, func(store.AuthCode) (*store.RefreshToken, error) { return nil, nil })
	wantErr(t, "second use", err, store.ErrConflict)
	wantEqual(t, "family of the reused code", got.FamilyID, "fam-c1")

	t.Run("a revoked login gets no first token", func(t *testing.T) {
		must[store.AuthCode](t, "CreateAuthCode")(s.CreateAuthCode(ctx, store.AuthCode{Hash: hash("c2"), UserID: u.ID, FamilyID: "fam-c2", ExpiresAt: now.Add(time.Minute)}))
		must[store.RefreshToken](t, "CreateRefreshToken")(s.CreateRefreshToken(ctx, store.RefreshToken{FamilyID: "fam-c2", UserID: u.ID, Hash: hash("c2-old"), ExpiresAt: now.Add(time.Hour)}))
		must[int64](t, "RevokeRefreshFamily")(s.RevokeRefreshFamily(ctx, "fam-c2", now))
		_, err := s.RedeemAuthCode(ctx, hash("c2"), now, func(store.AuthCode) (*store.RefreshToken, error) {
			return &store.RefreshToken{Hash: hash("c2-new"), ExpiresAt: now.Add(time.Hour)}, nil
		})
		wantErr(t, "RedeemAuthCode", err, store.ErrRevoked)
		if _, err := s.GetRefreshTokenByHash(ctx, hash("c2-new")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a first token was stored in a revoked family: %v", err)
		}
	})
	_, err = s.RedeemAuthCode(ctx, hash("c-old"), now, check("right"))
	wantErr(t, "expired", err, store.ErrNotFound)
	_, err = s.RedeemAuthCode(ctx, hash("nope"), now, check("right"))
	wantErr(t, "unknown", err, store.ErrNotFound)
}

// testRedeemAuthCodeRace: 20 (or, in most rounds, 2: the thief and the
// client, where the window is widest) redemptions of one code at once,
// each with the right verifier. One wins; the others are reuses that
// revoke the family, and the winner's first refresh token is in it
// already.
func testRedeemAuthCodeRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("redeem-race@example.com")))
	const rounds = 40
	for round := range rounds {
		racers := 2
		if round%5 == 0 {
			racers = 20
		}
		family := fmt.Sprintf("fam-%d", round)
		code := hash(fmt.Sprintf("rc-%d", round))
		must[store.AuthCode](t, "CreateAuthCode")(s.CreateAuthCode(ctx, store.AuthCode{Hash: code, UserID: u.ID, FamilyID: family, ExpiresAt: time.Now().Add(time.Minute)}))
		errs := race(racers, func(i int) error {
			c, err := s.RedeemAuthCode(ctx, code, time.Now(), func(store.AuthCode) (*store.RefreshToken, error) {
				return &store.RefreshToken{Hash: hash(fmt.Sprintf("rc-%d-%d", round, i)), ExpiresAt: time.Now().Add(time.Hour)}, nil
			})
			if errors.Is(err, store.ErrConflict) {
				if _, rerr := s.RevokeRefreshFamily(ctx, c.FamilyID, time.Now()); rerr != nil {
					return rerr
				}
			}
			return err
		})
		checkOneWinner(t, errs)
		for i := range racers {
			rt, err := s.GetRefreshTokenByHash(ctx, hash(fmt.Sprintf("rc-%d-%d", round, i)))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if rt.RevokedAt == nil {
				t.Fatalf("round %d: the winner's refresh token survived the reuse of its code", round)
			}
		}
	}
}

// --- SCIM tokens ---

func testSCIMTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	first := must[store.SCIMToken](t, "PutSCIMToken")(s.PutSCIMToken(ctx, store.SCIMToken{Connection: "okta", Hash: hash("s1")}))
	wantUTC(t, "PutSCIMToken", first.Created)
	if first.ID == "" || first.LastUsed != nil {
		t.Fatalf("PutSCIMToken: %+v", first)
	}
	wantEqual(t, "found", must[store.SCIMToken](t, "FindSCIMToken")(s.FindSCIMToken(ctx, hash("s1"))), first)
	entra := must[store.SCIMToken](t, "PutSCIMToken")(s.PutSCIMToken(ctx, store.SCIMToken{Connection: "entra", Hash: hash("e1")}))

	rotated := must[store.SCIMToken](t, "PutSCIMToken")(s.PutSCIMToken(ctx, store.SCIMToken{Connection: "okta", Hash: hash("s2")}))
	wantEqual(t, "ListSCIMTokens", must[[]store.SCIMToken](t, "ListSCIMTokens")(s.ListSCIMTokens(ctx)), []store.SCIMToken{entra, rotated})
	tests := []struct {
		name string
		hash []byte
		want *store.SCIMToken
	}{
		{"old token gone after rotation", hash("s1"), nil},
		{"new token found", hash("s2"), &rotated},
		{"other connection untouched", hash("e1"), &entra},
		{"unknown", hash("nope"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.FindSCIMToken(ctx, tt.hash)
			if tt.want == nil {
				wantErr(t, "FindSCIMToken", err, store.ErrNotFound)
				return
			}
			if err != nil {
				t.Fatalf("FindSCIMToken: %v", err)
			}
			wantEqual(t, "token", got, *tt.want)
		})
	}
	t.Run("hash taken by another connection", func(t *testing.T) {
		_, err := s.PutSCIMToken(ctx, store.SCIMToken{Connection: "third", Hash: hash("e1")})
		wantErr(t, "PutSCIMToken", err, store.ErrConflict)
	})
	t.Run("touch", func(t *testing.T) {
		if err := s.TouchSCIMToken(ctx, rotated.ID, now); err != nil {
			t.Fatalf("TouchSCIMToken: %v", err)
		}
		got := must[store.SCIMToken](t, "FindSCIMToken")(s.FindSCIMToken(ctx, hash("s2")))
		wantEqual(t, "last used", got.LastUsed, ptr(micro(now)))
		wantErr(t, "touch unknown", s.TouchSCIMToken(ctx, "nope", now), store.ErrNotFound)
	})
	t.Run("delete", func(t *testing.T) {
		if err := s.DeleteSCIMToken(ctx, "okta"); err != nil {
			t.Fatalf("DeleteSCIMToken: %v", err)
		}
		_, err := s.FindSCIMToken(ctx, hash("s2"))
		wantErr(t, "deleted token", err, store.ErrNotFound)
		wantErr(t, "delete again", s.DeleteSCIMToken(ctx, "okta"), store.ErrNotFound)
		wantEqual(t, "ListSCIMTokens after delete", must[[]store.SCIMToken](t, "ListSCIMTokens")(s.ListSCIMTokens(ctx)), []store.SCIMToken{entra})
	})
}

// --- login failures ---

func testLoginFailures(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now().Add(-time.Second)
	n, oldest, err := s.LoginFailuresSince(ctx, "account:alice@example.com", start)
	if err != nil || n != 0 || !oldest.IsZero() {
		t.Fatalf("no failures yet: %d %v %v", n, oldest, err)
	}
	for range 3 {
		if err := s.AddLoginFailure(ctx, "account:alice@example.com"); err != nil {
			t.Fatalf("AddLoginFailure: %v", err)
		}
	}
	if err := s.AddLoginFailure(ctx, "address:192.0.2.1"); err != nil {
		t.Fatalf("AddLoginFailure: %v", err)
	}
	n, oldest, err = s.LoginFailuresSince(ctx, "account:alice@example.com", start)
	if err != nil || n != 3 || oldest.Before(start) || oldest.After(time.Now()) {
		t.Fatalf("three failures: %d, oldest %v, %v", n, oldest, err)
	}
	wantUTC(t, "LoginFailuresSince", oldest)
	if n, _, err = s.LoginFailuresSince(ctx, "ACCOUNT:alice@example.com", start); err != nil || n != 0 {
		t.Fatalf("keys are exact (the caller lowercases): %d %v", n, err)
	}
	if n, _, err = s.LoginFailuresSince(ctx, "account:alice@example.com", time.Now().Add(time.Second)); err != nil || n != 0 {
		t.Fatalf("none after now: %d %v", n, err)
	}
	if err := s.AddLoginFailure(ctx, ""); err == nil {
		t.Fatal("an empty key must be refused")
	}
}

// --- spent proofs ---

func testSpentProofs(t *testing.T, s store.Store) {
	ctx := t.Context()
	until := time.Now().Add(5 * time.Minute)
	if err := s.SpendProof(ctx, fmt.Sprintf("aws:%x", hash("proof-1")), until); err != nil {
		t.Fatalf("SpendProof: %v", err)
	}
	wantErr(t, "SpendProof again", s.SpendProof(ctx, fmt.Sprintf("aws:%x", hash("proof-1")), until), store.ErrConflict)
	if err := s.SpendProof(ctx, fmt.Sprintf("aws:%x", hash("proof-2")), until); err != nil {
		t.Fatalf("SpendProof of another proof: %v", err)
	}
	// A record past its expiry is forgotten by the next spend, so the
	// table does not grow without bound.
	if err := s.SpendProof(ctx, fmt.Sprintf("aws:%x", hash("old")), time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("SpendProof: %v", err)
	}
	if err := s.SpendProof(ctx, fmt.Sprintf("aws:%x", hash("old")), until); err != nil {
		t.Fatalf("an expired record still blocks: %v", err)
	}
	wantErr(t, "SpendProof with an empty id", s.SpendProof(ctx, "", until), store.ErrInvalid)
}

// testSpentProofRace: several nodes racing to spend one proof, exactly one
// wins.
func testSpentProofRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() { errs <- s.SpendProof(ctx, fmt.Sprintf("aws:%x", hash("raced")), time.Now().Add(time.Minute)) }()
	}
	won := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("SpendProof: %v, want nil or ErrConflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d racing spends won, want exactly 1", won, n)
	}
}

// --- connection settings ---

func testConnectionSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantEqual(t, "empty", len(must[[]store.ConnectionSetting](t, "ListConnectionSettings")(s.ListConnectionSettings(ctx))), 0)
	okta := must[store.ConnectionSetting](t, "PutConnectionSetting")(s.PutConnectionSetting(ctx,
		store.ConnectionSetting{Connection: "okta", Enabled: true, EnforceMFA: true, UpdatedBy: "root@example.com"}))
	wantUTC(t, "PutConnectionSetting", okta.Updated)
	entra := must[store.ConnectionSetting](t, "PutConnectionSetting")(s.PutConnectionSetting(ctx,
		store.ConnectionSetting{Connection: "entra", UpdatedBy: "root@example.com"}))
	wantEqual(t, "listed by name", must[[]store.ConnectionSetting](t, "ListConnectionSettings")(s.ListConnectionSettings(ctx)),
		[]store.ConnectionSetting{entra, okta})

	t.Run("replace", func(t *testing.T) {
		off := must[store.ConnectionSetting](t, "PutConnectionSetting")(s.PutConnectionSetting(ctx,
			store.ConnectionSetting{Connection: "okta", Enabled: false, EnforceMFA: true, UpdatedBy: "other@example.com"}))
		got := must[[]store.ConnectionSetting](t, "ListConnectionSettings")(s.ListConnectionSettings(ctx))
		wantEqual(t, "after replace", got, []store.ConnectionSetting{entra, off})
		if got[1].Enabled || !got[1].EnforceMFA || got[1].UpdatedBy != "other@example.com" {
			t.Fatalf("replaced setting: %+v", got[1])
		}
	})
	tests := []struct {
		name string
		c    store.ConnectionSetting
	}{
		{"empty connection", store.ConnectionSetting{UpdatedBy: "root"}},
		{"empty updated_by", store.ConnectionSetting{Connection: "okta"}},
		{"connection too long", store.ConnectionSetting{Connection: strings.Repeat("c", 256), UpdatedBy: "root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.PutConnectionSetting(ctx, tt.c)
			wantErr(t, "PutConnectionSetting", err, store.ErrInvalid)
		})
	}
}

// --- events ---

func testEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	latest := must[int64](t, "LatestEventID")(s.LatestEventID(ctx))
	wantEqual(t, "latest of an empty log", latest, int64(0))
	wantEqual(t, "events of an empty log", len(must[[]store.Event](t, "EventsSince")(s.EventsSince(ctx, 0, 10))), 0)

	kinds := []string{store.EventUserDeactivated, store.EventUserDeleted, store.EventUserRolesChanged, store.EventSessionKill, store.EventSessionKill}
	var ids []int64
	for i, kind := range kinds {
		e := store.Event{Kind: kind, Subject: fmt.Sprintf("subject-%d", i)}
		if i == 0 {
			e.Data = json.RawMessage(`{"reason":"scim active:false"}`)
		}
		ids = append(ids, must[int64](t, "AppendEvent")(s.AppendEvent(ctx, e)))
	}
	for i, id := range ids {
		if id <= 0 || (i > 0 && id <= ids[i-1]) {
			t.Fatalf("event ids not increasing and positive: %v", ids)
		}
	}
	wantEqual(t, "latest", must[int64](t, "LatestEventID")(s.LatestEventID(ctx)), ids[4])

	all := must[[]store.Event](t, "EventsSince")(s.EventsSince(ctx, 0, 0))
	wantEqual(t, "all events", len(all), 5)
	for i, e := range all {
		wantEqual(t, "id", e.ID, ids[i])
		wantEqual(t, "kind", e.Kind, kinds[i])
		wantEqual(t, "subject", e.Subject, fmt.Sprintf("subject-%d", i))
		wantUTC(t, "event created", e.Created)
	}
	wantEqual(t, "data", all[0].Data, json.RawMessage(`{"reason":"scim active:false"}`))
	if all[1].Data != nil {
		t.Fatalf("event without data came back with %q", all[1].Data)
	}

	t.Run("paging", func(t *testing.T) {
		var seen []int64
		after := int64(0)
		for range 10 {
			page := must[[]store.Event](t, "EventsSince")(s.EventsSince(ctx, after, 2))
			if len(page) == 0 {
				break
			}
			if len(page) > 2 {
				t.Fatalf("page of %d events, limit 2", len(page))
			}
			for _, e := range page {
				seen = append(seen, e.ID)
			}
			after = page[len(page)-1].ID
		}
		wantEqual(t, "paged ids", seen, ids)
	})
	t.Run("since the latest", func(t *testing.T) {
		wantEqual(t, "nothing new", len(must[[]store.Event](t, "EventsSince")(s.EventsSince(ctx, ids[4], 10))), 0)
		got := must[[]store.Event](t, "EventsSince")(s.EventsSince(ctx, ids[2], 10))
		wantEqual(t, "tail", []int64{got[0].ID, got[1].ID}, ids[3:])
	})
	t.Run("delete before", func(t *testing.T) {
		n := must[int64](t, "DeleteEventsBefore")(s.DeleteEventsBefore(ctx, time.Now().Add(-time.Hour)))
		wantEqual(t, "deleted recent events", n, int64(0))
		n = must[int64](t, "DeleteEventsBefore")(s.DeleteEventsBefore(ctx, time.Now().Add(time.Second)))
		wantEqual(t, "deleted", n, int64(5))
		wantEqual(t, "latest survives pruning", must[int64](t, "LatestEventID")(s.LatestEventID(ctx)), ids[4])
		next := must[int64](t, "AppendEvent")(s.AppendEvent(ctx, store.Event{Kind: store.EventSessionKill, Subject: "s"}))
		if next <= ids[4] {
			t.Fatalf("id %d reused after pruning (last was %d)", next, ids[4])
		}
	})
}

func testConcurrentEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 20
	ids := make([]int64, n)
	errs := race(n, func(i int) error {
		var err error
		ids[i], err = s.AppendEvent(ctx, store.Event{Kind: store.EventSessionKill, Subject: fmt.Sprint(i)})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("AppendEvent %d: %v", i, err)
		}
	}
	slices.Sort(ids)
	for i := range ids {
		wantEqual(t, "dense ids", ids[i], int64(i+1))
	}
	got := must[[]store.Event](t, "EventsSince")(s.EventsSince(ctx, 0, 0))
	wantEqual(t, "event count", len(got), n)
}

// --- ephemeral users ---

func testEphemeralUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := must[store.EphemeralUser](t, "AddEphemeralUser")(s.AddEphemeralUser(ctx, store.EphemeralUser{BackendUser: "pc_abc123", Node: "node-1", SessionID: "sess-1"}))
	wantUTC(t, "AddEphemeralUser", a.Created)
	time.Sleep(2 * time.Millisecond)
	b := must[store.EphemeralUser](t, "AddEphemeralUser")(s.AddEphemeralUser(ctx, store.EphemeralUser{BackendUser: "pc_def456", Node: "node-2", SessionID: "sess-2"}))
	wantEqual(t, "list", must[[]store.EphemeralUser](t, "ListEphemeralUsers")(s.ListEphemeralUsers(ctx)), []store.EphemeralUser{a, b})

	tests := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate", func() error {
			_, err := s.AddEphemeralUser(ctx, store.EphemeralUser{BackendUser: "pc_abc123", Node: "node-3"})
			return err
		}(), store.ErrConflict},
		{"remove", s.RemoveEphemeralUser(ctx, "pc_abc123"), nil},
		{"remove again", s.RemoveEphemeralUser(ctx, "pc_abc123"), store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == nil {
				if tt.err != nil {
					t.Fatalf("%s: %v", tt.name, tt.err)
				}
				return
			}
			wantErr(t, tt.name, tt.err, tt.want)
		})
	}
	wantEqual(t, "list after remove", must[[]store.EphemeralUser](t, "ListEphemeralUsers")(s.ListEphemeralUsers(ctx)), []store.EphemeralUser{b})
}

// --- hostile strings ---

func testInjectionStrings(t *testing.T, s store.Store) {
	ctx := t.Context()
	tests := []struct {
		name  string
		value string
	}{
		{"or 1=1", `' OR 1=1 --`},
		{"drop table", `"; DROP TABLE users; --`},
		{"backslash quote", `\'; DELETE FROM users WHERE '1'='1`},
		{"percent and underscore", `%_%`},
		{"nul and newline", "a\x00b\nc"}, // refused as a user name, kept elsewhere
		{"unicode", "Zoë 🚀 ΣΊΣΥΦΟΣ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser(tt.value)
			if _, err := username.Normalize(tt.value); err != nil {
				_, err := s.CreateUser(ctx, u)
				wantErr(t, "CreateUser with a refused user name", err, store.ErrInvalid)
				u.UserName = "injection-" + strconv.Itoa(len(tt.value))
			}
			u.DisplayName, u.Role, u.ExternalID = tt.value, tt.value, tt.value
			u.Emails = []store.Email{{Value: tt.value}}
			extra, _ := json.Marshal(map[string]string{"v": tt.value})
			u.Extra = extra
			created := must[store.User](t, "CreateUser")(s.CreateUser(ctx, u))
			got := must[store.User](t, "GetUserByName")(s.GetUserByName(ctx, u.UserName))
			wantEqual(t, "user", got, created)
			wantEqual(t, "user name verbatim", got.UserName, u.UserName)

			g := must[store.Group](t, "CreateGroup")(s.CreateGroup(ctx, store.Group{DisplayName: tt.value, ExternalID: tt.value, Members: []string{created.ID}}))
			wantEqual(t, "group", must[store.Group](t, "GetGroupByName")(s.GetGroupByName(ctx, tt.value)), g)

			team := must[store.Team](t, "PutTeam")(s.PutTeam(ctx, store.Team{Name: tt.value, Groups: []string{tt.value}, Roles: []string{tt.value}}))
			wantEqual(t, "team", must[store.Team](t, "GetTeam")(s.GetTeam(ctx, tt.value)), team)

			id := must[int64](t, "AppendEvent")(s.AppendEvent(ctx, store.Event{Kind: store.EventSessionKill, Subject: tt.value}))
			evs := must[[]store.Event](t, "EventsSince")(s.EventsSince(ctx, id-1, 1))
			wantEqual(t, "event subject", evs[0].Subject, tt.value)

			_, err := s.GetUserByName(ctx, u.UserName+"x")
			wantErr(t, "lookup of a near miss", err, store.ErrNotFound)
		})
	}
	_, total := listUsers(t, s, store.ListOptions{})
	wantEqual(t, "users table intact", total, len(tests))
}

// --- invalid input ---

func testInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	long := strings.Repeat("a", 2000)
	tests := []struct {
		name string
		err  error
	}{
		{"user without name", func() error { _, err := s.CreateUser(ctx, store.User{}); return err }()},
		{"user name too long", func() error { _, err := s.CreateUser(ctx, store.User{UserName: long}); return err }()},
		{"group without name", func() error { _, err := s.CreateGroup(ctx, store.Group{}); return err }()},
		{"team without name", func() error { _, err := s.PutTeam(ctx, store.Team{}); return err }()},
		{"signing key without kid", func() error {
			_, err := s.AddSigningKey(ctx, store.SigningKey{Alg: store.AlgES256, PrivateKey: []byte("x"), PublicJWK: []byte("{}")})
			return err
		}()},
		{"refresh token without hash", func() error {
			_, err := s.CreateRefreshToken(ctx, store.RefreshToken{UserID: "u"})
			return err
		}()},
		{"auth code without user", func() error { _, err := s.CreateAuthCode(ctx, store.AuthCode{Hash: hash("x")}); return err }()},
		{"scim token without connection", func() error { _, err := s.PutSCIMToken(ctx, store.SCIMToken{Hash: hash("x")}); return err }()},
		{"event without kind", func() error { _, err := s.AppendEvent(ctx, store.Event{}); return err }()},
		{"ephemeral user without name", func() error { _, err := s.AddEphemeralUser(ctx, store.EphemeralUser{}); return err }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.name, tt.err, store.ErrInvalid) })
	}
}
