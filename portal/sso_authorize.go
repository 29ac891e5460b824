package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth/oidc"
	"github.com/portcullisdb/portcullis/netaddr"
)

// OOBRedirect is the redirect_uri of the copy/paste flow: the portal shows
// the code on a page instead of redirecting.
const OOBRedirect = "urn:ietf:wg:oauth:2.0:oob"

// loginTTL bounds the time from authorize to the IdP's answer.
const loginTTL = 10 * time.Minute

// pending is a login in flight, sealed into the OIDC cookie or the SAML
// RelayState: what the CLI asked for, and the OIDC secrets toward the
// IdP. The short JSON names keep the RelayState small.
type pending struct {
	Conn      string `json:"c"`
	Redirect  string `json:"r"`
	State     string `json:"s"`
	Challenge string `json:"p"`
	Expires   int64  `json:"e"`
	UpState   string `json:"us,omitempty"` // OIDC: state sent to the IdP
	Nonce     string `json:"n,omitempty"`  // OIDC
	Verifier  string `json:"v,omitempty"`  // OIDC: PKCE verifier toward the IdP
}

// loginError is a refused login: shown on the page (or sent to the CLI's
// redirect), audited, never holding a secret.
type loginError struct {
	status int
	code   string // OAuth error code for the redirect
	msg    string
}

func (e *loginError) Error() string { return e.msg }

func badLogin(status int, code, format string, args ...any) *loginError {
	return &loginError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// ssoAuthorize starts a login for the CLI: it checks the request, then
// sends the browser to the connection's IdP.
func (s *Server) ssoAuthorize(w http.ResponseWriter, r *http.Request) {
	rt := s.sso()
	q := r.URL.Query()
	p, conn, lerr := rt.checkAuthorize(q)
	if lerr != nil {
		s.loginFailed(w, r, nil, "", lerr)
		return
	}
	if conn.local {
		s.localAuthorize(w, r, rt, p)
		return
	}
	s.startIdP(w, r, rt, conn, p)
}

// startIdP sends the browser to the connection's IdP, unless an
// administrator disabled the connection.
func (s *Server) startIdP(w http.ResponseWriter, r *http.Request, rt *ssoRuntime, conn *SSOConnection, p pending) {
	if _, lerr := s.checkEnabled(r.Context(), conn); lerr != nil {
		s.loginFailed(w, r, &p, conn.Name, lerr)
		return
	}
	var target string
	var err error
	if conn.SAML != nil {
		relay := rt.state.seal(mustJSON(p), "saml-relay|"+conn.Name)
		target, err = conn.SAML.AuthnRequestURL(samlRequestID(rt.reqIDKey, relay), relay)
	} else {
		p.UpState, p.Nonce, p.Verifier = randomToken(24), randomToken(24), oauth2.GenerateVerifier()
		target, err = conn.OIDC.AuthURL(r.Context(), p.UpState, p.Nonce, p.Verifier)
		if err == nil {
			http.SetCookie(w, &http.Cookie{
				Name: oidcCookie(p.UpState), Value: rt.state.seal(mustJSON(p), "oidc-cookie|"+conn.Name),
				Path: "/v1/sso/oidc/" + conn.Name + "/", MaxAge: int(loginTTL.Seconds()),
				HttpOnly: true, Secure: rt.opt.SecureCookies, SameSite: http.SameSiteLaxMode,
			})
		}
	}
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) {
			s.loginFailed(w, r, &p, conn.Name, badLogin(http.StatusBadGateway, "temporarily_unavailable", "%s", oe.Reason))
			return
		}
		s.opt.Log.Error("sso: start login", "connection", conn.Name, "err", err)
		s.loginFailed(w, r, &p, conn.Name, badLogin(http.StatusInternalServerError, "server_error", "the login could not be started: see the server log"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// checkAuthorize validates the CLI's request (RFC 8252 loopback redirect
// or the paste flow, PKCE S256 only) and picks the connection.
func (rt *ssoRuntime) checkAuthorize(q url.Values) (pending, *SSOConnection, *loginError) {
	name := q.Get("connection")
	if name == "" && len(rt.names) == 1 {
		name = rt.names[0]
	}
	conn, ok := rt.conns[name]
	switch {
	case name == "":
		return pending{}, nil, badLogin(http.StatusBadRequest, "invalid_request", "several IdP connections are configured: pick one with connection= (portcullis login --connection NAME); one of %s", strings.Join(rt.names, ", "))
	case !ok:
		return pending{}, nil, badLogin(http.StatusBadRequest, "invalid_request", "no IdP connection is named %q: use one of %s", name, strings.Join(rt.names, ", "))
	}
	p := pending{Conn: name, Redirect: q.Get("redirect_uri"), State: q.Get("state"), Challenge: q.Get("code_challenge"),
		Expires: time.Now().Add(loginTTL).Unix()}
	if msg := redirectProblem(p.Redirect); msg != "" {
		return p, nil, badLogin(http.StatusBadRequest, "invalid_request", "redirect_uri %s", msg)
	}
	switch {
	case len(p.State) < 16 || len(p.State) > 256:
		return p, nil, badLogin(http.StatusBadRequest, "invalid_request", "state must be 16 to 256 characters")
	case q.Get("code_challenge_method") != "S256":
		return p, nil, badLogin(http.StatusBadRequest, "invalid_request", "code_challenge_method must be S256 (PKCE)")
	case len(p.Challenge) != 43:
		return p, nil, badLogin(http.StatusBadRequest, "invalid_request", "code_challenge must be the 43-character base64url SHA-256 of the code verifier")
	}
	if q.Get("response_type") != "" && q.Get("response_type") != "code" {
		return p, nil, badLogin(http.StatusBadRequest, "unsupported_response_type", "response_type must be code")
	}
	return p, conn, nil
}

// redirectProblem is what is wrong with a redirect_uri, or "": an http
// URL on a loopback address (any port, RFC 8252 7.3), or OOBRedirect.
func redirectProblem(raw string) string {
	if raw == OOBRedirect {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.Port() == "" {
		return "must be http://127.0.0.1:PORT/PATH (a loopback listener) or " + OOBRedirect
	}
	host := u.Hostname()
	if !netaddr.IsLoopback(host) {
		return "must point at this machine's loopback address (127.0.0.1, [::1] or localhost)"
	}
	return ""
}

// oidcCookie names the cookie of one login, so logins in two tabs do not
// clash; the state the IdP echoes selects it.
func oidcCookie(upState string) string {
	if len(upState) > 16 {
		upState = upState[:16]
	}
	return "pc_oidc_" + upState
}

// openPending unseals and checks a login in flight.
func (rt *ssoRuntime) openPending(sealed, aad, conn string) (pending, error) {
	var p pending
	plain, err := rt.state.open(sealed, aad)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(plain, &p); err != nil || p.Conn != conn {
		return p, errUnsealed
	}
	if time.Now().Unix() > p.Expires {
		return p, errors.New("expired")
	}
	return p, nil
}

// loginFailed ends a refused login: the CLI's loopback redirect gets the
// error (so the terminal shows it) when the request was valid enough to
// trust its redirect_uri; otherwise the browser shows it.
func (s *Server) loginFailed(w http.ResponseWriter, r *http.Request, p *pending, conn string, e *loginError) {
	s.record(audit.Event{Event: "sso_login", Outcome: "denied", Reason: e.msg, ClientAddr: clientIP(r), Issuer: conn})
	if p != nil && p.Redirect != "" && p.Redirect != OOBRedirect && redirectProblem(p.Redirect) == "" {
		u, _ := url.Parse(p.Redirect)
		v := u.Query()
		v.Set("error", e.code)
		v.Set("error_description", e.msg)
		v.Set("state", p.State)
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
		return
	}
	renderPage(w, e.status, pageData{Title: "Login failed", Error: e.msg})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
