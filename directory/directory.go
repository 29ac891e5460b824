package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/auth/username"
	"github.com/portcullisdb/portcullis/store"
)

// AdminRole is the role that opens the console. It is granted only by an
// administrator (ActorConsole) or with the admin token (ActorAdminAPI).
const AdminRole = "administrator"

// Actor kinds.
const (
	ActorSCIM     = "scim"      // a SCIM connection; Name is the connection
	ActorSSO      = "sso"       // an SSO login; Name is the connection
	ActorConsole  = "console"   // an administrator in the console; Name is the administrator
	ActorAdminAPI = "admin-api" // the admin token
	ActorSelf     = "self"      // the user, on /account or at login
)

// Actor is who makes a change; it decides what the change may touch.
type Actor struct {
	Kind string
	Name string
}

func (a Actor) String() string {
	if a.Name == "" {
		return a.Kind
	}
	return a.Kind + " " + a.Name
}

// grantsAdmin reports whether the actor may grant or remove the
// administrator role.
func (a Actor) grantsAdmin() bool { return a.Kind == ActorConsole || a.Kind == ActorAdminAPI }

// Directory writes the directory. It is safe for concurrent use.
type Directory struct {
	st    store.Store
	roles []string // the configured database roles
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Directory over st; roles are the configured database
// roles a role attribute may name.
func New(st store.Store, roles []string, log *slog.Logger) *Directory {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Directory{st: st, roles: slices.Clone(roles), log: log, now: time.Now}
}

// Store is the store the directory writes through, for reads.
func (d *Directory) Store() store.Store { return d.st }

// Change is an event a write committed, for hooks that run after it.
type Change struct {
	Kind     string // a store.Event kind
	UserName string
	UserID   string
	Reason   string
}

// tx collects a transaction's events, appended before it commits.
type tx struct {
	store.Store
	actor   Actor
	changes []Change
}

func (t *tx) event(ctx context.Context, kind string, u store.User, reason string) error {
	fields := map[string]string{"user_id": u.ID, "actor": t.actor.Kind, "reason": reason}
	switch t.actor.Kind {
	case ActorSCIM, ActorSSO:
		fields["connection"] = t.actor.Name
	default:
		fields["by"] = t.actor.Name
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	if _, err := t.AppendEvent(ctx, store.Event{Kind: kind, Subject: u.UserName, Data: data}); err != nil {
		return fmt.Errorf("append %s event for %q: %w", kind, u.UserName, err)
	}
	t.changes = append(t.changes, Change{Kind: kind, UserName: u.UserName, UserID: u.ID, Reason: reason})
	return nil
}

// update runs fn in one store transaction and returns the changes it
// committed.
func (d *Directory) update(ctx context.Context, a Actor, fn func(t *tx) error) ([]Change, error) {
	var changes []Change
	err := d.st.Update(ctx, func(st store.Store) error {
		t := &tx{Store: st, actor: a}
		if err := fn(t); err != nil {
			return err
		}
		changes = t.changes
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range changes {
		d.log.Info("directory: "+c.Kind, "actor", a.String(), "user", c.UserName, "user_id", c.UserID, "reason", c.Reason)
	}
	return changes, nil
}

// --- scope: what an actor may touch ---

// OwnsUser reports whether a SCIM connection's scope holds u: users it
// provisioned, and SCIM users from before sources were recorded (which
// the first connection to write them adopts).
func OwnsUser(conn string, u store.User) bool {
	return u.Source == store.SourceSCIM && (u.SourceName == conn || u.SourceName == "")
}

// checkScope refuses a user outside the actor's reach.
func checkScope(a Actor, u store.User) error {
	if a.Kind != ActorSCIM {
		return nil
	}
	if !OwnsUser(a.Name, u) {
		// Not found rather than forbidden: a SCIM client must not learn
		// which names other sources hold.
		return fmt.Errorf("user %q is not in SCIM connection %s: %w", u.ID, a.Name, store.ErrNotFound)
	}
	return nil
}

// CheckRole refuses a role value the actor may not set: a SCIM or SSO
// role attribute takes only configured database roles; the
// administrator role only an administrator grants.
func (d *Directory) CheckRole(a Actor, role string) error {
	if role == AdminRole && a.grantsAdmin() {
		return nil
	}
	if role == "" || role != AdminRole && slices.Contains(d.roles, role) {
		return nil
	}
	allowed := "none are configured"
	if len(d.roles) > 0 {
		allowed = strings.Join(d.roles, ", ")
	}
	if role == AdminRole {
		return refuse(ErrForbidden, "role %q is granted only by an administrator, in the console or with the admin token; the role attribute takes a configured database role (%s)", role, allowed)
	}
	return refuse(ErrInvalid, "role %q is not a configured database role (allowed: %s)", role, allowed)
}

// keepAdmin applies the rule that no directory attribute grants or
// removes the administrator role.
func keepAdmin(a Actor, cur, next *store.User) {
	if a.grantsAdmin() {
		return
	}
	if cur.Role == AdminRole {
		next.Role = AdminRole
	}
}

// --- users ---

// CreateUser adds u, provisioned by a. A name with a tombstone is
// provisioned again: the tombstone goes, and the user's NotBefore is now,
// so tokens from before the deletion stay refused.
func (d *Directory) CreateUser(ctx context.Context, a Actor, u store.User) (store.User, error) {
	if err := d.CheckRole(a, u.Role); err != nil {
		return store.User{}, err
	}
	if a.Kind == ActorSCIM {
		u.Source, u.SourceName = store.SourceSCIM, a.Name
	}
	var out store.User
	_, err := d.update(ctx, a, func(t *tx) error {
		var err error
		out, err = t.provision(ctx, u, d.now())
		return err
	})
	if err != nil {
		return store.User{}, err
	}
	d.log.Info("directory: user created", "actor", a.String(), "user", out.UserName, "user_id", out.ID, "source", out.Source, "source_name", out.SourceName)
	return out, nil
}

// provision creates u; a name with a tombstone is provisioned again:
// the tombstone goes and NotBefore is now, so tokens issued before stay
// refused.
func (t *tx) provision(ctx context.Context, u store.User, now time.Time) (store.User, error) {
	if err := t.takeTombstone(ctx, &u, now); err != nil {
		return store.User{}, err
	}
	return t.CreateUser(ctx, u)
}

// takeTombstone lets u take a name that may have a tombstone: the
// tombstone goes and u's NotBefore becomes now.
func (t *tx) takeTombstone(ctx context.Context, u *store.User, now time.Time) error {
	_, err := t.GetTombstone(ctx, u.UserName)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	u.NotBefore = now
	return t.DeleteTombstone(ctx, u.UserName)
}

// UserUpdate computes the next state of a user from the current one.
// deactivates reports that the request itself set active to false: the
// deactivation event is then recorded even when the user already was
// inactive (an IdP retrying a request).
type UserUpdate func(cur store.User) (next store.User, deactivates bool, err error)

// UpdateUser reads user id, lets compute change it, and writes it with the
// events it implies (deactivation, role change, rename), revoking the
// user's refresh tokens on deactivation, in one transaction. A
// concurrent change is store.ErrVersionMismatch: read again and retry.
func (d *Directory) UpdateUser(ctx context.Context, a Actor, id string, compute UserUpdate) (old, updated store.User, changes []Change, err error) {
	changes, err = d.update(ctx, a, func(t *tx) error {
		cur, err := t.GetUser(ctx, id)
		if err != nil {
			return err
		}
		if err := checkScope(a, cur); err != nil {
			return err
		}
		next, deactivates, err := compute(cur)
		if err != nil {
			return err
		}
		if next.Role != cur.Role {
			if err := d.CheckRole(a, next.Role); err != nil && !(cur.Role == AdminRole && !a.grantsAdmin()) {
				return err
			}
		}
		keepAdmin(a, &cur, &next)
		if a.Kind == ActorSCIM {
			next.Source, next.SourceName = store.SourceSCIM, a.Name
		}
		next.ID = cur.ID
		old, updated = cur, cur
		renamed := !username.Equal(cur.UserName, next.UserName)
		if renamed {
			// The new name may have been deleted: its old tokens stay
			// refused. The old name is no longer the directory's: it
			// keeps refusing tokens, as a deletion does.
			if err := t.takeTombstone(ctx, &next, d.now()); err != nil {
				return err
			}
		}
		if !sameUser(cur, next) {
			if updated, err = t.UpdateUser(ctx, next, cur.Version); err != nil {
				return err
			}
		}
		if renamed {
			if _, err := t.PutTombstone(ctx, store.Tombstone{UserName: cur.UserName, Source: cur.Source, SourceName: cur.SourceName}); err != nil {
				return err
			}
		}
		return t.userEvents(ctx, old, updated, deactivates)
	})
	return old, updated, changes, err
}

// userEvents appends what a user change means for sessions.
func (t *tx) userEvents(ctx context.Context, old, cur store.User, explicitDeactivate bool) error {
	if !cur.Active && (old.Active || explicitDeactivate) {
		if err := t.event(ctx, store.EventUserDeactivated, cur, t.actor.Kind+": deactivated"); err != nil {
			return err
		}
		if _, err := t.RevokeUserRefreshTokens(ctx, cur.ID, time.Now()); err != nil {
			return fmt.Errorf("revoke refresh tokens of %q: %w", cur.UserName, err)
		}
		if err := t.endTokens(ctx, cur.UserName, "deactivated"); err != nil { // re-activation does not revive them
			return err
		}
	}
	if old.Role != cur.Role {
		if err := t.event(ctx, store.EventUserRolesChanged, cur, fmt.Sprintf("%s: role changed from %q to %q", t.actor.Kind, old.Role, cur.Role)); err != nil {
			return err
		}
	}
	if !username.Equal(old.UserName, cur.UserName) {
		if err := t.event(ctx, store.EventUserRolesChanged, old, fmt.Sprintf("%s: userName changed to %q", t.actor.Kind, cur.UserName)); err != nil {
			return err
		}
	}
	return nil
}

func sameUser(a, b store.User) bool {
	return a.UserName == b.UserName && a.ExternalID == b.ExternalID && a.DisplayName == b.DisplayName &&
		a.GivenName == b.GivenName && a.FamilyName == b.FamilyName && slices.Equal(a.Emails, b.Emails) &&
		a.Active == b.Active && a.Role == b.Role && a.Source == b.Source && a.SourceName == b.SourceName &&
		a.NotBefore.Equal(b.NotBefore) && string(a.Extra) == string(b.Extra)
}

// SetActive enables or disables a user (console, admin API). Disabling
// revokes the user's logins and ends their sessions on every node.
func (d *Directory) SetActive(ctx context.Context, a Actor, id string, active bool) (store.User, error) {
	_, u, _, err := d.UpdateUser(ctx, a, id, func(cur store.User) (store.User, bool, error) {
		if !active && a.Kind == ActorConsole && username.Equal(cur.UserName, a.Name) {
			return cur, false, refuse(ErrForbidden, "you cannot disable your own account")
		}
		cur.Active = active
		return cur, !active, nil
	})
	return u, err
}

// SetRole sets a user's role; granting or removing the administrator
// role takes an administrator (ActorConsole) or the admin token.
func (d *Directory) SetRole(ctx context.Context, a Actor, id, role string) (store.User, error) {
	if err := d.CheckRole(a, role); err != nil {
		return store.User{}, err
	}
	_, u, _, err := d.UpdateUser(ctx, a, id, func(cur store.User) (store.User, bool, error) {
		cur.Role = role
		return cur, false, nil
	})
	return u, err
}

// DeleteUser deletes user id, leaving a tombstone that refuses the name
// until it is provisioned again, and ends the user's sessions. check, if
// set, may refuse the deletion after the user is read (SCIM's If-Match).
func (d *Directory) DeleteUser(ctx context.Context, a Actor, id string, check func(store.User) error) (store.User, []Change, error) {
	var u store.User
	changes, err := d.update(ctx, a, func(t *tx) error {
		var err error
		if u, err = t.GetUser(ctx, id); err != nil {
			return err
		}
		if err := checkScope(a, u); err != nil {
			return err
		}
		if check != nil {
			if err := check(u); err != nil {
				return err
			}
		}
		if err := t.DeleteUser(ctx, id); err != nil {
			return err
		}
		if _, err := t.PutTombstone(ctx, store.Tombstone{UserName: u.UserName, Source: u.Source, SourceName: u.SourceName}); err != nil {
			return err
		}
		return t.event(ctx, store.EventUserDeleted, u, t.actor.Kind+": user deleted")
	})
	return u, changes, err
}

// RevokeLogins revokes the user's refresh tokens (a password change, a
// logout everywhere).
func (d *Directory) RevokeLogins(ctx context.Context, a Actor, userID string) error {
	_, err := d.update(ctx, a, func(t *tx) error {
		_, err := t.RevokeUserRefreshTokens(ctx, userID, time.Now())
		return err
	})
	return err
}

// KillSession ends a proxied session on whichever node holds it.
func (d *Directory) KillSession(ctx context.Context, a Actor, sessionID string) error {
	_, err := d.update(ctx, a, func(t *tx) error {
		_, err := t.AppendEvent(ctx, store.Event{Kind: store.EventSessionKill, Subject: sessionID, Data: killData(ctx, t, a, sessionID)})
		return err
	})
	return err
}

// SetLocalCredentials stores a local account's sealed credentials (its
// own table, never a directory attribute), expecting version (0: none
// stored yet). dropExtra, if set, is a legacy key of the user's Extra
// that held them and is removed in the same transaction. Only the
// account itself (ActorSelf) or an administrator sets them.
func (d *Directory) SetLocalCredentials(ctx context.Context, a Actor, userID string, sealed []byte, version int64, dropExtra string) error {
	switch a.Kind {
	case ActorSelf, ActorConsole, ActorAdminAPI:
	default:
		return refuse(ErrForbidden, "%s may not set local credentials", a)
	}
	_, err := d.update(ctx, a, func(t *tx) error {
		if _, err := t.PutLocalCredentials(ctx, store.LocalCredentials{UserID: userID, Sealed: sealed}, version); err != nil {
			return err
		}
		if dropExtra == "" {
			return nil
		}
		u, err := t.GetUser(ctx, userID)
		if err != nil {
			return err
		}
		extra := map[string]json.RawMessage{}
		if len(u.Extra) == 0 || json.Unmarshal(u.Extra, &extra) != nil {
			return nil
		}
		if _, ok := extra[dropExtra]; !ok {
			return nil
		}
		delete(extra, dropExtra)
		if u.Extra, err = json.Marshal(extra); err != nil {
			return err
		}
		if len(extra) == 0 {
			u.Extra = nil
		}
		_, err = t.UpdateUser(ctx, u, u.Version)
		return err
	})
	return err
}

// CreateLocal makes a local account with its sealed credentials (seal
// gets the new user's id), in one transaction. Only an administrator
// (ActorConsole) or the admin token make local accounts, administrators
// included.
func (d *Directory) CreateLocal(ctx context.Context, a Actor, u store.User, seal func(id string) []byte) (store.User, error) {
	if !a.grantsAdmin() {
		return store.User{}, refuse(ErrForbidden, "%s may not create local accounts", a)
	}
	if err := d.CheckRole(a, u.Role); err != nil {
		return store.User{}, err
	}
	u.Source, u.SourceName = store.SourceLocal, ""
	var out store.User
	_, err := d.update(ctx, a, func(t *tx) error {
		var err error
		if out, err = t.provision(ctx, u, d.now()); err != nil {
			return err
		}
		_, err = t.PutLocalCredentials(ctx, store.LocalCredentials{UserID: out.ID, Sealed: seal(out.ID)}, 0)
		return err
	})
	if err != nil {
		return store.User{}, err
	}
	d.log.Info("directory: local account created", "actor", a.String(), "user", out.UserName, "user_id", out.ID, "role", out.Role)
	return out, nil
}
