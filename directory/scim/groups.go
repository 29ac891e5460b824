package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/portcullisdb/portcullis/directory"
	"github.com/portcullisdb/portcullis/store"
)

// loadGroup reads a group of the request's connection.
func (s *Server) loadGroup(ctx context.Context, id string) (store.Group, error) {
	g, err := s.store.GetGroup(ctx, id)
	if err == nil && !directory.OwnsGroup(connOf(ctx), g) {
		err = store.ErrNotFound
	}
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
		u, err := s.store.GetUser(ctx, id)
		if err == nil && !directory.OwnsUser(connOf(ctx), u) {
			err = store.ErrNotFound
		}
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
	created, err := s.dir.CreateGroup(ctx, actor(ctx), g)
	if err != nil {
		return s.memberError(ctx, err, g, g.Members)
	}
	s.log.Info("scim: group created", "connection", connOf(ctx), "group", created.DisplayName, "group_id", created.ID, "members", len(created.Members))
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
		var cur, next store.Group
		updated, changes, err := s.dir.UpdateGroup(ctx, actor(ctx), id, !hasIfMatch(r), func(c store.Group) (store.Group, error) {
			cur = c
			if err := checkIfMatch(r, c.Version); err != nil {
				return store.Group{}, err
			}
			n, err := compute(c)
			next = n
			return n, err
		})
		if errors.Is(err, store.ErrVersionMismatch) && !hasIfMatch(r) && attempt < maxAttempts {
			backoff(attempt)
			continue
		}
		if err != nil {
			var se *scimError
			if errors.As(err, &se) {
				return se
			}
			if errors.Is(err, store.ErrNotFound) && cur.ID == "" {
				return errorf(http.StatusNotFound, "", "Group %q not found", id)
			}
			return s.memberError(ctx, err, next, slices.DeleteFunc(slices.Clone(next.Members), func(id string) bool { return slices.Contains(cur.Members, id) }))
		}
		if updated.Version != cur.Version {
			s.log.Info("scim: group updated", "connection", connOf(ctx), "group", updated.DisplayName, "group_id", id)
		}
		s.changed(ctx, changes)
		return s.respond(w, r, groupType, http.StatusOK, s.groupResource(updated), updated.Version)
	}
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request, id string) error {
	ctx := r.Context()
	var g store.Group
	changes, err := s.dir.DeleteGroup(ctx, actor(ctx), id, func(cur store.Group) error {
		g = cur
		return checkIfMatch(r, cur.Version)
	})
	if err != nil {
		var se *scimError
		if errors.As(err, &se) {
			return se
		}
		return storeError(err, fmt.Sprintf("Group %q", id))
	}
	s.log.Info("scim: group deleted", "connection", connOf(ctx), "group", g.DisplayName, "group_id", id, "members", len(g.Members))
	s.changed(ctx, changes)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
