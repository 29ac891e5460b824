package scim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/portcullisdb/portcullis/store"
)

func (s *Server) loadGroup(ctx context.Context, id string) (store.Group, error) {
	g, err := s.store.GetGroup(ctx, id)
	if err != nil {
		return store.Group{}, storeError(err, fmt.Sprintf("Group %q", id))
	}
	return g, nil
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request, id string) error {
	g, err := s.loadGroup(r.Context(), id)
	if err != nil {
		return err
	}
	if notModified(w, r, g.Version) {
		return nil
	}
	return s.respond(w, r, groupType, http.StatusOK, s.groupResource(g), g.Version)
}

// checkMembers refuses member ids that are not users, before anything is
// written.
func (s *Server) checkMembers(ctx context.Context, ids []string) error {
	for _, id := range ids {
		_, err := s.store.GetUser(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return badRequest(invalidValue, "member %q is not a User of this directory (groups hold users only)", id)
		case err != nil:
			return fmt.Errorf("check member %q: %w", id, err)
		}
	}
	return nil
}

// memberError explains a store ErrNotFound on a member write: the group
// went away, or a member did meanwhile.
func (s *Server) memberError(ctx context.Context, err error, g store.Group, members []string) error {
	if !errors.Is(err, store.ErrNotFound) {
		return storeError(err, fmt.Sprintf("Group %q", g.DisplayName))
	}
	if g.ID != "" {
		if _, gerr := s.store.GetGroup(ctx, g.ID); errors.Is(gerr, store.ErrNotFound) {
			return errorf(http.StatusNotFound, "", "Group %q not found", g.ID)
		}
	}
	if merr := s.checkMembers(ctx, members); merr != nil {
		return merr
	}
	return storeError(err, fmt.Sprintf("Group %q", g.DisplayName))
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	doc, err := normalize(groupType, body)
	if err != nil {
		return err
	}
	g, err := groupFrom(doc, store.Group{})
	if err != nil {
		return err
	}
	if err := s.checkMembers(ctx, g.Members); err != nil {
		return err
	}
	created, err := s.store.CreateGroup(ctx, g)
	if err != nil {
		return s.memberError(ctx, err, g, g.Members)
	}
	s.log.Info("scim: group created", "connection", s.conn, "group", created.DisplayName, "group_id", created.ID, "members", len(created.Members))
	return s.respond(w, r, groupType, http.StatusCreated, s.groupResource(created), created.Version)
}

func (s *Server) replaceGroup(w http.ResponseWriter, r *http.Request, id string) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	doc, err := normalize(groupType, body)
	if err != nil {
		return err
	}
	return s.updateGroup(w, r, id, func(cur store.Group) (store.Group, error) {
		return groupFrom(doc, cur)
	})
}

func (s *Server) patchGroup(w http.ResponseWriter, r *http.Request, id string) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	ops, err := parsePatch(body)
	if err != nil {
		return err
	}
	return s.updateGroup(w, r, id, func(cur store.Group) (store.Group, error) {
		p := &patcher{rt: groupType, doc: groupDoc(cur), id: cur.ID, touched: map[string]bool{}}
		for _, op := range ops {
			if err := p.apply(op); err != nil {
				return store.Group{}, err
			}
		}
		doc, err := normalize(groupType, p.doc)
		if err != nil {
			return store.Group{}, err
		}
		return groupFrom(doc, cur)
	})
}

// updateGroup is PUT and PATCH, as updateUser. A change of members alone
// without If-Match (the usual Okta and Entra PATCH) is written as member
// additions and removals, not a rewrite of the whole member list.
func (s *Server) updateGroup(w http.ResponseWriter, r *http.Request, id string, compute func(cur store.Group) (store.Group, error)) error {
	ctx := r.Context()
	for attempt := 1; ; attempt++ {
		cur, err := s.loadGroup(ctx, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(r, cur.Version); err != nil {
			return err
		}
		next, err := compute(cur)
		if err != nil {
			return err
		}
		added, removed := notIn(next.Members, cur.Members), notIn(cur.Members, next.Members)
		if err := s.checkMembers(ctx, added); err != nil {
			return err
		}
		updated := cur
		switch {
		case sameGroup(cur, next) && len(added) == 0 && len(removed) == 0:
		case sameGroup(cur, next) && !hasIfMatch(r):
			// Additions first: an unknown member then fails before
			// anything changed.
			if len(added) > 0 {
				if err := s.store.AddMembers(ctx, id, added...); err != nil {
					return s.memberError(ctx, err, cur, added)
				}
			}
			if len(removed) > 0 {
				if err := s.store.RemoveMembers(ctx, id, removed...); err != nil {
					return storeError(err, fmt.Sprintf("Group %q", id))
				}
			}
			if updated, err = s.loadGroup(ctx, id); err != nil {
				return err
			}
		default:
			updated, err = s.store.UpdateGroup(ctx, next, cur.Version)
			if errors.Is(err, store.ErrVersionMismatch) && !hasIfMatch(r) && attempt < maxAttempts {
				backoff(attempt)
				continue
			}
			if err != nil {
				return s.memberError(ctx, err, next, added)
			}
		}
		if updated.Version != cur.Version {
			s.log.Info("scim: group updated", "connection", s.conn, "group", updated.DisplayName, "group_id", id,
				"added", len(added), "removed", len(removed))
		}
		changes, err := s.groupChanges(ctx, cur, updated.DisplayName, removed)
		if err != nil {
			return err
		}
		if err := s.emit(ctx, changes); err != nil {
			return err
		}
		return s.respond(w, r, groupType, http.StatusOK, s.groupResource(updated), updated.Version)
	}
}

func sameGroup(a, b store.Group) bool {
	return a.DisplayName == b.DisplayName && a.ExternalID == b.ExternalID && bytes.Equal(a.Extra, b.Extra)
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

// groupChanges lists the users whose roles a group change may alter: the
// removed members, or every member of the group before when it was
// renamed (teams name groups) or deleted (newName "").
func (s *Server) groupChanges(ctx context.Context, old store.Group, newName string, removed []string) ([]change, error) {
	affected, reason := removed, fmt.Sprintf("scim: removed from group %q", old.DisplayName)
	switch {
	case newName == "":
		affected, reason = old.Members, fmt.Sprintf("scim: group %q deleted", old.DisplayName)
	case newName != old.DisplayName:
		affected, reason = old.Members, fmt.Sprintf("scim: group %q renamed to %q", old.DisplayName, newName)
	}
	var out []change
	for _, id := range affected {
		u, err := s.store.GetUser(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue // deleted meanwhile: its own event covers it
		case err != nil:
			return nil, fmt.Errorf("look up member %q: %w", id, err)
		}
		out = append(out, change{Change{store.EventUserRolesChanged, u.UserName, u.ID}, reason})
	}
	slices.SortFunc(out, func(a, b change) int { return strings.Compare(a.UserName, b.UserName) })
	return out, nil
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request, id string) error {
	ctx := r.Context()
	g, err := s.loadGroup(ctx, id)
	if err != nil {
		return err
	}
	if err := checkIfMatch(r, g.Version); err != nil {
		return err
	}
	changes, err := s.groupChanges(ctx, g, "", nil)
	if err != nil {
		return err
	}
	if err := s.store.DeleteGroup(ctx, id); err != nil {
		return storeError(err, fmt.Sprintf("Group %q", id))
	}
	s.log.Info("scim: group deleted", "connection", s.conn, "group", g.DisplayName, "group_id", id, "members", len(g.Members))
	if err := s.emit(ctx, changes); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
