package rbac

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/store"
)

// countingDirectory is the real store, counting the reads that reach it.
type countingDirectory struct {
	Directory
	reads atomic.Int64
}

func (c *countingDirectory) GetUserByName(ctx context.Context, name string) (store.User, error) {
	c.reads.Add(1)
	return c.Directory.GetUserByName(ctx, name)
}

func (c *countingDirectory) GroupsOfUser(ctx context.Context, id string) ([]store.Group, error) {
	c.reads.Add(1)
	return c.Directory.GroupsOfUser(ctx, id)
}

func (c *countingDirectory) ListTeams(ctx context.Context) ([]store.Team, error) {
	c.reads.Add(1)
	return c.Directory.ListTeams(ctx)
}

// TestDirectoryCache: a repeated connect reads the store not at all; an
// Invalidate (what the event watcher calls before applying a batch) makes
// a deactivation count at once; entries age out after the ttl; and store
// errors are not cached, so a broken store still fails closed.
func TestDirectoryCache(t *testing.T) {
	ctx := t.Context()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	alice, err := st.CreateUser(ctx, store.User{UserName: "alice@example.com", Active: true, Source: store.SourceSCIM})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateGroup(ctx, store.Group{DisplayName: "analysts", Members: []string{alice.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutTeam(ctx, store.Team{Name: "analytics", Groups: []string{"analysts"}, Roles: []string{"analyst"}}); err != nil {
		t.Fatal(err)
	}
	counted := &countingDirectory{Directory: st}
	cache := NewDirectoryCache(counted, time.Second)
	now := time.Now()
	cache.now = func() time.Time { return now }
	r := NewResolver(&config.Config{Roles: map[string]config.Role{"analyst": {BackendUser: "ro"}}}, cache)
	id := auth.Identity{Issuer: "corp", Username: "Alice@Example.com"}
	resolve := func() error {
		_, err := r.Resolve(ctx, id, "")
		return err
	}

	if err := resolve(); err != nil {
		t.Fatal(err)
	}
	first := counted.reads.Load()
	if first != 3 {
		t.Fatalf("first resolve read the store %d times, want 3 (user, groups, teams)", first)
	}
	for range 5 {
		if err := resolve(); err != nil {
			t.Fatal(err)
		}
	}
	if n := counted.reads.Load(); n != first {
		t.Fatalf("cached resolves read the store %d more times, want 0", n-first)
	}

	alice.Active = false
	if _, err := st.UpdateUser(ctx, alice, alice.Version); err != nil {
		t.Fatal(err)
	}
	if err := resolve(); err != nil {
		t.Fatalf("before Invalidate the cached (active) entry should answer: %v", err)
	}
	cache.Invalidate()
	if err := resolve(); err == nil || !strings.Contains(err.Error(), "deactivated") {
		t.Fatalf("after Invalidate: got %v, want the deactivation", err)
	}

	// A write through Writes counts for the next resolve on this node.
	u, err := st.GetUserByName(ctx, alice.UserName)
	if err != nil {
		t.Fatal(err)
	}
	u.Active = true
	if _, err := cache.Writes(st).UpdateUser(ctx, u, u.Version); err != nil {
		t.Fatal(err)
	}
	if err := resolve(); err != nil {
		t.Fatalf("after a reactivation written through Writes: %v", err)
	}

	// Age-out without an event: a change written elsewhere shows after
	// the ttl.
	if u, err = st.GetUserByName(ctx, alice.UserName); err != nil {
		t.Fatal(err)
	}
	u.Active = false
	if _, err := st.UpdateUser(ctx, u, u.Version); err != nil {
		t.Fatal(err)
	}
	if err := resolve(); err != nil {
		t.Fatalf("within the ttl the cached (active) entry should still answer: %v", err)
	}
	now = now.Add(time.Second)
	if err := resolve(); err == nil || !strings.Contains(err.Error(), "deactivated") {
		t.Fatalf("after the ttl the store's answer should count: %v", err)
	}
	// Reactivate for the failure case below.
	if u, err = st.GetUserByName(ctx, alice.UserName); err != nil {
		t.Fatal(err)
	}
	u.Active = true
	if _, err := st.UpdateUser(ctx, u, u.Version); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if err := resolve(); err != nil {
		t.Fatal(err)
	}

	// A store that cannot be read: nothing cached keeps a user in.
	st.Close()
	now = now.Add(time.Second)
	if err := resolve(); err == nil || !strings.Contains(err.Error(), "directory is unavailable") {
		t.Fatalf("store closed: got %v, want fail closed", err)
	}
}
