package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/directory"
	"github.com/portcullisdb/portcullis/store"
)

// Lifetimes of the one-time code: the loopback redirect is immediate; a
// person copies the pasted one by hand.
const (
	codeTTL    = time.Minute
	oobCodeTTL = 5 * time.Minute
)

// ssoLogin is who an IdP vouched for, whichever the protocol.
type ssoLogin struct {
	subject, username, email           string
	displayName, givenName, familyName string
	attributes                         map[string][]string
	upstreamRefresh                    string    // OIDC: the IdP's refresh token, if it gave one
	assertionID                        string    // SAML: for the replay record shared by every node
	assertionExpires                   time.Time // SAML
}

// codeData is kept with a one-time code until the CLI redeems it.
type codeData struct {
	Conn      string `json:"conn"`
	Method    string `json:"method"`
	Redirect  string `json:"redirect_uri"`
	Challenge string `json:"code_challenge"`
	Subject   string `json:"subject"`
	Upstream  string `json:"upstream,omitempty"` // sealed IdP refresh token
}

// completeLogin turns a verified IdP login into a one-time code for the
// CLI (the code goes to the CLI's loopback redirect, or onto a page to
// copy) or a browser session: the user is created or updated first.
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request, rt *ssoRuntime, conn *SSOConnection, p pending, l ssoLogin) {
	ctx := r.Context()
	st := rt.opt.Store
	// Checked again: the connection may have been disabled while the
	// person was at the IdP.
	state, lerr := s.checkEnabled(ctx, conn)
	if lerr != nil {
		s.loginFailed(w, r, &p, conn.Name, lerr)
		return
	}
	u, lerr := s.ssoUser(ctx, rt, conn, l)
	if lerr != nil {
		s.loginFailed(w, r, &p, conn.Name, lerr)
		return
	}
	if l.assertionID != "" {
		// The SP's replay cache is per node; this record stops a replay
		// on another node that shares the store.
		_, err := st.CreateAuthCode(ctx, store.AuthCode{Hash: hashSecret("saml assertion", conn.Name+"|"+l.assertionID),
			UserID: u.ID, Data: json.RawMessage(`{"kind":"saml replay record"}`), ExpiresAt: l.assertionExpires})
		if errors.Is(err, store.ErrConflict) {
			s.loginFailed(w, r, &p, conn.Name, badLogin(http.StatusForbidden, "access_denied", "this assertion was already used (a replayed SAML response): start the login again"))
			return
		}
		if err != nil {
			s.loginInternal(w, r, &p, conn.Name, err)
			return
		}
	}
	web := p.Redirect == webRedirect
	// The console needs a second factor: an administrator's browser
	// login gets portcullis' own, whatever the connection enforces.
	if s.local != nil && (state.EnforceMFA || web && u.Role == AdminRole) {
		s.ssoSecondFactor(w, r, rt, conn, p, u, l.subject, l.upstreamRefresh)
		return
	}
	if web {
		s.finishLocal(w, r, u, loginState{UID: u.ID, Pending: &p, Conn: conn.Name, Subject: l.subject}, false)
		return
	}
	s.issueCode(w, r, rt, conn, p, u, l.subject, l.upstreamRefresh)
}

// checkEnabled returns the connection's state, refusing a login through
// a connection an administrator disabled.
func (s *Server) checkEnabled(ctx context.Context, conn *SSOConnection) (connState, *loginError) {
	states, err := s.connStates(ctx)
	if err != nil {
		s.opt.Log.Error("sso: read the connections' state", "connection", conn.Name, "err", err)
		return connState{}, badLogin(http.StatusInternalServerError, "server_error", "the login could not be completed: see the server log")
	}
	if !states[conn.Name].Enabled {
		return connState{}, badLogin(http.StatusForbidden, "access_denied",
			"an administrator disabled the IdP connection %s: log in with another connection, or ask an administrator to enable it again", conn.Name)
	}
	return states[conn.Name], nil
}

// issueCode ends a login, whichever its kind: a one-time code for the
// CLI, sent to its loopback redirect or shown on a page to copy.
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, rt *ssoRuntime, conn *SSOConnection, p pending, u store.User, subject, upstreamRefresh string) {
	ctx := r.Context()
	st := rt.opt.Store
	if !conn.local {
		u = s.noteSSOLogin(ctx, st, u)
	}
	family := uuid.NewString()
	code, ttl := randomToken(32), codeTTL
	if p.Redirect == OOBRedirect {
		code, ttl = shortCode(), oobCodeTTL
	}
	data := codeData{Conn: conn.Name, Method: conn.method(), Redirect: p.Redirect, Challenge: p.Challenge, Subject: subject}
	if upstreamRefresh != "" {
		data.Upstream = rt.upstream.seal([]byte(upstreamRefresh), "upstream|"+family)
	}
	_, err := st.CreateAuthCode(ctx, store.AuthCode{Hash: hashSecret("code", normalizeCode(code)), UserID: u.ID, FamilyID: family,
		Data: mustJSON(data), ExpiresAt: time.Now().Add(ttl)})
	if err != nil {
		s.loginInternal(w, r, &p, conn.Name, err)
		return
	}
	s.record(audit.Event{Event: "sso_login", Outcome: "granted", ClientAddr: clientIP(r), User: u.UserName, Identity: u.UserName,
		Issuer: conn.Name, Subject: subject, Role: u.Role})
	w.Header().Set("Cache-Control", "no-store")
	if p.Redirect == OOBRedirect {
		renderPage(w, http.StatusOK, pageData{Title: "Logged in", User: u.UserName, Code: code, Minutes: int(ttl.Minutes())})
		return
	}
	target, _ := url.Parse(p.Redirect)
	v := target.Query()
	v.Set("code", code)
	v.Set("state", p.State)
	target.RawQuery = v.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

func (s *Server) loginInternal(w http.ResponseWriter, r *http.Request, p *pending, conn string, err error) {
	s.opt.Log.Error("sso: complete login", "connection", conn, "err", err)
	s.loginFailed(w, r, p, conn, badLogin(http.StatusInternalServerError, "server_error", "the login could not be completed: see the server log"))
}

// ssoUser finds or creates (through the directory) the user the login
// is for, refusing one the connection does not speak for, one the
// directory deactivated or deleted (or, with require_scim, never
// provisioned), and sets the role the login carries.
func (s *Server) ssoUser(ctx context.Context, rt *ssoRuntime, conn *SSOConnection, l ssoLogin) (store.User, *loginError) {
	role, setRole := rt.roleFrom(conn, l.attributes)
	login := directory.Login{UserName: l.username, DisplayName: l.displayName, GivenName: l.givenName, FamilyName: l.familyName,
		Email: l.email, Role: role, SetRole: setRole, RequireSCIM: conn.RequireSCIM}
	for attempt := 0; attempt < 3; attempt++ {
		u, err := s.dir.SSOLogin(ctx, conn.speaker(), login)
		var refused *directory.Error
		switch {
		case err == nil:
			return u, nil
		case errors.As(err, &refused):
			s.opt.Log.Info("sso: login refused", "connection", conn.Name, "user", l.username, "reason", refused.Reason)
			return store.User{}, badLogin(http.StatusForbidden, "access_denied", "%s", refused.Reason)
		case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrVersionMismatch):
			continue // created or changed meanwhile by another login or SCIM: read it again
		default:
			return store.User{}, s.userError(conn, err)
		}
	}
	return store.User{}, badLogin(http.StatusConflict, "temporarily_unavailable", "the user record kept changing during the login: try again")
}

func (s *Server) userError(conn *SSOConnection, err error) *loginError {
	s.opt.Log.Error("sso: user record", "connection", conn.Name, "err", err)
	return badLogin(http.StatusInternalServerError, "server_error", "the user directory is unavailable: try again shortly")
}

// roleFrom reads the role a login carries: the first value of the role
// claim that role_values maps, or that names a configured role. set is
// false when the connection has no role claim (the role is left alone);
// a claim with no usable value clears the role.
func (rt *ssoRuntime) roleFrom(conn *SSOConnection, attrs map[string][]string) (role string, set bool) {
	if conn.RoleClaim == "" {
		return "", false
	}
	for _, v := range attrs[conn.RoleClaim] {
		if mapped, ok := conn.RoleValues[v]; ok {
			return mapped, true
		}
		if slices.Contains(rt.opt.Roles, v) {
			return v, true
		}
	}
	return "", true
}
