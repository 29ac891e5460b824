package portal

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/store"
)

// SessionInfo is a live proxied session, as the admin API shows it.
type SessionInfo struct {
	ID          uint32    `json:"id"`
	Identity    string    `json:"identity"`
	Issuer      string    `json:"issuer"`
	Role        string    `json:"role"`
	BackendUser string    `json:"backend_user"`
	ClientAddr  string    `json:"client_addr"`
	Started     time.Time `json:"started"`
}

// AdminOptions enable the admin API.
type AdminOptions struct {
	Token    string // the bearer token; empty disables the API
	Store    store.Store
	Sessions func() []SessionInfo // this node's sessions
	Roles    []string             // configured role names, to validate teams
	// RotateSCIMToken makes a new token for a connection and returns it
	// in the clear, once.
	RotateSCIMToken func(ctx context.Context, connection string) (string, error)
	// Reload re-reads the server's config file.
	Reload func(ctx context.Context) error
	// SingleNode says no other node shares the store (SQLite): a session
	// id that Sessions does not list exists nowhere.
	SingleNode bool
}

func (s *Server) mountAdmin(a AdminOptions) {
	want := sha256.Sum256([]byte(a.Token))
	guard := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if a.Token == "" {
				oauthError(w, http.StatusForbidden, "access_denied", "the admin API is off: set admin.token in the server's config")
				return
			}
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			sum := sha256.Sum256([]byte(got))
			if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis admin"`)
				oauthError(w, http.StatusUnauthorized, "invalid_token", "missing or wrong admin token")
				s.record(audit.Event{Event: "admin", Outcome: "denied", Reason: "bad admin token", ClientAddr: clientIP(r)})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			h(w, r)
		}
	}
	s.mux.HandleFunc("GET /v1/admin/users", guard(func(w http.ResponseWriter, r *http.Request) {
		var out []map[string]any
		for offset := 0; ; {
			users, total, err := a.Store.ListUsers(r.Context(), store.ListOptions{Offset: offset, Limit: 500})
			if err != nil {
				s.internal(w, err)
				return
			}
			for _, u := range users {
				out = append(out, map[string]any{"id": u.ID, "user_name": u.UserName, "active": u.Active, "role": u.Role, "source": u.Source, "updated": u.Updated})
			}
			offset += len(users)
			if len(users) == 0 || offset >= total {
				break
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"users": out})
	}))
	s.mux.HandleFunc("GET /v1/admin/sessions", guard(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"sessions": a.Sessions()})
	}))
	s.mux.HandleFunc("DELETE /v1/admin/sessions/{id}", guard(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "a session id is a number, as `portcullis sessions list` shows")
			return
		}
		id = strconv.FormatUint(n, 10)
		here := a.Sessions != nil && slices.ContainsFunc(a.Sessions(), func(si SessionInfo) bool { return uint64(si.ID) == n })
		if !here && a.SingleNode {
			oauthError(w, http.StatusNotFound, "not_found", "no session "+id+": `portcullis sessions list` shows the live ones")
			return
		}
		// Through the event log, so the node that holds the session ends it.
		if _, err := a.Store.AppendEvent(r.Context(), store.Event{Kind: store.EventSessionKill, Subject: id}); err != nil {
			s.internal(w, err)
			return
		}
		s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "kill session " + id, ClientAddr: clientIP(r)})
		status := "session " + id + " ends within a second"
		if !here {
			status = "session " + id + " is not on this node: the kill went to every node sharing the store, and ends it within a second where it is"
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"status": status})
	}))
	s.mux.HandleFunc("POST /v1/admin/reload", guard(func(w http.ResponseWriter, r *http.Request) {
		if err := a.Reload(r.Context()); err != nil {
			s.record(audit.Event{Event: "admin", Outcome: "error", Reason: "reload refused", ClientAddr: clientIP(r)})
			oauthError(w, http.StatusUnprocessableEntity, "invalid_configuration", "reload refused, the running configuration stays: "+err.Error())
			return
		}
		s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "reload", ClientAddr: clientIP(r)})
		writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
	}))
	s.mux.HandleFunc("GET /v1/admin/teams", guard(func(w http.ResponseWriter, r *http.Request) {
		teams, err := a.Store.ListTeams(r.Context())
		if err != nil {
			s.internal(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"teams": teams})
	}))
	s.mux.HandleFunc("PUT /v1/admin/teams/{name}", guard(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Groups []string `json:"groups"`
			Roles  []string `json:"roles"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", `the body must be JSON: {"groups": [...], "roles": [...]}`)
			return
		}
		name := r.PathValue("name")
		t, _, err := s.putTeam(r.Context(), a.Store, a.Roles, store.Team{Name: name, Groups: body.Groups, Roles: body.Roles})
		var bad inputError
		if errors.As(err, &bad) {
			oauthError(w, http.StatusBadRequest, "invalid_request", bad.Error())
			return
		} else if err != nil {
			s.internal(w, err)
			return
		}
		s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "put team " + name, ClientAddr: clientIP(r)})
		writeJSON(w, http.StatusOK, t)
	}))
	s.mux.HandleFunc("DELETE /v1/admin/teams/{name}", guard(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		err := s.deleteTeam(r.Context(), a.Store, name)
		if errors.Is(err, store.ErrNotFound) {
			oauthError(w, http.StatusNotFound, "not_found", "no team "+strconv.Quote(name))
			return
		} else if err != nil {
			s.internal(w, err)
			return
		}
		s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "delete team " + name, ClientAddr: clientIP(r)})
		w.WriteHeader(http.StatusNoContent)
	}))
	s.mux.HandleFunc("POST /v1/admin/scim/{connection}/token", guard(func(w http.ResponseWriter, r *http.Request) {
		conn := r.PathValue("connection")
		tok, err := a.RotateSCIMToken(r.Context(), conn)
		if err != nil {
			s.internal(w, err)
			return
		}
		s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "rotate SCIM token of " + conn, ClientAddr: clientIP(r)})
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]string{"connection": conn, "token": tok})
	}))
	s.mux.HandleFunc("DELETE /v1/admin/scim/{connection}/token", guard(func(w http.ResponseWriter, r *http.Request) {
		conn := r.PathValue("connection")
		err := a.Store.DeleteSCIMToken(r.Context(), conn)
		if errors.Is(err, store.ErrNotFound) {
			oauthError(w, http.StatusNotFound, "not_found", "connection "+strconv.Quote(conn)+" has no SCIM token: its directory sync is already off")
			return
		} else if err != nil {
			s.internal(w, err)
			return
		}
		s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "stop directory sync of " + conn, ClientAddr: clientIP(r), Issuer: conn})
		w.WriteHeader(http.StatusNoContent)
	}))
	// The connections' state, also the way back in when the IdP fails
	// after every administrator has logged in through it.
	s.mux.HandleFunc("GET /v1/admin/connections", guard(func(w http.ResponseWriter, r *http.Request) {
		states, err := s.connStates(r.Context())
		if err != nil {
			s.internal(w, err)
			return
		}
		out := []map[string]any{}
		for _, name := range slices.Sorted(maps.Keys(states)) {
			st := states[name]
			out = append(out, map[string]any{"name": name, "enabled": st.Enabled, "enforce_mfa": st.EnforceMFA, "updated_by": st.UpdatedBy, "updated": st.Updated})
		}
		writeJSON(w, http.StatusOK, map[string]any{"connections": out})
	}))
	s.mux.HandleFunc("PATCH /v1/admin/connections/{name}", guard(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Enabled    *bool `json:"enabled"`
			EnforceMFA *bool `json:"enforce_mfa"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", `the body must be JSON: {"enabled": true|false, "enforce_mfa": true|false}`)
			return
		}
		name := r.PathValue("name")
		what, err := s.setConnection(r.Context(), name, body.Enabled, body.EnforceMFA, "the admin API")
		if bad := inputError(""); errors.As(err, &bad) {
			oauthError(w, http.StatusBadRequest, "invalid_request", bad.Error())
			return
		} else if err != nil {
			s.internal(w, err)
			return
		}
		s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: what, ClientAddr: clientIP(r), Issuer: name})
		writeJSON(w, http.StatusOK, map[string]string{"status": what + " on every node"})
	}))
	s.mountLocalAdmin(a, guard)
}

// inputError is a request the caller must correct; its text says how.
type inputError string

func (e inputError) Error() string { return string(e) }

// putTeam creates or replaces a team whose roles are among roles (the
// configured ones), then has every node re-check its members' sessions.
// created says the team could not be read before (the console's audit
// line says "create" then).
func (s *Server) putTeam(ctx context.Context, st store.Store, roles []string, t store.Team) (saved store.Team, created bool, err error) {
	before, err := st.GetTeam(ctx, t.Name)
	created = err != nil
	if strings.TrimSpace(t.Name) == "" {
		return store.Team{}, created, inputError("a team needs a name")
	}
	for _, role := range t.Roles {
		if !slices.Contains(roles, role) {
			return store.Team{}, created, inputError("role " + strconv.Quote(role) + " is not configured: use one of " + strings.Join(roles, ", "))
		}
	}
	saved, err = st.PutTeam(ctx, t)
	if errors.Is(err, store.ErrInvalid) {
		return saved, created, inputError("the team name is too long (at most 255 bytes)")
	} else if err != nil {
		return saved, created, err
	}
	s.rolesChanged(ctx, st, append(before.Groups, saved.Groups...))
	return saved, created, nil
}

// deleteTeam deletes a team (store.ErrNotFound if there is none) and has
// every node re-check its members' sessions.
func (s *Server) deleteTeam(ctx context.Context, st store.Store, name string) error {
	before, err := st.GetTeam(ctx, name)
	if err == nil {
		err = st.DeleteTeam(ctx, name)
	}
	if err != nil {
		return err
	}
	s.rolesChanged(ctx, st, before.Groups)
	return nil
}

// rolesChanged tells every node to re-check the sessions of the members
// of groups, whose roles a team change may have altered.
func (s *Server) rolesChanged(ctx context.Context, st store.Store, groups []string) {
	seen := map[string]bool{}
	for _, name := range groups {
		g, err := st.GetGroupByName(ctx, name)
		if err != nil {
			continue
		}
		for _, id := range g.Members {
			u, err := st.GetUser(ctx, id)
			if err != nil || seen[u.UserName] {
				continue
			}
			seen[u.UserName] = true
			if _, err := st.AppendEvent(ctx, store.Event{Kind: store.EventUserRolesChanged, Subject: u.UserName}); err != nil {
				s.opt.Log.Error("append roles-changed event", "user", u.UserName, "err", err)
			}
		}
	}
}

func (s *Server) internal(w http.ResponseWriter, err error) {
	s.opt.Log.Error("admin API", "err", err)
	oauthError(w, http.StatusInternalServerError, "server_error", "the request failed: see the server log")
}
