package portal

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/portcullisdb/portcullis/auth/oidc"
	"github.com/portcullisdb/portcullis/auth/saml"
)

// maxACSBytes bounds the form the IdP posts to the ACS.
const maxACSBytes = 512 << 10

// oidcCallback is where the IdP sends the browser back: it checks the
// state against this browser's cookie, redeems the code and verifies the
// ID token.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	rt := s.sso()
	name := r.PathValue("conn")
	conn, ok := rt.conns[name]
	if !ok || conn.OIDC == nil {
		renderPage(w, http.StatusNotFound, pageData{Title: "Login failed", Error: "no OIDC connection is named " + name})
		return
	}
	q := r.URL.Query()
	upState := q.Get("state")
	cookie, err := r.Cookie(oidcCookie(upState))
	if upState == "" || err != nil {
		s.loginFailed(w, r, nil, name, badLogin(http.StatusBadRequest, "invalid_request",
			"this login was not started in this browser, or took longer than 10 minutes (no login state matches the IdP's state): run portcullis login again"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookie.Name, Path: "/v1/sso/oidc/" + name + "/", MaxAge: -1, HttpOnly: true, Secure: rt.opt.SecureCookies})
	p, err := rt.openPending(cookie.Value, "oidc-cookie|"+name, name)
	if err != nil {
		s.loginFailed(w, r, nil, name, badLogin(http.StatusBadRequest, "invalid_request", "the login state is damaged or expired: run portcullis login again"))
		return
	}
	if subtle.ConstantTimeCompare([]byte(upState), []byte(p.UpState)) != 1 {
		s.loginFailed(w, r, nil, name, badLogin(http.StatusBadRequest, "invalid_request",
			"the state the IdP returned does not match this browser's login (a forged or crossed callback): run portcullis login again"))
		return
	}
	if e := q.Get("error"); e != "" {
		s.loginFailed(w, r, &p, name, badLogin(http.StatusForbidden, "access_denied", "the IdP refused the login: %s %s", e, clip(q.Get("error_description"))))
		return
	}
	login, err := conn.OIDC.Exchange(r.Context(), q.Get("code"), p.Verifier, p.Nonce)
	if err != nil {
		s.loginFailed(w, r, &p, name, s.idpError("oidc", name, err))
		return
	}
	i := login.Identity
	s.completeLogin(w, r, rt, conn, p, ssoLogin{
		subject: i.Subject, username: i.Username, email: i.Email, displayName: i.DisplayName,
		givenName: i.GivenName, familyName: i.FamilyName, attributes: i.Attributes, upstreamRefresh: login.RefreshToken,
	})
}

// samlMetadata serves the SP metadata to register at the IdP.
func (s *Server) samlMetadata(w http.ResponseWriter, r *http.Request) {
	conn, ok := s.sso().conns[r.PathValue("conn")]
	if !ok || conn.SAML == nil {
		http.NotFound(w, r)
		return
	}
	md, err := conn.SAML.Metadata()
	if err != nil {
		s.opt.Log.Error("sso: SAML metadata", "connection", conn.Name, "err", err)
		http.Error(w, "metadata unavailable: see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(md)
}

// samlACS receives the IdP's response (HTTP-POST binding).
func (s *Server) samlACS(w http.ResponseWriter, r *http.Request) {
	rt := s.sso()
	name := r.PathValue("conn")
	conn, ok := rt.conns[name]
	if !ok || conn.SAML == nil {
		renderPage(w, http.StatusNotFound, pageData{Title: "Login failed", Error: "no SAML connection is named " + name})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBytes)
	if err := r.ParseForm(); err != nil {
		s.loginFailed(w, r, nil, name, badLogin(http.StatusBadRequest, "invalid_request", "the IdP's post is not a form of at most 512 KiB"))
		return
	}
	if r.PostForm.Get("SAMLart") != "" {
		s.loginFailed(w, r, nil, name, badLogin(http.StatusBadRequest, "invalid_request", "the artifact binding is not supported: configure the IdP to post the response (HTTP-POST)"))
		return
	}
	relay := r.PostForm.Get("RelayState")
	p, err := rt.openPending(relay, "saml-relay|"+name, name)
	if err != nil {
		s.loginFailed(w, r, nil, name, badLogin(http.StatusBadRequest, "invalid_request",
			"the SAML response does not belong to a login portcullis started in the last 10 minutes (RelayState missing, damaged or expired): run portcullis login again"))
		return
	}
	a, err := conn.SAML.ParseResponse(r.PostForm.Get("SAMLResponse"), samlRequestID(rt.reqIDKey, relay))
	if err != nil {
		s.loginFailed(w, r, &p, name, s.idpError("saml", name, err))
		return
	}
	i := a.Identity
	s.completeLogin(w, r, rt, conn, p, ssoLogin{
		subject: i.Subject, username: i.Username, email: i.Email, displayName: i.DisplayName,
		givenName: i.GivenName, familyName: i.FamilyName, attributes: i.Attributes,
		assertionID: a.ID, assertionExpires: a.Expires,
	})
}

// idpError words a refusal by the oidc or saml package.
func (s *Server) idpError(kind, conn string, err error) *loginError {
	var oe *oidc.Error
	var se *saml.Error
	switch {
	case errors.As(err, &oe) && oe.Transient:
		return badLogin(http.StatusBadGateway, "temporarily_unavailable", "%s", oe.Reason)
	case errors.As(err, &oe):
		return badLogin(http.StatusForbidden, "access_denied", "%s", oe.Reason)
	case errors.As(err, &se):
		return badLogin(http.StatusForbidden, "access_denied", "%s", se.Reason)
	}
	s.opt.Log.Error("sso: "+kind+" login", "connection", conn, "err", err)
	return badLogin(http.StatusInternalServerError, "server_error", "the login failed: see the server log")
}

// clip bounds text an IdP or a URL supplied before it is shown or logged.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
