package rbac

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/portcullisdb/portcullis/auth/username"
	"github.com/portcullisdb/portcullis/store"
)

// DirectoryCache keeps what the resolver reads from the store for a short
// while, so a connection costs no store round trip: three queries per
// connect were a third of the proxy's CPU per connection on SQLite, and
// three network round trips on a MySQL store.
//
// Freshness: every change that takes access away (deactivation, deletion,
// a lost role, a team change) is also an event in the store's log, and the
// proxy's event watcher calls Invalidate before it acts on a batch of
// events, so those apply exactly as fast as without the cache (the poll
// interval, 200 ms). Changes that never take access away and write no
// event (a new user, a new group) apply within ttl. Store errors are not
// cached, so a directory that cannot be read still fails closed once the
// entries age out.
type DirectoryCache struct {
	dir Directory
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	gen   uint64                // bumped by Invalidate, which also empties the maps: a read it overtook is not stored
	users map[string]cachedUser // by lowercased user name
	byID  map[string]string     // user id -> key in users
	teams *cachedTeams
}

// cachedUser is one user name's answer: the user and groups, or not found.
type cachedUser struct {
	user   store.User
	found  bool
	groups []store.Group
	at     time.Time
}

type cachedTeams struct {
	teams []store.Team
	at    time.Time
}

// maxCachedUsers bounds the cache; past it, the cache starts over.
const maxCachedUsers = 100_000

// NewDirectoryCache caches dir's answers for at most ttl.
func NewDirectoryCache(dir Directory, ttl time.Duration) *DirectoryCache {
	return &DirectoryCache{dir: dir, ttl: ttl, now: time.Now, users: map[string]cachedUser{}, byID: map[string]string{}}
}

// Invalidate drops everything cached: the directory changed.
func (c *DirectoryCache) Invalidate() {
	c.mu.Lock()
	c.gen++
	c.users, c.byID = map[string]cachedUser{}, map[string]string{}
	c.teams = nil
	c.mu.Unlock()
}

// fresh reports whether an entry read at at is still good.
func (c *DirectoryCache) fresh(at time.Time) bool { return c.now().Sub(at) < c.ttl }

// user returns the cached user and groups of name, reading the store on a
// miss.
func (c *DirectoryCache) user(ctx context.Context, name string) (cachedUser, error) {
	key, err := username.Normalize(name)
	if err != nil {
		return cachedUser{}, fmt.Errorf("look up user: %w", err)
	}
	c.mu.Lock()
	e, ok := c.users[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && c.fresh(e.at) {
		return e, nil
	}
	e = cachedUser{at: c.now()}
	u, err := c.dir.GetUserByName(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return e, err
	default:
		e.user, e.found = u, true
		if e.groups, err = c.dir.GroupsOfUser(ctx, u.ID); err != nil {
			return e, err
		}
	}
	c.mu.Lock()
	if gen == c.gen { // an Invalidate since the read makes it stale
		if len(c.users) >= maxCachedUsers {
			c.users, c.byID = map[string]cachedUser{}, map[string]string{}
		}
		c.users[key] = e
		if e.found {
			c.byID[e.user.ID] = key
		}
	}
	c.mu.Unlock()
	return e, nil
}

// GetUserByName implements Directory.
func (c *DirectoryCache) GetUserByName(ctx context.Context, name string) (store.User, error) {
	e, err := c.user(ctx, name)
	if err != nil {
		return store.User{}, err
	}
	if !e.found {
		return store.User{}, store.ErrNotFound
	}
	return e.user, nil
}

// GroupsOfUser implements Directory. The resolver asks right after
// GetUserByName, so the groups come from the same cached entry.
func (c *DirectoryCache) GroupsOfUser(ctx context.Context, userID string) ([]store.Group, error) {
	c.mu.Lock()
	e, ok := c.users[c.byID[userID]]
	c.mu.Unlock()
	if ok && e.found && e.user.ID == userID && c.fresh(e.at) {
		return e.groups, nil
	}
	return c.dir.GroupsOfUser(ctx, userID)
}

// ListTeams implements Directory.
func (c *DirectoryCache) ListTeams(ctx context.Context) ([]store.Team, error) {
	c.mu.Lock()
	t, gen := c.teams, c.gen
	c.mu.Unlock()
	if t != nil && c.fresh(t.at) {
		return t.teams, nil
	}
	teams, err := c.dir.ListTeams(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if gen == c.gen {
		c.teams = &cachedTeams{teams: teams, at: c.now()}
	}
	c.mu.Unlock()
	return teams, nil
}

// Writes wraps st so that every directory write made through it drops
// the cache at once: a change made on this node (an SSO login's new
// role, a console edit, a SCIM request) counts for the very next
// connection here, without waiting for the event poll.
func (c *DirectoryCache) Writes(st store.Store) store.Store { return invalidating{st, c} }

type invalidating struct {
	store.Store
	c *DirectoryCache
}

// after invalidates once a write is done, whatever its outcome: a write
// that failed may still have landed.
func (w invalidating) after() { w.c.Invalidate() }

func (w invalidating) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	defer w.after()
	return w.Store.CreateUser(ctx, u)
}

func (w invalidating) UpdateUser(ctx context.Context, u store.User, v int64) (store.User, error) {
	defer w.after()
	return w.Store.UpdateUser(ctx, u, v)
}

func (w invalidating) DeleteUser(ctx context.Context, id string) error {
	defer w.after()
	return w.Store.DeleteUser(ctx, id)
}

func (w invalidating) CreateGroup(ctx context.Context, g store.Group) (store.Group, error) {
	defer w.after()
	return w.Store.CreateGroup(ctx, g)
}

func (w invalidating) UpdateGroup(ctx context.Context, g store.Group, v int64) (store.Group, error) {
	defer w.after()
	return w.Store.UpdateGroup(ctx, g, v)
}

func (w invalidating) AddMembers(ctx context.Context, groupID string, userIDs ...string) error {
	defer w.after()
	return w.Store.AddMembers(ctx, groupID, userIDs...)
}

func (w invalidating) RemoveMembers(ctx context.Context, groupID string, userIDs ...string) error {
	defer w.after()
	return w.Store.RemoveMembers(ctx, groupID, userIDs...)
}

func (w invalidating) DeleteGroup(ctx context.Context, id string) error {
	defer w.after()
	return w.Store.DeleteGroup(ctx, id)
}

func (w invalidating) PutTeam(ctx context.Context, t store.Team) (store.Team, error) {
	defer w.after()
	return w.Store.PutTeam(ctx, t)
}

func (w invalidating) DeleteTeam(ctx context.Context, name string) error {
	defer w.after()
	return w.Store.DeleteTeam(ctx, name)
}
