package scim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/portcullisdb/portcullis/auth/username"
	"github.com/portcullisdb/portcullis/store"
)

func (s *Server) loadUser(ctx context.Context, id string) (store.User, error) {
	u, err := s.store.GetUser(ctx, id)
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
	created, err := s.store.CreateUser(r.Context(), u)
	if err != nil {
		return storeError(err, fmt.Sprintf("User %q", u.UserName))
	}
	s.log.Info("scim: user created", "connection", s.conn, "user", created.UserName, "user_id", created.ID, "active", created.Active)
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
		cur, err := s.loadUser(ctx, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(r, cur.Version); err != nil {
			return err
		}
		next, deactivates, err := compute(cur)
		if err != nil {
			return err
		}
		updated := cur
		if !sameUser(cur, next) {
			updated, err = s.store.UpdateUser(ctx, next, cur.Version)
			if errors.Is(err, store.ErrVersionMismatch) && !hasIfMatch(r) && attempt < maxAttempts {
				backoff(attempt)
				continue
			}
			if err != nil {
				return storeError(err, fmt.Sprintf("User %q", id))
			}
			s.log.Info("scim: user updated", "connection", s.conn, "user", updated.UserName, "user_id", updated.ID, "active", updated.Active)
		}
		if err := s.emit(ctx, userChanges(cur, updated, deactivates)); err != nil {
			return err
		}
		return s.userResponse(w, r, http.StatusOK, updated)
	}
}

func sameUser(a, b store.User) bool {
	return a.UserName == b.UserName && a.ExternalID == b.ExternalID && a.DisplayName == b.DisplayName &&
		a.GivenName == b.GivenName && a.FamilyName == b.FamilyName && slices.Equal(a.Emails, b.Emails) &&
		a.Active == b.Active && a.Role == b.Role && a.Source == b.Source && bytes.Equal(a.Extra, b.Extra)
}

// userChanges lists what a user update means for sessions.
func userChanges(old, cur store.User, explicitDeactivate bool) []change {
	var out []change
	if !cur.Active && (old.Active || explicitDeactivate) {
		out = append(out, change{Change{store.EventUserDeactivated, cur.UserName, cur.ID}, "scim: active set to false"})
	}
	if old.Role != cur.Role {
		out = append(out, change{Change{store.EventUserRolesChanged, cur.UserName, cur.ID},
			fmt.Sprintf("scim: role changed from %q to %q", old.Role, cur.Role)})
	}
	if !username.Equal(old.UserName, cur.UserName) {
		out = append(out, change{Change{store.EventUserRolesChanged, old.UserName, cur.ID},
			fmt.Sprintf("scim: userName changed to %q", cur.UserName)})
	}
	return out
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, id string) error {
	ctx := r.Context()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return err
	}
	if err := checkIfMatch(r, u.Version); err != nil {
		return err
	}
	if err := s.store.DeleteUser(ctx, id); err != nil {
		return storeError(err, fmt.Sprintf("User %q", id))
	}
	s.log.Info("scim: user deleted", "connection", s.conn, "user", u.UserName, "user_id", u.ID)
	if err := s.emit(ctx, []change{{Change{store.EventUserDeleted, u.UserName, u.ID}, "scim: user deleted"}}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
