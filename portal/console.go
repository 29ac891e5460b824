package portal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/store"
)

// The admin console: users (create, disable, enable), this node's live
// sessions (kill), the audit log's tail, and the directory: IdP
// connections (enable, disable, enforce MFA), SCIM tokens, teams. Only
// an administrator (role "administrator"), signed in with portcullis'
// second factor, may use it; every action is audited.

// auditTailBytes is how much of the audit log the console reads.
const auditTailBytes = 512 << 10

func (s *Server) mountConsole() {
	s.mux.HandleFunc("GET /console", s.consoleAdmin(s.consoleUsers))
	s.mux.HandleFunc("GET /console/sessions", s.consoleAdmin(s.consoleSessions))
	s.mux.HandleFunc("GET /console/audit", s.consoleAdmin(s.consoleAudit))
	s.mux.HandleFunc("GET /console/directory", s.consoleAdmin(s.consoleDirectory))
	s.mux.HandleFunc("POST /console/scim/{connection}/token", s.consoleAdmin(s.consoleRotateSCIM))
	s.mux.HandleFunc("POST /console/scim/{connection}/stop", s.consoleAdmin(s.consoleStopSCIM))
	s.mux.HandleFunc("POST /console/connections/{name}", s.consoleAdmin(s.consoleSetConnection))
	s.mux.HandleFunc("POST /console/users/local", s.consoleAdmin(s.consoleCreateLocal))
	s.mux.HandleFunc("POST /console/teams", s.consoleAdmin(s.consolePutTeam))
	s.mux.HandleFunc("POST /console/teams/{name}/delete", s.consoleAdmin(s.consoleDeleteTeam))
	s.mux.HandleFunc("POST /console/users/{id}/active", s.consoleAdmin(s.consoleSetActive))
	s.mux.HandleFunc("POST /console/sessions/{id}/kill", s.consoleAdmin(s.consoleKill))
}

// consoleAdmin lets through an administrator with a live, MFA-checked
// session (and, for a POST, the form's CSRF token).
func (s *Server) consoleAdmin(h func(http.ResponseWriter, *http.Request, store.User)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lr := s.local
		u, ws, ok := lr.session(r)
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if u.Role != AdminRole || !ws.MFA {
			s.record(audit.Event{Event: "admin", Outcome: "denied", Reason: "console: not an administrator", ClientAddr: clientIP(r), User: u.UserName})
			lr.render(w, r, http.StatusForbidden, "account", view{Title: "Your account", User: u.UserName, SignedIn: true,
				Error: "the console is for administrators (role " + AdminRole + ", signed in with a second factor)", Data: accountData{Role: u.Role, Source: u.Source}})
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !lr.csrfOK(r) {
				lr.render(w, r, http.StatusForbidden, "console_users", view{Title: "Users", User: u.UserName, Admin: true,
					Error: "the form expired or came from another site: reload the page and try again", Data: usersView{}})
				return
			}
		}
		h(w, r, u)
	}
}

type userRow struct {
	ID, UserName, Role, Source string
	Active                     bool
	Updated                    time.Time
	SSOSince                   time.Time // first SSO login of an account with a password
}

type usersView struct {
	Users    []userRow
	Roles    []string
	SyncOn   []string // connections with directory sync: no local accounts
	Created  string   // an account just made, with its initial password shown once
	Password string
}

func (s *Server) consoleUsers(w http.ResponseWriter, r *http.Request, admin store.User) {
	s.renderUsers(w, r, http.StatusOK, admin, usersView{}, clip(r.URL.Query().Get("done")), "")
}

func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, status int, admin store.User, v usersView, notice, msg string) {
	v.Roles = append(append([]string{}, s.local.opt.Roles...), AdminRole)
	var err error
	if v.SyncOn, err = syncedConnections(r.Context(), s.local.opt.Store); err != nil {
		s.opt.Log.Error("console: list SCIM tokens", "err", err)
	}
	var rows []userRow
	for offset := 0; ; {
		users, total, err := s.local.opt.Store.ListUsers(r.Context(), store.ListOptions{Offset: offset, Limit: 500})
		if err != nil {
			s.opt.Log.Error("console: list users", "err", err)
			break
		}
		for _, u := range users {
			row := userRow{ID: u.ID, UserName: u.UserName, Role: u.Role, Source: u.Source, Active: u.Active, Updated: u.Updated}
			row.SSOSince, _ = firstSSOLogin(u)
			rows = append(rows, row)
		}
		offset += len(users)
		if len(users) == 0 || offset >= total {
			break
		}
	}
	v.Users = rows
	s.local.render(w, r, status, "console_users", view{Title: "Users", User: admin.UserName, Admin: true, Notice: notice, Error: msg, Data: v})
}

// consoleCreateLocal makes a local account and shows its initial
// password once; refused while directory sync is on.
func (s *Server) consoleCreateLocal(w http.ResponseWriter, r *http.Request, admin store.User) {
	name, role := r.PostFormValue("username"), r.PostFormValue("role")
	fail := func(status int, msg string) {
		s.record(audit.Event{Event: "admin", Outcome: "denied", Reason: "console: create local user " + name + ": " + msg, ClientAddr: clientIP(r), User: admin.UserName, Subject: name})
		s.renderUsers(w, r, status, admin, usersView{}, "", msg)
	}
	if name == "" || (role != "" && role != AdminRole && !slices.Contains(s.local.opt.Roles, role)) {
		fail(http.StatusBadRequest, "give a user name and one of the roles listed")
		return
	}
	u, password, err := s.createLocalUser(r.Context(), s.local.opt.Store, name, role, "")
	var (
		syncOn *syncOnError
		bad    inputError
	)
	switch {
	case errors.As(err, &bad):
		fail(http.StatusBadRequest, bad.Error())
		return
	case errors.As(err, &syncOn):
		fail(http.StatusConflict, err.Error())
		return
	case errors.Is(err, store.ErrConflict):
		fail(http.StatusConflict, "a user named "+name+" already exists")
		return
	case err != nil:
		s.opt.Log.Error("console: create local user", "err", err)
		fail(http.StatusInternalServerError, "the account could not be created: see the server log")
		return
	}
	s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "console: create local user " + u.UserName + " by " + admin.UserName,
		ClientAddr: clientIP(r), User: admin.UserName, Subject: u.UserName})
	s.renderUsers(w, r, http.StatusOK, admin, usersView{Created: u.UserName, Password: password},
		"Created "+u.UserName+". Give them the initial password below over a private channel: it is not shown again.", "")
}

// consoleSetActive disables or enables a user. Disabling revokes the
// user's logins and tells every proxy node to end the user's sessions.
func (s *Server) consoleSetActive(w http.ResponseWriter, r *http.Request, admin store.User) {
	ctx := r.Context()
	st := s.local.opt.Store
	active := r.PostFormValue("active") == "true"
	var u store.User
	var err error
	for range 3 {
		if u, err = st.GetUser(ctx, r.PathValue("id")); err != nil {
			break
		}
		if u.ID == admin.ID && !active {
			err = errors.New("you cannot disable your own account")
			break
		}
		u.Active = active
		if u, err = st.UpdateUser(ctx, u, u.Version); !errors.Is(err, store.ErrVersionMismatch) {
			break
		}
	}
	if err != nil {
		s.opt.Log.Error("console: set active", "admin", admin.UserName, "err", err)
		http.Redirect(w, r, "/console?done="+urlQuery("the change failed: "+err.Error()), http.StatusSeeOther)
		return
	}
	verb := "enable"
	if !active {
		verb = "disable"
		data := mustJSON(map[string]string{"user_id": u.ID, "reason": "disabled in the console by " + admin.UserName})
		if _, err := st.AppendEvent(ctx, store.Event{Kind: store.EventUserDeactivated, Subject: u.UserName, Data: data}); err != nil {
			s.opt.Log.Error("console: append deactivated event", "user", u.UserName, "err", err)
		}
		if _, err := st.RevokeUserRefreshTokens(ctx, u.ID, time.Now()); err != nil {
			s.opt.Log.Error("console: revoke refresh tokens", "user", u.UserName, "err", err)
		}
	}
	s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "console: " + verb + " user " + u.UserName + " by " + admin.UserName,
		ClientAddr: clientIP(r), User: admin.UserName, Subject: u.UserName})
	http.Redirect(w, r, "/console?done="+urlQuery(u.UserName+" is "+verb+"d"), http.StatusSeeOther)
}

func (s *Server) consoleSessions(w http.ResponseWriter, r *http.Request, admin store.User) {
	var list []SessionInfo
	if s.local.opt.Sessions != nil {
		list = s.local.opt.Sessions()
	}
	s.local.render(w, r, http.StatusOK, "console_sessions", view{Title: "Live sessions", User: admin.UserName, Admin: true,
		Notice: clip(r.URL.Query().Get("done")), Data: list})
}

// consoleKill ends a session as DELETE /v1/admin/sessions/{id} does:
// through the event log, so the node that holds it ends it.
func (s *Server) consoleKill(w http.ResponseWriter, r *http.Request, admin store.User) {
	id := r.PathValue("id")
	if _, err := strconv.ParseUint(id, 10, 32); err != nil {
		http.Redirect(w, r, "/console/sessions?done="+urlQuery("a session id is a number"), http.StatusSeeOther)
		return
	}
	if _, err := s.local.opt.Store.AppendEvent(r.Context(), store.Event{Kind: store.EventSessionKill, Subject: id}); err != nil {
		s.opt.Log.Error("console: kill session", "err", err)
		http.Redirect(w, r, "/console/sessions?done="+urlQuery("the kill failed: see the server log"), http.StatusSeeOther)
		return
	}
	s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "console: kill session " + id + " by " + admin.UserName, ClientAddr: clientIP(r), User: admin.UserName})
	http.Redirect(w, r, "/console/sessions?done="+urlQuery("session "+id+" ends within a second"), http.StatusSeeOther)
}

type auditView struct {
	User, Outcome string
	Outcomes      []string
	Events        []audit.Event
}

// consoleAudit shows the newest audit events (of the file's last 512
// KiB), filtered by user and outcome.
func (s *Server) consoleAudit(w http.ResponseWriter, r *http.Request, admin store.User) {
	q := r.URL.Query()
	v := auditView{User: strings.TrimSpace(q.Get("user")), Outcome: q.Get("outcome"), Outcomes: []string{"", "granted", "denied", "error", "closed"}}
	events, err := tailAudit(s.local.opt.AuditFile, auditTailBytes)
	if err != nil {
		s.opt.Log.Error("console: read the audit log", "err", err)
	}
	for i := len(events) - 1; i >= 0 && len(v.Events) < 200; i-- {
		e := events[i]
		if v.User != "" && !strings.Contains(strings.ToLower(e.User+" "+e.Identity+" "+e.Subject), strings.ToLower(v.User)) {
			continue
		}
		if v.Outcome != "" && e.Outcome != v.Outcome {
			continue
		}
		v.Events = append(v.Events, e)
	}
	s.local.render(w, r, http.StatusOK, "console_audit", view{Title: "Audit events", User: admin.UserName, Admin: true, Data: v})
}

func tailAudit(path string, n int64) ([]audit.Event, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	start := max(fi.Size()-n, 0)
	buf := make([]byte, fi.Size()-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if start > 0 { // drop the partial first line
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	var out []audit.Event
	sc := bufio.NewScanner(bytes.NewReader(buf))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e audit.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

func urlQuery(s string) string { return url.QueryEscape(s) }

type connRow struct {
	Name, Label, Type string
	RequireSCIM, Sync bool // Sync: the connection has a SCIM token
	State             connState
}

// teamRow is a team with a checkbox per configured role.
type teamRow struct {
	Name, Groups string // Groups comma-separated, as the form takes them
	Roles        []roleBox
}

type roleBox struct {
	Name string
	On   bool
}

type directoryView struct {
	Teams       []teamRow
	NewTeam     []roleBox // the new-team form's boxes
	Connections []connRow
	SSOOn       bool   // an IdP connection is enabled: local passwords are off
	SCIM        bool   // SCIM tokens can be rotated here
	NewToken    string // a token just made, shown this once
	TokenFor    string
}

func (s *Server) directoryData(r *http.Request) directoryView {
	var d directoryView
	teams, err := s.local.opt.Store.ListTeams(r.Context())
	if err != nil {
		s.opt.Log.Error("console: list teams", "err", err)
	}
	roles := s.local.opt.Roles
	for _, t := range append(teams, store.Team{}) { // the last: the new-team form
		row := teamRow{Name: t.Name, Groups: strings.Join(t.Groups, ", ")}
		for _, role := range roles {
			row.Roles = append(row.Roles, roleBox{Name: role, On: slices.Contains(t.Roles, role)})
		}
		if t.Name == "" {
			d.NewTeam = row.Roles
		} else {
			d.Teams = append(d.Teams, row)
		}
	}
	states, err := s.connStates(r.Context())
	if err != nil {
		s.opt.Log.Error("console: read the connections' state", "err", err)
	}
	synced, err := syncedConnections(r.Context(), s.local.opt.Store)
	if err != nil {
		s.opt.Log.Error("console: list SCIM tokens", "err", err)
	}
	if rt := s.sso(); rt != nil {
		for _, n := range rt.names {
			c := rt.conns[n]
			if c.local {
				continue
			}
			d.Connections = append(d.Connections, connRow{Name: c.Name, Label: c.DisplayName, Type: c.method(), RequireSCIM: c.RequireSCIM,
				Sync: slices.Contains(synced, c.Name), State: states[c.Name]})
			d.SSOOn = d.SSOOn || states[c.Name].Enabled
		}
	}
	d.SCIM = s.opt.Admin.RotateSCIMToken != nil
	return d
}

// consoleDirectory shows the IdP connections and the teams with their
// roles.
func (s *Server) consoleDirectory(w http.ResponseWriter, r *http.Request, admin store.User) {
	s.local.render(w, r, http.StatusOK, "console_directory", view{Title: "Directory", User: admin.UserName, Admin: true,
		Notice: clip(r.URL.Query().Get("done")), Data: s.directoryData(r)})
}

// consoleSetConnection enables or disables an IdP connection, or turns
// its "enforce MFA" on or off (form fields set=enabled|enforce_mfa and
// value=true|false), for every node sharing the store.
func (s *Server) consoleSetConnection(w http.ResponseWriter, r *http.Request, admin store.User) {
	name := r.PathValue("name")
	on := r.PostFormValue("value") == "true"
	var enabled, enforce *bool
	switch r.PostFormValue("set") {
	case "enabled":
		enabled = &on
	case "enforce_mfa":
		enforce = &on
	}
	what, err := s.setConnection(r.Context(), name, enabled, enforce, admin.UserName)
	if err != nil {
		status, msg := http.StatusInternalServerError, "the change could not be saved: see the server log"
		if bad := inputError(""); errors.As(err, &bad) {
			status, msg = http.StatusBadRequest, bad.Error()
		} else {
			s.opt.Log.Error("console: set the connection's state", "connection", name, "err", err)
		}
		s.local.render(w, r, status, "console_directory", view{Title: "Directory", User: admin.UserName, Admin: true, Error: msg, Data: s.directoryData(r)})
		return
	}
	s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "console: " + what + " by " + admin.UserName, ClientAddr: clientIP(r), User: admin.UserName, Issuer: name})
	http.Redirect(w, r, "/console/directory?done="+urlQuery(strings.ToUpper(what[:1])+what[1:]+" (on every node)."), http.StatusSeeOther)
}

// consoleStopSCIM deletes a connection's SCIM token: the IdP's directory
// sync stops, and local accounts can be created again.
func (s *Server) consoleStopSCIM(w http.ResponseWriter, r *http.Request, admin store.User) {
	conn := r.PathValue("connection")
	err := s.local.opt.Store.DeleteSCIMToken(r.Context(), conn)
	if errors.Is(err, store.ErrNotFound) {
		s.local.render(w, r, http.StatusNotFound, "console_directory", view{Title: "Directory", User: admin.UserName, Admin: true,
			Error: "connection " + clip(conn) + " has no SCIM token: its directory sync is already off", Data: s.directoryData(r)})
		return
	} else if err != nil {
		s.opt.Log.Error("console: delete SCIM token", "connection", conn, "err", err)
		http.Redirect(w, r, "/console/directory?done="+urlQuery("the change failed: see the server log"), http.StatusSeeOther)
		return
	}
	s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "console: stop directory sync of " + conn + " by " + admin.UserName, ClientAddr: clientIP(r), User: admin.UserName, Issuer: conn})
	http.Redirect(w, r, "/console/directory?done="+urlQuery("Directory sync of "+conn+" is off: its SCIM token no longer works."), http.StatusSeeOther)
}

// consoleRotateSCIM makes a new SCIM token for a connection and shows it
// once, on this response only.
func (s *Server) consoleRotateSCIM(w http.ResponseWriter, r *http.Request, admin store.User) {
	conn := r.PathValue("connection")
	d := s.directoryData(r)
	known := false
	for _, c := range d.Connections {
		known = known || c.Name == conn
	}
	if !known || !d.SCIM {
		s.local.render(w, r, http.StatusNotFound, "console_directory", view{Title: "Directory", User: admin.UserName, Admin: true,
			Error: "no IdP connection is named " + conn, Data: d})
		return
	}
	tok, err := s.opt.Admin.RotateSCIMToken(r.Context(), conn)
	if err != nil {
		s.opt.Log.Error("console: rotate SCIM token", "connection", conn, "err", err)
		s.local.render(w, r, http.StatusInternalServerError, "console_directory", view{Title: "Directory", User: admin.UserName, Admin: true,
			Error: "the token could not be made: see the server log", Data: d})
		return
	}
	s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "console: rotate SCIM token of " + conn + " by " + admin.UserName, ClientAddr: clientIP(r), User: admin.UserName})
	d = s.directoryData(r) // read again: sync is on for conn now
	d.NewToken, d.TokenFor = tok, conn
	s.local.render(w, r, http.StatusOK, "console_directory", view{Title: "Directory", User: admin.UserName, Admin: true,
		Notice: "The new SCIM token of " + conn + " is below. Paste it into the IdP now: it is not shown again, and the old one no longer works.", Data: d})
}

// consolePutTeam creates or replaces a team: its directory groups
// (comma-separated) and roles (a checkbox each).
func (s *Server) consolePutTeam(w http.ResponseWriter, r *http.Request, admin store.User) {
	t := store.Team{Name: strings.TrimSpace(r.PostFormValue("name")), Roles: r.PostForm["roles"]}
	for _, g := range strings.Split(r.PostFormValue("groups"), ",") {
		if g = strings.TrimSpace(g); g != "" {
			t.Groups = append(t.Groups, g)
		}
	}
	saved, created, err := s.putTeam(r.Context(), s.local.opt.Store, s.local.opt.Roles, t)
	verb := "update"
	if created {
		verb = "create"
	}
	if err != nil {
		msg := err.Error() // an inputError says what to correct
		if bad := inputError(""); !errors.As(err, &bad) {
			s.opt.Log.Error("console: put team", "team", t.Name, "err", err)
			msg = "the team could not be saved: see the server log"
		}
		s.record(audit.Event{Event: "admin", Outcome: "denied", Reason: "console: " + verb + " team " + t.Name + ": " + msg, ClientAddr: clientIP(r), User: admin.UserName})
		s.local.render(w, r, http.StatusBadRequest, "console_directory", view{Title: "Directory", User: admin.UserName, Admin: true, Error: msg, Data: s.directoryData(r)})
		return
	}
	s.record(audit.Event{Event: "admin", Outcome: "granted", ClientAddr: clientIP(r), User: admin.UserName,
		Reason: "console: " + verb + " team " + saved.Name + " (groups " + strings.Join(saved.Groups, ", ") + "; roles " + strings.Join(saved.Roles, ", ") + ") by " + admin.UserName})
	http.Redirect(w, r, "/console/directory?done="+urlQuery("Team "+saved.Name+" saved; its members' sessions are re-checked on every node."), http.StatusSeeOther)
}

// consoleDeleteTeam deletes a team; its members lose the roles it gave.
func (s *Server) consoleDeleteTeam(w http.ResponseWriter, r *http.Request, admin store.User) {
	name := r.PathValue("name")
	err := s.deleteTeam(r.Context(), s.local.opt.Store, name)
	if errors.Is(err, store.ErrNotFound) {
		s.local.render(w, r, http.StatusNotFound, "console_directory", view{Title: "Directory", User: admin.UserName, Admin: true,
			Error: "no team is named " + clip(name), Data: s.directoryData(r)})
		return
	} else if err != nil {
		s.opt.Log.Error("console: delete team", "team", name, "err", err)
		http.Redirect(w, r, "/console/directory?done="+urlQuery("the change failed: see the server log"), http.StatusSeeOther)
		return
	}
	s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "console: delete team " + name + " by " + admin.UserName, ClientAddr: clientIP(r), User: admin.UserName})
	http.Redirect(w, r, "/console/directory?done="+urlQuery("Team "+name+" deleted; its members' sessions are re-checked on every node."), http.StatusSeeOther)
}
