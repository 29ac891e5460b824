package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/portcullisdb/portcullis/store"
)

// OwnsGroup reports whether a SCIM connection's scope holds g (groups
// from before connections were recorded are adopted, as users are).
func OwnsGroup(conn string, g store.Group) bool { return g.Connection == conn || g.Connection == "" }

// checkGroupScope refuses a group outside a SCIM connection's reach.
func checkGroupScope(a Actor, g store.Group) error {
	if a.Kind == ActorSCIM && !OwnsGroup(a.Name, g) {
		return fmt.Errorf("group %q is not in SCIM connection %s: %w", g.ID, a.Name, store.ErrNotFound)
	}
	return nil
}

// MemberError is a member id that is not a user the actor may put in a
// group.
type MemberError struct{ ID string }

func (e *MemberError) Error() string {
	return fmt.Sprintf("member %q is not a User of this directory (groups hold users only)", e.ID)
}

// checkMembers refuses member ids that are not users of the actor's
// scope.
func checkMembers(ctx context.Context, t *tx, ids []string) error {
	for _, id := range ids {
		u, err := t.GetUser(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return &MemberError{ID: id}
		case err != nil:
			return fmt.Errorf("check member %q: %w", id, err)
		}
		if checkScope(t.actor, u) != nil {
			return &MemberError{ID: id}
		}
	}
	return nil
}

// CreateGroup adds g.
func (d *Directory) CreateGroup(ctx context.Context, a Actor, g store.Group) (store.Group, error) {
	if a.Kind == ActorSCIM {
		g.Connection = a.Name
	}
	var out store.Group
	_, err := d.update(ctx, a, func(t *tx) error {
		if err := checkMembers(ctx, t, g.Members); err != nil {
			return err
		}
		var err error
		out, err = t.CreateGroup(ctx, g)
		return err
	})
	return out, err
}

// GroupUpdate computes a group's next state. Members alone changing
// without a version to expect (memberOps) is written as additions and
// removals, so concurrent member PATCHes (Okta, Entra) do not collide.
type GroupUpdate func(cur store.Group) (next store.Group, err error)

// UpdateGroup reads group id, lets compute change it and writes it, with
// a roles-changed event for every user whose roles the change may alter,
// in one transaction.
func (d *Directory) UpdateGroup(ctx context.Context, a Actor, id string, memberOps bool, compute GroupUpdate) (updated store.Group, changes []Change, err error) {
	changes, err = d.update(ctx, a, func(t *tx) error {
		cur, err := t.GetGroup(ctx, id)
		if err != nil {
			return err
		}
		if err := checkGroupScope(a, cur); err != nil {
			return err
		}
		next, err := compute(cur)
		if err != nil {
			return err
		}
		next.ID = cur.ID
		if a.Kind == ActorSCIM {
			next.Connection = a.Name
		}
		added, removed := notIn(next.Members, cur.Members), notIn(cur.Members, next.Members)
		if err := checkMembers(ctx, t, added); err != nil {
			return err
		}
		same := next.DisplayName == cur.DisplayName && next.ExternalID == cur.ExternalID && string(next.Extra) == string(cur.Extra)
		updated = cur
		switch {
		case same && len(added) == 0 && len(removed) == 0:
		case same && memberOps:
			if len(added) > 0 {
				if err := t.AddMembers(ctx, id, added...); err != nil {
					return err
				}
			}
			if len(removed) > 0 {
				if err := t.RemoveMembers(ctx, id, removed...); err != nil {
					return err
				}
			}
			if updated, err = t.GetGroup(ctx, id); err != nil {
				return err
			}
		default:
			if updated, err = t.UpdateGroup(ctx, next, cur.Version); err != nil {
				return err
			}
		}
		return t.groupEvents(ctx, cur, updated.DisplayName, removed)
	})
	return updated, changes, err
}

// DeleteGroup deletes group id; its members' sessions are re-checked.
func (d *Directory) DeleteGroup(ctx context.Context, a Actor, id string, check func(store.Group) error) ([]Change, error) {
	return d.update(ctx, a, func(t *tx) error {
		g, err := t.GetGroup(ctx, id)
		if err != nil {
			return err
		}
		if err := checkGroupScope(a, g); err != nil {
			return err
		}
		if check != nil {
			if err := check(g); err != nil {
				return err
			}
		}
		if err := t.groupEvents(ctx, g, "", nil); err != nil {
			return err
		}
		return t.DeleteGroup(ctx, id)
	})
}

// groupEvents appends a roles-changed event for the users whose roles a
// group change may alter: the removed members, or every member before
// when the group was renamed (teams name groups) or deleted (newName "").
func (t *tx) groupEvents(ctx context.Context, old store.Group, newName string, removed []string) error {
	affected, reason := removed, fmt.Sprintf("%s: removed from group %q", t.actor.Kind, old.DisplayName)
	switch {
	case newName == "":
		affected, reason = old.Members, fmt.Sprintf("%s: group %q deleted", t.actor.Kind, old.DisplayName)
	case newName != old.DisplayName:
		affected, reason = old.Members, fmt.Sprintf("%s: group %q renamed to %q", t.actor.Kind, old.DisplayName, newName)
	}
	var users []store.User
	for _, id := range affected {
		u, err := t.GetUser(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue // deleted meanwhile: its own event covers it
		case err != nil:
			return fmt.Errorf("look up member %q: %w", id, err)
		}
		users = append(users, u)
	}
	slices.SortFunc(users, func(a, b store.User) int { return strings.Compare(a.UserName, b.UserName) })
	for _, u := range users {
		if err := t.event(ctx, store.EventUserRolesChanged, u, reason); err != nil {
			return err
		}
	}
	return nil
}

// notIn returns the ids of list that are not in others.
func notIn(list, others []string) []string {
	set := make(map[string]bool, len(others))
	for _, id := range others {
		set[id] = true
	}
	var out []string
	for _, id := range list {
		if !set[id] {
			out = append(out, id)
		}
	}
	return out
}

// --- teams ---

// PutTeam creates or replaces a team whose roles are configured ones;
// every member of its groups, before and after, is re-checked.
func (d *Directory) PutTeam(ctx context.Context, a Actor, tm store.Team) (saved store.Team, created bool, err error) {
	if strings.TrimSpace(tm.Name) == "" {
		return store.Team{}, false, refuse(ErrInvalid, "a team needs a name")
	}
	for _, role := range tm.Roles {
		if !slices.Contains(d.roles, role) {
			return store.Team{}, false, refuse(ErrInvalid, "role %q is not configured: use one of %s", role, strings.Join(d.roles, ", "))
		}
	}
	_, err = d.update(ctx, a, func(t *tx) error {
		before, err := t.GetTeam(ctx, tm.Name)
		created = err != nil
		if saved, err = t.PutTeam(ctx, tm); err != nil {
			if errors.Is(err, store.ErrInvalid) {
				return refuse(ErrInvalid, "the team name is too long (at most 255 bytes)")
			}
			return err
		}
		return t.teamEvents(ctx, append(before.Groups, saved.Groups...), "team "+tm.Name+" changed")
	})
	return saved, created, err
}

// DeleteTeam deletes a team (store.ErrNotFound if there is none); its
// members lose the roles it gave.
func (d *Directory) DeleteTeam(ctx context.Context, a Actor, name string) error {
	_, err := d.update(ctx, a, func(t *tx) error {
		before, err := t.GetTeam(ctx, name)
		if err != nil {
			return err
		}
		if err := t.DeleteTeam(ctx, name); err != nil {
			return err
		}
		return t.teamEvents(ctx, before.Groups, "team "+name+" deleted")
	})
	return err
}

// teamEvents appends a roles-changed event for each member of groups.
func (t *tx) teamEvents(ctx context.Context, groups []string, reason string) error {
	seen := map[string]bool{}
	for _, name := range groups {
		g, err := t.GetGroupByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		for _, id := range g.Members {
			u, err := t.GetUser(ctx, id)
			if err != nil || seen[u.UserName] {
				continue
			}
			seen[u.UserName] = true
			if err := t.event(ctx, store.EventUserRolesChanged, u, reason); err != nil {
				return err
			}
		}
	}
	return nil
}
