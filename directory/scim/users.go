package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/portcullisdb/portcullis/directory"
	"github.com/portcullisdb/portcullis/store"
)

// loadUser reads a user of the request's connection.
func (s *Server) loadUser(ctx context.Context, id string) (store.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if err == nil && !directory.OwnsUser(connOf(ctx), u) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.User{}, storeError(err, fmt.Sprintf("User %q", id))
	}
	return u, nil
}

// userResponse writes u with its groups.
func (s *Server) userResponse(w http.ResponseWriter, r *http.Request, status int, u store.User) error {
	groups, err := s.store.GroupsOfUser(r.Context(), u.ID)
	if err != nil {
		return fmt.Errorf("groups of user %q: %w", u.ID, err)
	}
	return s.respond(w, r, userType, status, s.userResource(u, groups), u.Version)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, id string) error {
	u, err := s.loadUser(r.Context(), id)
	if err != nil {
		return err
	}
	if notModified(w, r, u.Version) {
		return nil
	}
	return s.userResponse(w, r, http.StatusOK, u)
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	doc, err := normalize(userType, body)
	if err != nil {
		return err
	}
	u, err := userFrom(doc, store.User{Active: true, Source: store.SourceSCIM})
	if err != nil {
		return err
	}
	created, err := s.dir.CreateUser(r.Context(), actor(r.Context()), u)
	if err != nil {
		return storeError(err, fmt.Sprintf("User %q", u.UserName))
	}
	s.log.Info("scim: user created", "connection", connOf(r.Context()), "user", created.UserName, "user_id", created.ID, "active", created.Active)
	return s.respond(w, r, userType, http.StatusCreated, s.userResource(created, nil), created.Version)
}

func (s *Server) replaceUser(w http.ResponseWriter, r *http.Request, id string) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	doc, err := normalize(userType, body)
	if err != nil {
		return err
	}
	return s.updateUser(w, r, id, func(cur store.User) (store.User, bool, error) {
		next, err := userFrom(doc, cur)
		return next, doc["active"] == false, err
	})
}

func (s *Server) patchUser(w http.ResponseWriter, r *http.Request, id string) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	ops, err := parsePatch(body)
	if err != nil {
		return err
	}
	return s.updateUser(w, r, id, func(cur store.User) (store.User, bool, error) {
		p := &patcher{rt: userType, doc: userDoc(cur), id: cur.ID, touched: map[string]bool{}}
		for _, op := range ops {
			if err := p.apply(op); err != nil {
				return store.User{}, false, err
			}
		}
		doc, err := normalize(userType, p.doc)
		if err != nil {
			return store.User{}, false, err
		}
		next, err := userFrom(doc, cur)
		return next, p.touched["active"] && !next.Active, err
	})
}

// updateUser is PUT and PATCH: read the user, check If-Match, compute the
// new user, write it if it differs (expecting the version read; a race
// without If-Match reads again), then emit the changes.
//
// compute also reports whether the request itself set active to false:
// the deactivation event is then appended even when the user already was
// inactive, so an IdP retrying a request whose event failed still gets it
// recorded (a second deactivation event is harmless).
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, id string,
	compute func(cur store.User) (next store.User, deactivates bool, err error)) error {
	ctx := r.Context()
	for attempt := 1; ; attempt++ {
		old, updated, changes, err := s.dir.UpdateUser(ctx, actor(ctx), id, func(cur store.User) (store.User, bool, error) {
			if err := checkIfMatch(r, cur.Version); err != nil {
				return store.User{}, false, err
			}
			return compute(cur)
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
			return storeError(err, fmt.Sprintf("User %q", id))
		}
		if updated.Version != old.Version {
			s.log.Info("scim: user updated", "connection", connOf(ctx), "user", updated.UserName, "user_id", updated.ID, "active", updated.Active)
		}
		s.changed(ctx, changes)
		return s.userResponse(w, r, http.StatusOK, updated)
	}
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, id string) error {
	ctx := r.Context()
	u, changes, err := s.dir.DeleteUser(ctx, actor(ctx), id, func(u store.User) error { return checkIfMatch(r, u.Version) })
	if err != nil {
		var se *scimError
		if errors.As(err, &se) {
			return se
		}
		return storeError(err, fmt.Sprintf("User %q", id))
	}
	s.log.Info("scim: user deleted", "connection", connOf(ctx), "user", u.UserName, "user_id", u.ID)
	s.changed(ctx, changes)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
