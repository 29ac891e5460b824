package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/store"
)

// errInjected is the failure the outbox tests inject.
var errInjected = errors.New("injected failure")

// failingEvents is a transaction whose event inserts fail after the row
// went in: what a crash or a lost connection between the insert and the
// commit would leave.
type failingEvents struct{ store.Store }

func (f failingEvents) AppendEvent(ctx context.Context, e store.Event) (int64, error) {
	if _, err := f.Store.AppendEvent(ctx, e); err != nil {
		return 0, err
	}
	return 0, errInjected
}

// testOutbox: a user change and its event commit together, or neither
// does, whatever fails.
func testOutbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("outbox")))
	latest := must[int64](t, "LatestEventID")(s.LatestEventID(ctx))

	deactivate := func(tx store.Store) error {
		cur, err := tx.GetUser(ctx, u.ID)
		if err != nil {
			return err
		}
		cur.Active = false
		if _, err := tx.UpdateUser(ctx, cur, cur.Version); err != nil {
			return err
		}
		_, err = tx.AppendEvent(ctx, store.Event{Kind: store.EventUserDeactivated, Subject: cur.UserName})
		return err
	}

	// The event insert fails: the user change rolls back with it.
	err := s.Update(ctx, func(tx store.Store) error { return deactivate(failingEvents{tx}) })
	wantErr(t, "Update with a failing event insert", err, errInjected)
	got := must[store.User](t, "GetUser")(s.GetUser(ctx, u.ID))
	if !got.Active || got.Version != u.Version {
		t.Fatalf("after a failed event insert the user is active=%v version=%d, want the change rolled back (active, version %d)", got.Active, got.Version, u.Version)
	}
	if ev := must[[]store.Event](t, "EventsSince")(s.EventsSince(ctx, latest, 10)); len(ev) != 0 {
		t.Fatalf("after a failed Update the log has %d new events, want none", len(ev))
	}
	// A refused event (no kind) rolls back the same way.
	err = s.Update(ctx, func(tx store.Store) error {
		if err := deactivate(tx); err != nil {
			return err
		}
		_, err := tx.AppendEvent(ctx, store.Event{})
		return err
	})
	wantErr(t, "Update with an invalid event", err, store.ErrInvalid)
	if got := must[store.User](t, "GetUser")(s.GetUser(ctx, u.ID)); !got.Active {
		t.Fatal("an Update whose second event was refused left the user deactivated")
	}

	// Both succeed: both are there.
	if err := s.Update(ctx, deactivate); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := must[store.User](t, "GetUser")(s.GetUser(ctx, u.ID)); got.Active {
		t.Fatal("the committed Update left the user active")
	}
	ev := must[[]store.Event](t, "EventsSince")(s.EventsSince(ctx, latest, 10))
	if len(ev) != 1 || ev[0].Kind != store.EventUserDeactivated || ev[0].Subject != u.UserName {
		t.Fatalf("events after the committed Update: %+v, want one %s of %s", ev, store.EventUserDeactivated, u.UserName)
	}

	// A method that fails inside Update undoes only itself: the
	// transaction goes on and commits the rest.
	err = s.Update(ctx, func(tx store.Store) error {
		if _, err := tx.CreateUser(ctx, newUser("Outbox")); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateUser of a taken name inside Update: %v, want ErrConflict", err)
		}
		_, err := tx.CreateUser(ctx, newUser("outbox-2"))
		return err
	})
	if err != nil {
		t.Fatalf("Update after a failed step: %v", err)
	}
	must[store.User](t, "GetUserByName")(s.GetUserByName(ctx, "outbox-2"))
}

func testTombstones(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetTombstone(ctx, "gone@example.com")
	wantErr(t, "GetTombstone of a name never deleted", err, store.ErrNotFound)
	before := time.Now().Add(-time.Second)
	put := must[store.Tombstone](t, "PutTombstone")(s.PutTombstone(ctx, store.Tombstone{UserName: "Gone@Example.com", Source: store.SourceSCIM, SourceName: "okta"}))
	if put.Deleted.Before(before) {
		t.Fatalf("Deleted = %v, want now", put.Deleted)
	}
	got := must[store.Tombstone](t, "GetTombstone")(s.GetTombstone(ctx, "gone@EXAMPLE.com"))
	wantEqual(t, "tombstone", got, put)
	must[store.Tombstone](t, "PutTombstone again")(s.PutTombstone(ctx, store.Tombstone{UserName: "gone@example.com", Source: store.SourceSSO, SourceName: "b"}))
	if got := must[store.Tombstone](t, "GetTombstone")(s.GetTombstone(ctx, "gone@example.com")); got.SourceName != "b" {
		t.Fatalf("a second PutTombstone kept %+v", got)
	}
	if err := s.DeleteTombstone(ctx, "GONE@example.com"); err != nil {
		t.Fatalf("DeleteTombstone: %v", err)
	}
	_, err = s.GetTombstone(ctx, "gone@example.com")
	wantErr(t, "GetTombstone after DeleteTombstone", err, store.ErrNotFound)
	wantErr(t, "DeleteTombstone again", s.DeleteTombstone(ctx, "gone@example.com"), store.ErrNotFound)
}

func testUserSource(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := newUser("sourced")
	in.SourceName = "okta"
	nb := time.Now().Add(-time.Minute)
	in.NotBefore = nb
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, in))
	got := must[store.User](t, "GetUser")(s.GetUser(ctx, u.ID))
	wantEqual(t, "source name", got.SourceName, "okta")
	wantEqual(t, "not before", got.NotBefore, micro(nb))
	got.SourceName, got.NotBefore = "entra", time.Time{}
	got = must[store.User](t, "UpdateUser")(s.UpdateUser(ctx, got, got.Version))
	got = must[store.User](t, "GetUser")(s.GetUser(ctx, u.ID))
	if got.SourceName != "entra" || !got.NotBefore.IsZero() {
		t.Fatalf("after update: source name %q, not before %v", got.SourceName, got.NotBefore)
	}
	g := must[store.Group](t, "CreateGroup")(s.CreateGroup(ctx, store.Group{DisplayName: "g-okta", Connection: "okta", Members: []string{u.ID}}))
	wantEqual(t, "group connection", must[store.Group](t, "GetGroup")(s.GetGroup(ctx, g.ID)).Connection, "okta")
	wantEqual(t, "group connection from GroupsOfUser", must[[]store.Group](t, "GroupsOfUser")(s.GroupsOfUser(ctx, u.ID))[0].Connection, "okta")
}

func testLocalCredentials(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := must[store.User](t, "CreateUser")(s.CreateUser(ctx, newUser("local")))
	_, err := s.GetLocalCredentials(ctx, u.ID)
	wantErr(t, "GetLocalCredentials of none", err, store.ErrNotFound)
	c := must[store.LocalCredentials](t, "PutLocalCredentials")(s.PutLocalCredentials(ctx, store.LocalCredentials{UserID: u.ID, Sealed: []byte("v1")}, 0))
	wantEqual(t, "version", c.Version, int64(1))
	_, err = s.PutLocalCredentials(ctx, store.LocalCredentials{UserID: u.ID, Sealed: []byte("stale")}, 7)
	wantErr(t, "PutLocalCredentials with a stale version", err, store.ErrVersionMismatch)
	c = must[store.LocalCredentials](t, "PutLocalCredentials v2")(s.PutLocalCredentials(ctx, store.LocalCredentials{UserID: u.ID, Sealed: []byte("v2")}, 1))
	got := must[store.LocalCredentials](t, "GetLocalCredentials")(s.GetLocalCredentials(ctx, u.ID))
	if string(got.Sealed) != "v2" || got.Version != 2 {
		t.Fatalf("got %q version %d", got.Sealed, got.Version)
	}
	_, err = s.PutLocalCredentials(ctx, store.LocalCredentials{UserID: "nobody", Sealed: []byte("x")}, 0)
	wantErr(t, "PutLocalCredentials of an unknown user", err, store.ErrNotFound)
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetLocalCredentials(ctx, u.ID)
	wantErr(t, "GetLocalCredentials after DeleteUser", err, store.ErrNotFound)
}
