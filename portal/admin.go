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
	"github.com/portcullisdb/portcullis/directory"
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
	Node        string    `json:"node,omitempty"` // the node holding it
}

// AdminOptions enable the admin API.
type AdminOptions struct {
	Token    string // the bearer token; empty disables the API
	Store    store.Store
	Sessions func() []SessionInfo // the live sessions of every node
	Roles    []string             // configured role names, to validate teams
	// RotateSCIMToken makes a new token for a connection and returns it
	// in the clear, once.
	RotateSCIMToken func(ctx context.Context, connection string) (string, error)
	// Reload re-reads the server's config file.
	Reload func(ctx context.Context) error
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
	h := &adminHandlers{s: s, opt: a}
	for _, rt := range []struct {
		pattern string
		handler http.HandlerFunc
	}{
		{"GET /v1/admin/users", h.listUsers},
		{"PATCH /v1/admin/users/{id}", h.patchUser},
		{"GET /v1/admin/sessions", h.listSessions},
		{"DELETE /v1/admin/sessions/{id}", h.killSession},
		{"POST /v1/admin/logins/end", s.adminEndLogins},
		{"POST /v1/admin/reload", h.reload},
		{"GET /v1/admin/teams", h.listTeams},
		{"PUT /v1/admin/teams/{name}", h.putTeam},
		{"DELETE /v1/admin/teams/{name}", h.deleteTeam},
		{"POST /v1/admin/scim/{connection}/token", h.rotateSCIMToken},
		{"DELETE /v1/admin/scim/{connection}/token", h.deleteSCIMToken},
		{"GET /v1/admin/connections", h.listConnections},
		{"PATCH /v1/admin/connections/{name}", h.patchConnection},
	} {
		s.mux.HandleFunc(rt.pattern, guard(rt.handler))
	}
	s.mountLocalAdmin(a, guard)
}

// adminHandlers are the admin API's endpoints, each a named method; the
// guard in mountAdmin checks the admin token before any of them runs.
type adminHandlers struct {
	s   *Server
	opt AdminOptions
}

func (h *adminHandlers) listUsers(w http.ResponseWriter, r *http.Request) {
	var out []map[string]any
	for offset := 0; ; {
		users, total, err := h.opt.Store.ListUsers(r.Context(), store.ListOptions{Offset: offset, Limit: 500})
		if err != nil {
			h.s.internal(w, err)
			return
		}
		for _, u := range users {
			out = append(out, map[string]any{"id": u.ID, "user_name": u.UserName, "active": u.Active, "role": u.Role, "source": u.Source,
				"source_name": u.SourceName, "updated": u.Updated})
		}
		offset += len(users)
		if len(users) == 0 || offset >= total {
			break
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (h *adminHandlers) listSessions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"sessions": h.opt.Sessions()})
}

// sessionRegistryLag bounds how long a live session can be missing from
// the cluster's registry: one heartbeat (1s), and some.
const sessionRegistryLag = 1500 * time.Millisecond

func (h *adminHandlers) findSession(id uint64) *SessionInfo {
	if h.opt.Sessions == nil {
		return nil
	}
	list := h.opt.Sessions()
	if i := slices.IndexFunc(list, func(si SessionInfo) bool { return uint64(si.ID) == id }); i >= 0 {
		return &list[i]
	}
	return nil
}

func (h *adminHandlers) killSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "a session id is a number, as `portcullis sessions list` shows")
		return
	}
	id = strconv.FormatUint(n, 10)
	// Sessions lists every node's (the registry in the store, which a
	// node updates each heartbeat: a session younger than that may be
	// missing from it, so look once more before saying it is unknown).
	held := h.findSession(n)
	if held == nil {
		select {
		case <-time.After(sessionRegistryLag):
			held = h.findSession(n)
		case <-r.Context().Done():
		}
	}
	if held == nil {
		oauthError(w, http.StatusNotFound, "not_found", "no session "+id+" on any node: `portcullis sessions list` shows the live ones")
		return
	}
	// Through the event log, so the node that holds the session ends it.
	if err := h.s.dir.KillSession(r.Context(), adminAPI, id); err != nil {
		h.s.internal(w, err)
		return
	}
	h.s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "kill session " + id, ClientAddr: clientIP(r)})
	status := "session " + id + " ends within a second"
	if held.Node != "" {
		status += " on node " + held.Node
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": status})
}

func (h *adminHandlers) reload(w http.ResponseWriter, r *http.Request) {
	if err := h.opt.Reload(r.Context()); err != nil {
		h.s.record(audit.Event{Event: "admin", Outcome: "error", Reason: "reload refused", ClientAddr: clientIP(r)})
		oauthError(w, http.StatusUnprocessableEntity, "invalid_configuration", "reload refused, the running configuration stays: "+err.Error())
		return
	}
	h.s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "reload", ClientAddr: clientIP(r)})
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

func (h *adminHandlers) listTeams(w http.ResponseWriter, r *http.Request) {
	teams, err := h.opt.Store.ListTeams(r.Context())
	if err != nil {
		h.s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"teams": teams})
}

func (h *adminHandlers) putTeam(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Groups []string `json:"groups"`
		Roles  []string `json:"roles"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", `the body must be JSON: {"groups": [...], "roles": [...]}`)
		return
	}
	name := r.PathValue("name")
	t, _, err := h.s.putTeam(r.Context(), adminAPI, store.Team{Name: name, Groups: body.Groups, Roles: body.Roles})
	var bad inputError
	if errors.As(err, &bad) {
		oauthError(w, http.StatusBadRequest, "invalid_request", bad.Error())
		return
	} else if err != nil {
		h.s.internal(w, err)
		return
	}
	h.s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "put team " + name, ClientAddr: clientIP(r)})
	writeJSON(w, http.StatusOK, t)
}

func (h *adminHandlers) deleteTeam(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := h.s.dir.DeleteTeam(r.Context(), adminAPI, name)
	if errors.Is(err, store.ErrNotFound) {
		oauthError(w, http.StatusNotFound, "not_found", "no team "+strconv.Quote(name))
		return
	} else if err != nil {
		h.s.internal(w, err)
		return
	}
	h.s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "delete team " + name, ClientAddr: clientIP(r)})
	w.WriteHeader(http.StatusNoContent)
}

func (h *adminHandlers) rotateSCIMToken(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("connection")
	tok, err := h.opt.RotateSCIMToken(r.Context(), conn)
	var unknown *UnknownConnectionError
	if errors.As(err, &unknown) {
		h.s.record(audit.Event{Event: "admin", Outcome: "denied", Reason: "rotate SCIM token: " + unknown.Error(), ClientAddr: clientIP(r)})
		oauthError(w, http.StatusNotFound, "not_found", unknown.Error())
		return
	} else if err != nil {
		h.s.internal(w, err)
		return
	}
	h.s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "rotate SCIM token of " + conn, ClientAddr: clientIP(r)})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"connection": conn, "token": tok})
}

func (h *adminHandlers) deleteSCIMToken(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("connection")
	err := h.opt.Store.DeleteSCIMToken(r.Context(), conn)
	if errors.Is(err, store.ErrNotFound) {
		oauthError(w, http.StatusNotFound, "not_found", "connection "+strconv.Quote(conn)+" has no SCIM token: its directory sync is already off")
		return
	} else if err != nil {
		h.s.internal(w, err)
		return
	}
	h.s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "stop directory sync of " + conn, ClientAddr: clientIP(r), Issuer: conn})
	w.WriteHeader(http.StatusNoContent)
}

// listConnections shows the connections' state; with patchConnection it
// is the way back in when the IdP fails after every administrator has
// logged in through it.
func (h *adminHandlers) listConnections(w http.ResponseWriter, r *http.Request) {
	states, err := h.s.connStates(r.Context())
	if err != nil {
		h.s.internal(w, err)
		return
	}
	out := []map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(states)) {
		st := states[name]
		out = append(out, map[string]any{"name": name, "enabled": st.Enabled, "enforce_mfa": st.EnforceMFA, "updated_by": st.UpdatedBy, "updated": st.Updated})
	}
	writeJSON(w, http.StatusOK, map[string]any{"connections": out})
}

func (h *adminHandlers) patchConnection(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Enabled    *bool `json:"enabled"`
		EnforceMFA *bool `json:"enforce_mfa"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", `the body must be JSON: {"enabled": true|false, "enforce_mfa": true|false}`)
		return
	}
	name := r.PathValue("name")
	what, err := h.s.setConnection(r.Context(), name, body.Enabled, body.EnforceMFA, "the admin API")
	if bad := inputError(""); errors.As(err, &bad) {
		oauthError(w, http.StatusBadRequest, "invalid_request", bad.Error())
		return
	} else if err != nil {
		h.s.internal(w, err)
		return
	}
	h.s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: what, ClientAddr: clientIP(r), Issuer: name})
	writeJSON(w, http.StatusOK, map[string]string{"status": what + " on every node"})
}

// UnknownConnectionError refuses a SCIM token for a connection the
// config does not have.
type UnknownConnectionError struct {
	Connection string
	Known      []string
}

func (e *UnknownConnectionError) Error() string {
	known := "none is configured"
	if len(e.Known) > 0 {
		known = "configured: " + strings.Join(e.Known, ", ")
	}
	return "no connection is named " + strconv.Quote(e.Connection) + " (" + known + "): a SCIM token belongs to a configured SSO connection or issuer"
}

// adminAPI is the admin token as the directory's actor.
var adminAPI = directory.Actor{Kind: directory.ActorAdminAPI}

// inputError is a request the caller must correct; its text says how.
type inputError string

func (e inputError) Error() string { return string(e) }

// putTeam creates or replaces a team whose roles are configured ones;
// the directory has every node re-check its members' sessions. created
// says the team could not be read before (the console's audit line says
// "create" then).
func (s *Server) putTeam(ctx context.Context, a directory.Actor, t store.Team) (saved store.Team, created bool, err error) {
	saved, created, err = s.dir.PutTeam(ctx, a, t)
	if errors.Is(err, directory.ErrInvalid) {
		return saved, created, inputError(err.Error())
	}
	return saved, created, err
}

func (s *Server) internal(w http.ResponseWriter, err error) {
	s.opt.Log.Error("admin API", "err", err)
	oauthError(w, http.StatusInternalServerError, "server_error", "the request failed: see the server log")
}

// patchUser sets a user's active flag and role (the administrator role
// included: the admin token grants it): the same directory operations as
// the console's, with the same guarantees (one transaction with the
// events the proxy nodes act on).
func (h *adminHandlers) patchUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Active *bool   `json:"active"`
		Role   *string `json:"role"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Active == nil && body.Role == nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", `the body must be JSON: {"active": true|false, "role": "..."}`)
		return
	}
	ctx, id := r.Context(), r.PathValue("id")
	var u store.User
	var err error
	if body.Role != nil {
		u, err = h.s.dir.SetRole(ctx, adminAPI, id, *body.Role)
	}
	if err == nil && body.Active != nil {
		u, err = h.s.dir.SetActive(ctx, adminAPI, id, *body.Active)
	}
	var refused *directory.Error
	switch {
	case errors.As(err, &refused):
		oauthError(w, http.StatusBadRequest, "invalid_request", refused.Reason)
		return
	case errors.Is(err, store.ErrNotFound):
		oauthError(w, http.StatusNotFound, "not_found", "no user has the id "+strconv.Quote(id))
		return
	case err != nil:
		h.s.internal(w, err)
		return
	}
	h.s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "update user " + u.UserName, ClientAddr: clientIP(r), Subject: u.UserName})
	writeJSON(w, http.StatusOK, map[string]any{"id": u.ID, "user_name": u.UserName, "active": u.Active, "role": u.Role, "source": u.Source})
}
