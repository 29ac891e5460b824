package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/oidc"
	"github.com/portcullisdb/portcullis/limit"
	"github.com/portcullisdb/portcullis/store"
)

// refreshData is kept with each refresh token.
type refreshData struct {
	Conn     string `json:"conn"`
	Method   string `json:"method"`
	Subject  string `json:"subject"`
	Upstream string `json:"upstream,omitempty"` // sealed IdP refresh token
}

// ssoFail refuses a token request: counted against the address by the
// failure limiter, audited, answered as an OAuth error.
func (s *Server) ssoFail(w http.ResponseWriter, ip string, status int, code, msg string, ev audit.Event) {
	s.limiter.Failed(limit.AddressKey(ip))
	ev.Event, ev.Outcome, ev.Reason, ev.ClientAddr = "sso_token", "denied", msg, ip
	s.record(ev)
	oauthError(w, status, code, msg)
}

// tokenCode redeems a one-time code: single use (a second use revokes
// what the first one issued), bound to the redirect_uri and the PKCE
// challenge of the login. The code is used up only by a request that
// passes both checks, in the transaction that stores the login's first
// refresh token: whoever merely saw the code cannot spoil it.
func (s *Server) tokenCode(w http.ResponseWriter, r *http.Request, rt *ssoRuntime, ip string) {
	ctx := r.Context()
	f := r.PostForm
	code, verifier := normalizeCode(f.Get("code")), f.Get("code_verifier")
	if code == "" || verifier == "" {
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_request", "code and code_verifier are required", audit.Event{})
		return
	}
	var (
		d          codeData
		refresh    string // the first refresh token, if the login renews
		sessionEnd = time.Now().Add(rt.opt.SessionTTL)
	)
	c, err := rt.opt.Store.RedeemAuthCode(ctx, hashSecret("code", code), time.Now(), func(c store.AuthCode) (*store.RefreshToken, error) {
		if err := json.Unmarshal(c.Data, &d); err != nil || d.Challenge == "" {
			return nil, codeRefused("the login code is unknown or expired: run portcullis login again")
		}
		if f.Get("redirect_uri") != d.Redirect {
			return nil, codeRefused("redirect_uri differs from the one the login started with")
		}
		if !pkceMatches(verifier, d.Challenge) {
			return nil, codeRefused("code_verifier does not match the login's code_challenge (PKCE): the code was not issued to this client")
		}
		var next *store.RefreshToken
		refresh, next = newRefresh(refreshData{Conn: d.Conn, Method: d.Method, Subject: d.Subject, Upstream: d.Upstream}, sessionEnd)
		return next, nil
	})
	var refused codeRefused
	switch {
	case errors.As(err, &refused):
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant", string(refused), audit.Event{})
		return
	case errors.Is(err, store.ErrConflict):
		n, rerr := rt.opt.Store.RevokeRefreshFamily(ctx, c.FamilyID, time.Now())
		if rerr != nil {
			s.opt.Log.Error("sso: revoke after a reused code", "err", rerr)
		}
		s.opt.Log.Warn("sso: a login code was used twice; revoked what the first use issued", "user_id", c.UserID, "revoked", n)
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant",
			"this login code was already used; the tokens it gave are now revoked: run portcullis login again", audit.Event{})
		return
	case errors.Is(err, store.ErrNotFound):
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant", "the login code is unknown or expired: run portcullis login again", audit.Event{})
		return
	case errors.Is(err, store.ErrRevoked):
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant", "this login was signed out or revoked: run portcullis login again", audit.Event{})
		return
	case err != nil:
		s.tokenInternal(w, err)
		return
	}
	u, err := s.activeUser(ctx, rt, c.UserID)
	if err != nil {
		if _, rerr := rt.opt.Store.RevokeRefreshFamily(ctx, c.FamilyID, time.Now()); rerr != nil {
			s.opt.Log.Error("sso: revoke the login of a refused user", "err", rerr)
		}
		s.refuseUser(w, ip, err)
		return
	}
	rd := refreshData{Conn: d.Conn, Method: d.Method, Subject: d.Subject, Upstream: d.Upstream}
	s.issueSSO(w, r, rt, ip, u, rd, refresh, sessionEnd, "authorization_code")
}

// codeRefused is a check of the code request that failed: the code stays
// unused, and the message goes to the client.
type codeRefused string

func (e codeRefused) Error() string { return string(e) }

// tokenRefresh rotates a refresh token. A token used before means it was
// stolen (or the client is broken): the whole login is revoked. For an
// OIDC login the IdP is asked first, so a user disabled there is out.
func (s *Server) tokenRefresh(w http.ResponseWriter, r *http.Request, rt *ssoRuntime, ip string) {
	ctx := r.Context()
	st := rt.opt.Store
	presented := r.PostForm.Get("refresh_token")
	if presented == "" {
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_request", "refresh_token is required", audit.Event{})
		return
	}
	t, err := st.GetRefreshTokenByHash(ctx, hashSecret("refresh", presented))
	if errors.Is(err, store.ErrNotFound) {
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant", "the refresh token is unknown: run portcullis login", audit.Event{})
		return
	} else if err != nil {
		s.tokenInternal(w, err)
		return
	}
	now := time.Now()
	switch {
	case t.RevokedAt != nil:
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant", "this login was signed out or revoked: run portcullis login", audit.Event{})
		return
	case t.UsedAt != nil:
		s.reuse(w, ip, rt, t)
		return
	case !now.Before(t.ExpiresAt):
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant",
			fmt.Sprintf("this login expired %s ago (logins last %v): run portcullis login", now.Sub(t.ExpiresAt).Round(time.Second), rt.opt.SessionTTL), audit.Event{})
		return
	}
	u, err := s.activeUser(ctx, rt, t.UserID)
	if err != nil {
		var denied *auth.DeniedError
		if errors.As(err, &denied) || errors.Is(err, store.ErrNotFound) { // not for a store hiccup
			st.RevokeRefreshFamily(ctx, t.FamilyID, now)
		}
		s.refuseUser(w, ip, err)
		return
	}
	var d refreshData
	if err := json.Unmarshal(t.ClientData, &d); err != nil {
		s.tokenInternal(w, fmt.Errorf("refresh token %s: client data: %w", t.ID, err))
		return
	}
	conn, ok := rt.conns[d.Conn]
	if !ok {
		st.RevokeRefreshFamily(ctx, t.FamilyID, now)
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant", fmt.Sprintf("the IdP connection %q of this login is no longer configured: run portcullis login", d.Conn), audit.Event{User: u.UserName})
		return
	}
	// Not revoked: the login works again if the refusal is undone.
	if msg, err := s.connRefusal(ctx, conn, u); err != nil {
		s.tokenInternal(w, err)
		return
	} else if msg != "" {
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant", msg, audit.Event{User: u.UserName, Issuer: conn.Name})
		return
	}
	if d.Upstream != "" {
		if d.Upstream, err = s.refreshUpstream(ctx, rt, conn, t.FamilyID, d); err != nil {
			var oe *oidc.Error
			if errors.As(err, &oe) && oe.Transient {
				s.record(audit.Event{Event: "sso_token", Outcome: "error", Reason: oe.Reason, ClientAddr: ip, User: u.UserName, Issuer: conn.Name})
				oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", oe.Reason)
				return
			}
			st.RevokeRefreshFamily(ctx, t.FamilyID, now)
			s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant",
				"the IdP no longer accepts this login (signed out, disabled or revoked there): run portcullis login ("+err.Error()+")",
				audit.Event{User: u.UserName, Issuer: conn.Name})
			return
		}
	}
	// The use and the next token commit together, after the family's
	// revoked state is checked: a concurrent reuse revokes either before
	// (this fails) or after (the next token is revoked with the family).
	refresh, next := newRefresh(d, t.ExpiresAt)
	_, err = st.RotateRefreshToken(ctx, t.ID, now, next)
	switch {
	case errors.Is(err, store.ErrConflict):
		s.reuse(w, ip, rt, t)
		return
	case errors.Is(err, store.ErrRevoked):
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant", "this login was signed out or revoked: run portcullis login", audit.Event{User: u.UserName})
		return
	case err != nil:
		s.tokenInternal(w, err)
		return
	}
	s.issueSSO(w, r, rt, ip, u, d, refresh, t.ExpiresAt, "refresh_token")
}

// refreshUpstream renews the OIDC login at the IdP and returns the sealed
// refresh token to keep.
func (s *Server) refreshUpstream(ctx context.Context, rt *ssoRuntime, conn *SSOConnection, family string, d refreshData) (string, error) {
	if conn.OIDC == nil {
		return "", errors.New("the connection is no longer OIDC")
	}
	plain, err := rt.upstream.open(d.Upstream, "upstream|"+family)
	if err != nil {
		return "", errors.New("the stored IdP session cannot be read (was sso key material changed?)")
	}
	fresh, err := conn.OIDC.Refresh(ctx, string(plain), d.Subject)
	if err != nil {
		return "", err
	}
	return rt.upstream.seal([]byte(fresh), "upstream|"+family), nil
}

// reuse answers a refresh token presented a second time by revoking its
// whole family.
func (s *Server) reuse(w http.ResponseWriter, ip string, rt *ssoRuntime, t store.RefreshToken) {
	n, err := rt.opt.Store.RevokeRefreshFamily(context.Background(), t.FamilyID, time.Now())
	if err != nil {
		s.opt.Log.Error("sso: revoke a reused refresh token's family", "err", err)
	}
	s.opt.Log.Warn("sso: a refresh token was used twice; revoked its login", "user_id", t.UserID, "revoked", n)
	s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant",
		"this refresh token was already used (a copy of it may be in someone else's hands): every token of this login is revoked; run portcullis login",
		audit.Event{})
}

// activeUser loads the user a code or refresh token belongs to.
func (s *Server) activeUser(ctx context.Context, rt *ssoRuntime, id string) (store.User, error) {
	u, err := rt.opt.Store.GetUser(ctx, id)
	if err != nil {
		return u, err
	}
	if !u.Active {
		return u, auth.Denied("%s is deactivated in portcullis' directory", u.UserName)
	}
	return u, nil
}

func (s *Server) refuseUser(w http.ResponseWriter, ip string, err error) {
	var denied *auth.DeniedError
	switch {
	case errors.As(err, &denied):
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant", denied.Reason, audit.Event{})
	case errors.Is(err, store.ErrNotFound):
		s.ssoFail(w, ip, http.StatusBadRequest, "invalid_grant", "the user of this login no longer exists in portcullis' directory", audit.Event{})
	default:
		s.tokenInternal(w, err)
	}
}

// newRefresh makes the next refresh token of a login, when the login can
// be renewed: the value for the client and the record for the store
// (family and user filled in by the store). SAML and local logins always
// renew (until the session ends); OIDC logins only with the IdP's refresh
// token, which every renewal presents first.
func newRefresh(d refreshData, sessionEnd time.Time) (string, *store.RefreshToken) {
	if d.Method != "saml" && d.Method != "local" && d.Upstream == "" {
		return "", nil
	}
	refresh := randomToken(32)
	return refresh, &store.RefreshToken{Hash: hashSecret("refresh", refresh), ClientData: mustJSON(d), ExpiresAt: sessionEnd}
}

// issueSSO answers with a new access token and the refresh token stored
// with the code's or the old token's use ("" when the login does not
// renew).
func (s *Server) issueSSO(w http.ResponseWriter, r *http.Request, rt *ssoRuntime, ip string, u store.User, d refreshData, refresh string, sessionEnd time.Time, grant string) {
	var roles []string
	if u.Role != "" {
		roles = []string{u.Role}
	}
	ttl := rt.opt.AccessTTL
	if left := time.Until(sessionEnd); left < ttl {
		ttl = left
	}
	access, exp, err := s.opt.Issuer.Issue(auth.AccessClaims{Subject: u.ID, Username: u.UserName, Roles: roles, AuthMethod: d.Method, TTL: ttl})
	if err != nil {
		s.tokenInternal(w, err)
		return
	}
	body := map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": int(time.Until(exp).Seconds()),
		"username": u.UserName, "auth_method": d.Method, "connection": d.Conn,
	}
	if refresh != "" {
		body["refresh_token"] = refresh
		body["refresh_expires_in"] = int(time.Until(sessionEnd).Seconds())
	}
	s.record(audit.Event{Event: "sso_token", Outcome: "granted", Reason: grant, ClientAddr: ip, User: u.UserName, Identity: u.UserName, Issuer: d.Conn, Role: u.Role})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) tokenInternal(w http.ResponseWriter, err error) {
	s.opt.Log.Error("sso: token endpoint", "err", err)
	oauthError(w, http.StatusInternalServerError, "server_error", "the token could not be issued: see the server log")
}

// ssoRevoke signs a login out (RFC 7009): the refresh token's whole
// family is revoked. Unknown tokens are no error, as the RFC says.
func (s *Server) ssoRevoke(w http.ResponseWriter, r *http.Request) {
	rt := s.sso()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token") == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "token (the refresh token) is required, as a form")
		return
	}
	t, err := rt.opt.Store.GetRefreshTokenByHash(r.Context(), hashSecret("refresh", r.PostForm.Get("token")))
	if err == nil {
		if _, err := rt.opt.Store.RevokeRefreshFamily(r.Context(), t.FamilyID, time.Now()); err != nil {
			s.tokenInternal(w, err)
			return
		}
		s.record(audit.Event{Event: "sso_logout", Outcome: "closed", ClientAddr: clientIP(r), Subject: t.UserID})
	} else if !errors.Is(err, store.ErrNotFound) {
		s.tokenInternal(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
