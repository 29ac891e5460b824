package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/auth/local"
	"github.com/portcullisdb/portcullis/auth/username"
	"github.com/portcullisdb/portcullis/store"
)

// SSO enablement, as PlanetScale does it. A deployment is one
// organisation, so "one email belongs to at most one SSO-enabled
// organisation" holds by construction.
//
//   - An administrator turns IdP connections on and off, and their
//     "enforce MFA", in the console. The state is a store.ConnectionSetting,
//     so every node sharing the store sees it at the next request; until
//     the first change the config file's state holds.
//   - While a connection is enabled, a local account's password login
//     (and the refresh of a login it made) is refused, except an
//     administrator's until their first SSO login, which is recorded on
//     the user. The password hash is kept: with every connection off,
//     passwords work again.
//   - While directory sync is on (a connection has a SCIM token), local
//     accounts cannot be created: the IdP provisions people.

// connState is what an IdP connection does now.
type connState struct {
	Enabled, EnforceMFA bool
	UpdatedBy           string    // "" while the config file's state holds
	Updated             time.Time // zero while the config file's state holds
}

// connStates is the state of every IdP connection (not "local"): the
// store's setting, else the config file's.
func (s *Server) connStates(ctx context.Context) (map[string]connState, error) {
	out := map[string]connState{}
	rt := s.sso()
	if rt == nil {
		return out, nil
	}
	for _, n := range rt.names {
		if c := rt.conns[n]; !c.local {
			out[n] = connState{Enabled: !c.Disabled, EnforceMFA: c.EnforceMFA}
		}
	}
	settings, err := rt.opt.Store.ListConnectionSettings(ctx)
	if err != nil {
		return out, err
	}
	for _, st := range settings {
		if _, ok := out[st.Connection]; ok { // a connection no longer configured is ignored
			out[st.Connection] = connState{Enabled: st.Enabled, EnforceMFA: st.EnforceMFA, UpdatedBy: st.UpdatedBy, Updated: st.Updated}
		}
	}
	return out, nil
}

// enabledConnections are the enabled IdP connections, by name.
func (s *Server) enabledConnections(ctx context.Context) ([]*SSOConnection, error) {
	states, err := s.connStates(ctx)
	if err != nil {
		return nil, err
	}
	var out []*SSOConnection
	for _, n := range s.sso().names {
		if states[n].Enabled {
			out = append(out, s.sso().conns[n])
		}
	}
	return out, nil
}

// setConnection changes what a connection does (a nil value stays as it
// is) for every node, and says what changed ("disabled connection
// okta").
func (s *Server) setConnection(ctx context.Context, name string, enabled, enforceMFA *bool, by string) (string, error) {
	states, err := s.connStates(ctx)
	if err != nil {
		return "", err
	}
	cur, ok := states[name]
	switch {
	case !ok:
		return "", inputError("no IdP connection is named " + clip(name))
	case enabled == nil && enforceMFA == nil:
		return "", inputError("nothing to change: set enabled or enforce_mfa")
	}
	var what []string
	if enabled != nil {
		cur.Enabled = *enabled
		what = append(what, map[bool]string{true: "enabled", false: "disabled"}[*enabled])
	}
	if enforceMFA != nil {
		cur.EnforceMFA = *enforceMFA
		what = append(what, map[bool]string{true: "MFA enforced on", false: "MFA no longer enforced on"}[*enforceMFA])
	}
	_, err = s.sso().opt.Store.PutConnectionSetting(ctx, store.ConnectionSetting{Connection: name, Enabled: cur.Enabled, EnforceMFA: cur.EnforceMFA, UpdatedBy: by})
	return strings.Join(what, ", ") + " connection " + name, err
}

// ssoLoginKey records in User.Extra when an account with local
// credentials first logged in through an IdP. The "urn:portcullis:local:"
// prefix keeps it out of SCIM's reach, like the credentials.
const ssoLoginKey = "urn:portcullis:local:first_sso_login"

// firstSSOLogin is when u first logged in through an IdP, if recorded.
func firstSSOLogin(u store.User) (time.Time, bool) {
	extra := map[string]json.RawMessage{}
	json.Unmarshal(u.Extra, &extra)
	var at time.Time
	raw, ok := extra[ssoLoginKey]
	return at, ok && json.Unmarshal(raw, &at) == nil
}

// noteSSOLogin records the first SSO login of an account that has local
// credentials, once the whole login (portcullis' second factor included)
// succeeded; from then on an administrator's password is refused too.
func (s *Server) noteSSOLogin(ctx context.Context, st store.Store, u store.User) store.User {
	for range 3 {
		extra := map[string]json.RawMessage{}
		json.Unmarshal(u.Extra, &extra)
		if _, local := extra[localExtraKey]; !local {
			return u
		}
		if _, done := extra[ssoLoginKey]; done {
			return u
		}
		extra[ssoLoginKey] = mustJSON(time.Now().UTC())
		next := u
		next.Extra = mustJSON(extra)
		saved, err := st.UpdateUser(ctx, next, u.Version)
		if err == nil {
			s.opt.Log.Info("sso: first SSO login of an account with a password", "user", u.UserName, "role", u.Role)
			return saved
		}
		if !errors.Is(err, store.ErrVersionMismatch) {
			s.opt.Log.Error("sso: record the first SSO login", "user", u.UserName, "err", err)
			return u
		}
		fresh, err := st.GetUser(ctx, u.ID)
		if err != nil {
			s.opt.Log.Error("sso: record the first SSO login", "user", u.UserName, "err", err)
			return u // the login goes on as the user it authenticated
		}
		u = fresh
	}
	return u
}

// passwordRefusal is why u may not log in with a password while the
// connections enabled are on, or "".
func passwordRefusal(u store.User, enabled []*SSOConnection) string {
	if len(enabled) == 0 {
		return ""
	}
	var names, flags []string
	for _, c := range enabled {
		names = append(names, c.DisplayName)
		flags = append(flags, "portcullis login --connection "+c.Name)
	}
	how := "log in with " + strings.Join(names, " or ") + " (the button below, or " + strings.Join(flags, ", ") + ")"
	if u.Role != AdminRole {
		return "single sign-on is on for this organisation, so password login is off: " + how +
			"; your password is kept and works again if an administrator turns single sign-on off"
	}
	if at, ok := firstSSOLogin(u); ok {
		return "administrators log in with single sign-on once they have used it (you did on " + at.Format("2006-01-02") + "): " + how
	}
	return ""
}

// connRefusal is why a login through conn may not be refreshed now, or "".
func (s *Server) connRefusal(ctx context.Context, conn *SSOConnection, u store.User) (string, error) {
	if conn.local {
		enabled, err := s.enabledConnections(ctx)
		if err != nil {
			return "", err
		}
		return passwordRefusal(u, enabled), nil
	}
	states, err := s.connStates(ctx)
	if err != nil || states[conn.Name].Enabled {
		return "", err
	}
	return "an administrator disabled the IdP connection " + conn.Name + " of this login: run portcullis login with another connection", nil
}

// syncOnError refuses a local account while directory sync is on.
type syncOnError struct{ connections []string }

func (e *syncOnError) Error() string {
	return "local accounts cannot be created while directory sync (SCIM) is on for " + strings.Join(e.connections, ", ") +
		": add the person at the IdP, which provisions them; or stop the sync first (portcullis scim delete-token CONNECTION, or the console's Directory page)"
}

// createLocalUser makes a local account with a random initial password,
// returned once; refused while directory sync is on.
func (s *Server) createLocalUser(ctx context.Context, st store.Store, name, role, display string) (store.User, string, error) {
	synced, err := syncedConnections(ctx, st)
	if err != nil {
		return store.User{}, "", err
	}
	if len(synced) > 0 {
		return store.User{}, "", &syncOnError{connections: synced}
	}
	name, err = username.Display(name)
	if err != nil {
		return store.User{}, "", inputError(err.Error())
	}
	password := local.GeneratePassword()
	nu := store.User{UserName: name, DisplayName: display, Active: true, Role: role, Source: store.SourceLocal}
	if strings.Contains(name, "@") {
		nu.Emails = []store.Email{{Value: name, Primary: true}}
	}
	u, err := st.CreateUser(ctx, nu)
	if err != nil {
		return u, "", err
	}
	u, err = st.UpdateUser(ctx, s.local.withCreds(u, creds{PasswordHash: local.Hash(password), PasswordSet: time.Now().UTC()}), u.Version)
	return u, password, err
}

// syncedConnections names the connections with directory sync on: those
// holding a SCIM token.
func syncedConnections(ctx context.Context, st store.Store) ([]string, error) {
	tokens, err := st.ListSCIMTokens(ctx)
	var names []string
	for _, t := range tokens {
		names = append(names, t.Connection)
	}
	return names, err
}

// webRedirect marks an SSO login for a browser session (/account, the
// console) rather than for the CLI.
const webRedirect = "portcullis:web"

// webSSO starts an SSO login in the browser: GET /login/sso/{conn}.
func (s *Server) webSSO(w http.ResponseWriter, r *http.Request) {
	rt := s.sso()
	conn, ok := rt.conns[r.PathValue("conn")]
	if !ok || conn.local {
		s.local.render(w, r, http.StatusNotFound, "login", view{Title: "Log in", Error: "no IdP connection is named " + clip(r.PathValue("conn")), Data: s.ssoLinks(r, nil)})
		return
	}
	p := pending{Conn: conn.Name, Redirect: webRedirect, State: randomToken(16), Expires: time.Now().Add(loginTTL).Unix()}
	s.startIdP(w, r, rt, conn, p)
}
