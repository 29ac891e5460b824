package directory_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/directory"
	"github.com/portcullisdb/portcullis/store"
)

// TestEndLogin: ending a login revokes its refresh tokens, records the
// login as ended and appends the login.ended event naming it, in one
// transaction: without the event, nothing of it is written.
func TestEndLogin(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			st := e.open(t)
			d := directory.New(st, roles, nil)
			u, err := d.CreateUser(ctx, console, store.User{UserName: "lou@example.com", Active: true, Source: store.SourceSCIM, SourceName: "okta"})
			if err != nil {
				t.Fatal(err)
			}
			rt, err := st.CreateRefreshToken(ctx, store.RefreshToken{UserID: u.ID, Hash: []byte("h1"), ExpiresAt: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			self := directory.Actor{Kind: directory.ActorSelf}
			broken := directory.New(failingEvents{st}, roles, nil)
			if err := broken.EndLogin(ctx, self, u.ID, rt.FamilyID, "signed out"); err == nil {
				t.Fatal("EndLogin succeeded without its event")
			}
			if _, err := st.LoginEnded(ctx, rt.FamilyID, u.UserName, time.Now()); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the login was recorded as ended without its event: %v", err)
			}
			last, _ := st.LatestEventID(ctx)
			if err := d.EndLogin(ctx, self, u.ID, rt.FamilyID, "signed out"); err != nil {
				t.Fatal(err)
			}
			if got, _ := st.GetRefreshTokenByHash(ctx, []byte("h1")); got.RevokedAt == nil {
				t.Fatal("the login's refresh token is not revoked")
			}
			if _, err := st.LoginEnded(ctx, rt.FamilyID, u.UserName, time.Now()); err != nil {
				t.Fatalf("the login is not recorded as ended: %v", err)
			}
			events, _ := st.EventsSince(ctx, last, 0)
			var data struct {
				LoginID string `json:"login_id"`
			}
			if len(events) != 1 || events[0].Kind != store.EventLoginEnded || events[0].Subject != u.UserName ||
				json.Unmarshal(events[0].Data, &data) != nil || data.LoginID != rt.FamilyID {
				t.Fatalf("events = %+v", events)
			}
		})
	}
}

// TestEndUserLogins: only an administrator ends another person's (or a
// workload's) logins; a name without a directory user is fine.
func TestEndUserLogins(t *testing.T) {
	ctx := t.Context()
	st := engines[0].open(t)
	d := directory.New(st, roles, nil)
	if err := d.EndUserLogins(ctx, directory.Actor{Kind: directory.ActorSCIM, Name: "okta"}, "svc@example.com", "x"); !errors.Is(err, directory.ErrForbidden) {
		t.Fatalf("SCIM ended logins: %v", err)
	}
	if err := d.EndUserLogins(ctx, console, "svc@example.com", "revoked"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LoginEnded(ctx, "", "svc@example.com", time.Now().Add(-time.Minute)); err != nil {
		t.Fatalf("a token from before is not refused: %v", err)
	}
}
