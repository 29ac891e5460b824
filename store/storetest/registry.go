package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/store"
)

// testSessionRegistry: id blocks never repeat, sessions list only for
// processes that heartbeat recently, and a sweep removes silent ones.
func testSessionRegistry(t *testing.T, s store.Store) {
	ctx := t.Context()
	b1 := must[int64](t, "AllocateSessionBlock")(s.AllocateSessionBlock(ctx))
	b2 := must[int64](t, "AllocateSessionBlock")(s.AllocateSessionBlock(ctx))
	if b1 <= 0 || b2 <= b1 {
		t.Fatalf("blocks %d then %d, want growing from 1", b1, b2)
	}
	started := time.Now().Add(-time.Minute)
	for _, inst := range []int64{b1, b2} {
		if err := s.HeartbeatNode(ctx, inst, "node"); err != nil {
			t.Fatalf("HeartbeatNode: %v", err)
		}
		if err := s.HeartbeatNode(ctx, inst, "node"); err != nil { // twice: no conflict
			t.Fatalf("HeartbeatNode again: %v", err)
		}
	}
	if err := s.PutProxySessions(ctx,
		store.ProxySession{ID: 1<<30 + 1, Instance: b1, Node: "a", Identity: "ann@example.com", Role: "reader", LoginID: "L1", Started: started},
		store.ProxySession{ID: 1<<30 + 65537, Instance: b2, Node: "b", Identity: "bob@example.com", Started: started.Add(time.Second)}); err != nil {
		t.Fatalf("PutProxySessions: %v", err)
	}
	list := must[[]store.ProxySession](t, "ListProxySessions")(s.ListProxySessions(ctx, time.Now().Add(-time.Minute)))
	if len(list) != 2 || list[0].Identity != "ann@example.com" || list[0].LoginID != "L1" || list[1].Node != "b" {
		t.Fatalf("ListProxySessions = %+v", list)
	}
	if list := must[[]store.ProxySession](t, "ListProxySessions")(s.ListProxySessions(ctx, time.Now().Add(time.Minute))); len(list) != 0 {
		t.Fatalf("sessions of nodes silent since then are listed: %+v", list)
	}
	if err := s.RemoveProxySessions(ctx, 1<<30+65537); err != nil {
		t.Fatalf("RemoveProxySessions: %v", err)
	}
	if n := must[int64](t, "SweepNodes")(s.SweepNodes(ctx, time.Now().Add(time.Minute))); n != 2 {
		t.Fatalf("SweepNodes removed %d nodes, want 2", n)
	}
	if err := s.HeartbeatNode(ctx, b1, "node"); err != nil {
		t.Fatal(err)
	}
	if list := must[[]store.ProxySession](t, "ListProxySessions")(s.ListProxySessions(ctx, time.Time{})); len(list) != 0 {
		t.Fatalf("a swept node's sessions survived: %+v", list)
	}
}

// testLoginEnds: an ended login refuses its id whatever the time; a
// user's cutoff refuses tokens issued before it (the same second
// included) and not after.
func testLoginEnds(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.LoginEnded(ctx, "L1", "Ann@example.com", time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("nothing ended yet: %v", err)
	}
	must[store.LoginEnd](t, "PutLoginEnd")(s.PutLoginEnd(ctx, store.LoginEnd{LoginID: "L1", UserName: "ann@example.com", Reason: "signed out"}))
	if e, err := s.LoginEnded(ctx, "L1", "ann@example.com", time.Now().Add(time.Hour)); err != nil || e.LoginID != "L1" || e.Reason != "signed out" {
		t.Fatalf("ended login: %+v %v", e, err)
	}
	if _, err := s.LoginEnded(ctx, "L2", "ann@example.com", time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another login of the user: %v", err)
	}
	cut := must[store.LoginEnd](t, "PutLoginEnd")(s.PutLoginEnd(ctx, store.LoginEnd{UserName: "Bob@example.com", Reason: "revoked"}))
	for _, tt := range []struct {
		iat     time.Time
		refused bool
	}{
		{cut.At.Add(-time.Hour), true},
		{cut.At.Truncate(time.Second), true},
		{time.Time{}, true},
		{cut.At.Truncate(time.Second).Add(time.Second), false},
	} {
		_, err := s.LoginEnded(ctx, "", "bob@EXAMPLE.com", tt.iat)
		if refused := err == nil; refused != tt.refused {
			t.Errorf("token issued at %v: refused %v (%v), want %v", tt.iat, refused, err, tt.refused)
		}
	}
}
