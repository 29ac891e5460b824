package portal

import (
	"net/http"
	"sort"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth/oidc"
	"github.com/portcullisdb/portcullis/auth/saml"
	"github.com/portcullisdb/portcullis/directory"
	"github.com/portcullisdb/portcullis/store"
)

// SSOOptions configure browser login: OIDC and SAML connections, the
// one-time codes and refresh tokens of portcullis' own sessions.
//
// The flow, for `portcullis login` (an OAuth public client on a loopback
// redirect, RFC 8252):
//
//	CLI --> GET /v1/sso/authorize?connection&redirect_uri&state&code_challenge (S256)
//	portal --> IdP: OIDC auth request (PKCE, state, nonce; sealed in a cookie)
//	           or SAML AuthnRequest (HTTP-Redirect; request sealed in RelayState)
//	IdP --> portal: OIDC callback, or SAML ACS (HTTP-POST)
//	portal: verify, create or update the user (role from the login), then
//	        a one-time code bound to the CLI's challenge and redirect_uri
//	portal --> CLI's loopback redirect with code and state (or a page
//	           showing a short code to paste, redirect_uri "oob")
//	CLI --> POST /v1/token grant_type=authorization_code + code_verifier
//	        <-- access token (JWT) + opaque refresh token
//	CLI --> POST /v1/token grant_type=refresh_token (rotated every use;
//	        OIDC first renews at the IdP) ... POST /v1/revoke at logout
type SSOOptions struct {
	Store       store.Store
	Connections []SSOConnection
	// Key seals login state in transit and the IdP refresh tokens at
	// rest; at least 32 bytes, the same on every node (derive it from
	// the issuer's key-encryption key).
	Key []byte
	// SessionTTL is how long a login lasts: its refresh tokens all
	// expire then. AccessTTL is each access token's life.
	SessionTTL time.Duration
	AccessTTL  time.Duration
	// Roles are the configured role names: a role-claim value naming
	// one needs no mapping.
	Roles []string
	// SecureCookies marks the login cookie Secure (portal on https).
	SecureCookies bool

	rt *ssoRuntime // built by mountSSO
}

// SSOConnection is one IdP connection; exactly one of OIDC and SAML.
type SSOConnection struct {
	Name        string
	DisplayName string
	// Disabled and EnforceMFA are the connection's initial state; an
	// administrator changes them in the console (a
	// store.ConnectionSetting, which then wins). A disabled connection
	// starts no login and refreshes none.
	Disabled bool
	// EnforceMFA adds portcullis' own second factor (TOTP or an email
	// code, as for local accounts) after the IdP's login; it needs local
	// accounts on (LocalOptions), without them it changes nothing.
	EnforceMFA bool
	// RequireSCIM refuses users the directory sync has not provisioned.
	RequireSCIM bool
	// RoleClaim is the claim or attribute that sets the user's role at
	// each login; RoleValues maps its values to role names.
	RoleClaim  string
	RoleValues map[string]string
	OIDC       *oidc.RP
	SAML       *saml.SP
	// Directory is the SCIM connection whose users it may log in (its
	// own logins' users always); UserDomains bounds the user names;
	// LocalAccounts lets it log in local accounts.
	Directory     string
	UserDomains   []string
	LocalAccounts bool
	// local marks the connection of local accounts (the /login page).
	local bool
}

// speaker is the connection as an identity source the directory checks.
func (c *SSOConnection) speaker() directory.Speaker {
	sp := directory.Speaker{Kind: store.SourceSSO, Name: c.Name, Domains: c.UserDomains, LocalAccounts: c.LocalAccounts}
	if c.Directory != "" {
		sp.Directories = []string{c.Directory}
	}
	return sp
}

// method is the auth_method of the connection's tokens.
func (c *SSOConnection) method() string {
	if c.local {
		return "local"
	}
	if c.SAML != nil {
		return "saml"
	}
	return "oidc"
}

// ssoRuntime is what the SSO handlers share.
type ssoRuntime struct {
	opt      *SSOOptions
	conns    map[string]*SSOConnection
	names    []string
	state    sealer // login state: the OIDC cookie, the SAML RelayState
	upstream sealer // IdP refresh tokens in the store
	reqIDKey []byte // derives SAML AuthnRequest IDs from the RelayState
}

// mountSSO registers the SSO routes; nil options leave them off.
func (s *Server) mountSSO(o *SSOOptions) {
	o = s.withLocal(o)
	if o == nil || len(o.Connections) == 0 {
		return
	}
	if len(o.Key) < 32 {
		s.opt.Log.Error("sso: browser login is off: its sealing key is shorter than 32 bytes")
		return
	}
	rt := &ssoRuntime{opt: o, conns: map[string]*SSOConnection{},
		state: newSealer(o.Key, "portcullis sso login state"), upstream: newSealer(o.Key, "portcullis sso upstream refresh token"),
		reqIDKey: deriveKey(o.Key, "portcullis sso saml request id")}
	for i := range o.Connections {
		c := &o.Connections[i]
		rt.conns[c.Name] = c
		rt.names = append(rt.names, c.Name)
	}
	sort.Strings(rt.names)
	o.rt = rt
	s.mux.HandleFunc("GET /v1/sso/connections", s.ssoConnections)
	s.mux.HandleFunc("GET /v1/sso/authorize", s.ssoAuthorize)
	s.mux.HandleFunc("GET /v1/sso/oidc/{conn}/callback", s.oidcCallback)
	s.mux.HandleFunc("GET /v1/sso/saml/{conn}/metadata", s.samlMetadata)
	s.mux.HandleFunc("POST /v1/sso/saml/{conn}/acs", s.samlACS)
	s.mux.HandleFunc("POST /v1/revoke", s.ssoRevoke)
}

// sso is the runtime, nil when browser login is off.
func (s *Server) sso() *ssoRuntime {
	if s.opt.SSO == nil {
		return nil
	}
	return s.opt.SSO.rt
}

// ssoConnections lists the enabled connections, for `portcullis login`.
func (s *Server) ssoConnections(w http.ResponseWriter, r *http.Request) {
	rt := s.sso()
	states, err := s.connStates(r.Context())
	if err != nil {
		s.internal(w, err)
		return
	}
	out := make([]map[string]string, 0, len(rt.names))
	for _, n := range rt.names {
		c := rt.conns[n]
		if !c.local && !states[n].Enabled {
			continue
		}
		label := c.DisplayName
		if label == "" {
			label = c.Name
		}
		out = append(out, map[string]string{"name": c.Name, "display_name": label, "type": c.method()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"connections": out})
}

// tokenSSO handles the authorization_code and refresh_token grants.
func (s *Server) tokenSSO(w http.ResponseWriter, r *http.Request, ip, grant string) {
	rt := s.sso()
	if rt == nil {
		s.fail(w, ip, http.StatusBadRequest, "unsupported_grant_type", "browser login is not configured on this server (sso: in its config)", audit.Event{})
		return
	}
	if grant == grantAuthorizationCode {
		s.tokenCode(w, r, rt, ip)
		return
	}
	s.tokenRefresh(w, r, rt, ip)
}
