package config

import (
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/portcullisdb/portcullis/netaddr"
)

// SSO configures browser login through the company IdP (OIDC, SAML) and
// the tokens portcullis issues for it. No connections: browser login is
// off. Zero values mean the documented default; the accessors (SessionTTL,
// ...) apply them.
type SSO struct {
	// SessionTTLValue is how long one login lasts: the refresh tokens of
	// a login (rotated on every use) all expire this long after it.
	// Default 7h.
	SessionTTLValue time.Duration `yaml:"session_ttl"`
	// AccessTokenTTLValue is the life of each access token; default
	// issuer.max_token_ttl, which caps it.
	AccessTokenTTLValue time.Duration   `yaml:"access_token_ttl"`
	Connections         []SSOConnection `yaml:"connections"`
}

// SSOConnection is one IdP connection: exactly one of oidc and saml.
type SSOConnection struct {
	// Name picks the connection: `portcullis login --connection NAME`,
	// and it is part of the callback URLs registered at the IdP.
	Name        string `yaml:"name"`
	DisplayName string `yaml:"display_name"` // shown on the portal's pages; default the name
	// EnabledValue is the connection's initial state; default true. An
	// administrator can turn it off and on in the console, and from then
	// on the console's state (kept in the store, so every node sees it)
	// wins over this key. While any connection is enabled, local
	// accounts' password logins are refused (administrators' only after
	// their first SSO login): see README, Local accounts.
	EnabledValue *bool `yaml:"enabled"`
	// EnforceMFA adds portcullis' own second factor (TOTP, or an email
	// code) after the IdP's login. It needs local.enabled (which serves
	// the MFA pages); without it the server warns and it has no effect.
	// The initial state: the console can change it, as for enabled.
	EnforceMFA bool `yaml:"enforce_mfa"`
	// RequireSCIM refuses people the directory sync has not provisioned;
	// false (default) creates users at their first login.
	RequireSCIM bool `yaml:"require_scim"`
	// RoleClaim names the OIDC claim or SAML attribute that sets the
	// user's role at every login (e.g. portcullis_role). Default none:
	// logins leave the role alone.
	RoleClaim string `yaml:"role_claim"`
	// RoleValues maps values of role_claim to role names, e.g.
	// {member: reader, administrator: dba}; a value that is itself a role
	// name needs no entry.
	RoleValues map[string]string `yaml:"role_values"`
	OIDC       *OIDCConnection   `yaml:"oidc"`
	SAML       *SAMLConnection   `yaml:"saml"`
}

// OIDCConnection is an OpenID Connect provider portcullis is a relying
// party of. Register {issuer.url}/v1/sso/oidc/<name>/callback at the IdP.
type OIDCConnection struct {
	Issuer       string `yaml:"issuer"` // discovery at <issuer>/.well-known/openid-configuration; https (http only on loopback)
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"` // "" for a public client (PKCE only)
	// Scopes requested; default openid, email, profile, offline_access
	// (offline_access brings the refresh token every portcullis refresh
	// renews first).
	Scopes        []string `yaml:"scopes"`
	UsernameClaim string   `yaml:"username_claim"` // default email
	// AllowUnverifiedEmail accepts an email username whose
	// email_verified claim is not true. Default false: refused.
	AllowUnverifiedEmail bool `yaml:"allow_unverified_email"`
	// AuthParams are extra parameters of the authorization request, for
	// IdPs with their own rules: {access_type: offline} (Google),
	// {domain_hint: corp.example} (Entra). With offline_access among the
	// scopes portcullis sends prompt=consent (OIDC Core §11); a prompt
	// here replaces it, and an empty value leaves a parameter out
	// ({prompt: ""} for an IdP that would ask for consent at every login).
	AuthParams map[string]string `yaml:"auth_params"`
}

// ReservedAuthParams are the authorization request parameters portcullis
// sets itself (client, redirect, scopes, and its state, nonce and PKCE
// defences); oidc.auth_params may not set them.
var ReservedAuthParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method"}

// SAMLConnection is a SAML 2.0 IdP portcullis is a service provider of.
// The SP metadata is at {issuer.url}/v1/sso/saml/<name>/metadata.
type SAMLConnection struct {
	// The IdP's metadata (its entity id, SSO URL and signing
	// certificate): exactly one of a URL (https; http only on loopback),
	// read at start, or a file, relative to the config file.
	IDPMetadataURL  string `yaml:"idp_metadata_url"`
	IDPMetadataFile string `yaml:"idp_metadata_file"`
	// EntityID is the SP's entity id (the audience assertions must
	// name); default the SP metadata URL.
	EntityID string `yaml:"entity_id"`
	// UsernameAttribute names the attribute (Name or FriendlyName) that
	// holds the user name; default none: the NameID.
	UsernameAttribute string `yaml:"username_attribute"`
}

// SSO defaults.
const (
	DefaultSSOSessionTTL = 7 * time.Hour
	maxSSOSessionTTL     = 30 * 24 * time.Hour
)

// DefaultOIDCScopes are requested when oidc.scopes is empty.
var DefaultOIDCScopes = []string{"openid", "email", "profile", "offline_access"}

// SessionTTL is sso.session_ttl or its default.
func (s SSO) SessionTTL() time.Duration {
	if s.SessionTTLValue > 0 {
		return s.SessionTTLValue
	}
	return DefaultSSOSessionTTL
}

// AccessTokenTTL is sso.access_token_ttl, or maxTTL (issuer.max_token_ttl).
func (s SSO) AccessTokenTTL(maxTTL time.Duration) time.Duration {
	if s.AccessTokenTTLValue > 0 && s.AccessTokenTTLValue < maxTTL {
		return s.AccessTokenTTLValue
	}
	return maxTTL
}

// Label is the display name, or the name.
func (c SSOConnection) Label() string {
	if c.DisplayName != "" {
		return c.DisplayName
	}
	return c.Name
}

// Enabled is the connection's initial state: enabled, or true.
func (c SSOConnection) Enabled() bool { return c.EnabledValue == nil || *c.EnabledValue }

// ScopesOrDefault is the scopes to request.
func (o OIDCConnection) ScopesOrDefault() []string {
	if len(o.Scopes) > 0 {
		return o.Scopes
	}
	return slices.Clone(DefaultOIDCScopes)
}

// UsernameClaimOrDefault is the claim holding the user name.
func (o OIDCConnection) UsernameClaimOrDefault() string {
	if o.UsernameClaim != "" {
		return o.UsernameClaim
	}
	return DefaultUsernameClaim
}

// SSOPath resolves a path of the sso section (idp_metadata_file)
// against the config file's folder.
func (c *Config) SSOPath(p string) string {
	if p == "" || filepath.IsAbs(p) || c.load == nil {
		return p
	}
	abs, err := filepath.Abs(filepath.Dir(c.load.name))
	if err != nil {
		return p
	}
	return filepath.Join(abs, p)
}

// ssoSecrets calls fn with each secret of the sso section.
func (c *Config) ssoSecrets(fn func(key string, s *Secret)) {
	for i := range c.SSO.Connections {
		if o := c.SSO.Connections[i].OIDC; o != nil {
			fn(ssoKey(i)+".oidc.client_secret", &o.ClientSecret)
		}
	}
}

func ssoKey(i int) string { return "sso.connections[" + strconv.Itoa(i) + "]" }

// connectionName is what a connection name may be: it is a URL path
// segment and a CLI flag value.
var connectionName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ssoProblems checks the sso section.
func (c *Config) ssoProblems() []problem {
	var probs []problem
	add := func(checks ...check) {
		for _, ch := range checks {
			if ch.bad {
				probs = append(probs, problem{key: ch.key, msg: ch.msg})
			}
		}
	}
	s := c.SSO
	add(
		check{s.SessionTTLValue < 0 || s.SessionTTLValue > maxSSOSessionTTL, "sso.session_ttl",
			"must be between 1s and 720h (default 7h: how long one login lasts)"},
		check{s.AccessTokenTTLValue < 0 || (c.Issuer.MaxTokenTTL > 0 && s.AccessTokenTTLValue > c.Issuer.MaxTokenTTL), "sso.access_token_ttl",
			fmt.Sprintf("must be positive and at most issuer.max_token_ttl (%v)", c.Issuer.MaxTokenTTL)},
	)
	seen := map[string]int{}
	for i, conn := range s.Connections {
		key := ssoKey(i)
		first, dup := seen[conn.Name]
		if !dup {
			seen[conn.Name] = i
		}
		add(
			check{!connectionName.MatchString(conn.Name), key + ".name",
				fmt.Sprintf("%q is not a connection name: use lowercase letters, digits, - and _ (e.g. okta)", conn.Name)},
			check{dup && conn.Name != "", key + ".name",
				fmt.Sprintf("%q is also the name of sso.connections[%d]: names must be unique", conn.Name, first)},
			check{conn.OIDC == nil && conn.SAML == nil, key,
				"has neither oidc nor saml: add one of the two sections"},
			check{conn.OIDC != nil && conn.SAML != nil, key,
				"has both oidc and saml: a connection is one or the other, make two connections"},
			check{len(conn.RoleValues) > 0 && conn.RoleClaim == "", key + ".role_values",
				"is set but role_claim is empty: name the claim or attribute these values come from"},
		)
		values := make([]string, 0, len(conn.RoleValues))
		for v := range conn.RoleValues {
			values = append(values, v)
		}
		sort.Strings(values)
		for _, v := range values {
			role := conn.RoleValues[v]
			_, ok := c.Roles[role]
			add(check{!ok, key + ".role_values." + v,
				fmt.Sprintf("role %q is not defined: define it under roles, or use one of %s", role, listOrNone(c.roleNames()))})
		}
		if o := conn.OIDC; o != nil {
			probs = append(probs, oidcProblems(key+".oidc", o)...)
		}
		if sm := conn.SAML; sm != nil {
			probs = append(probs, c.samlProblems(key+".saml", sm)...)
		}
	}
	return probs
}

func oidcProblems(key string, o *OIDCConnection) []problem {
	var probs []problem
	if p := idpURLProblem(o.Issuer); o.Issuer == "" {
		probs = append(probs, problem{key + ".issuer", "is empty: set the IdP's issuer URL (discovery is read from it)"})
	} else if p != "" {
		probs = append(probs, problem{key + ".issuer", p})
	}
	if o.ClientID == "" {
		probs = append(probs, problem{key + ".client_id", "is empty: set the client id the IdP gave portcullis"})
	}
	if len(o.Scopes) > 0 && !slices.Contains(o.Scopes, "openid") {
		probs = append(probs, problem{key + ".scopes", "lacks openid: OIDC login needs it"})
	}
	for _, k := range slices.Sorted(maps.Keys(o.AuthParams)) {
		if slices.Contains(ReservedAuthParams, k) {
			probs = append(probs, problem{key + ".auth_params." + k, "is set by portcullis for every login: remove it (scopes go in oidc.scopes)"})
		}
	}
	return probs
}

func (c *Config) samlProblems(key string, s *SAMLConnection) []problem {
	var probs []problem
	switch {
	case s.IDPMetadataURL == "" && s.IDPMetadataFile == "":
		probs = append(probs, problem{key + ".idp_metadata_url", "is empty: set idp_metadata_url or idp_metadata_file (the IdP's SAML metadata)"})
	case s.IDPMetadataURL != "" && s.IDPMetadataFile != "":
		probs = append(probs, problem{key + ".idp_metadata_file", "is set along with idp_metadata_url: set only one of them"})
	case s.IDPMetadataURL != "":
		if p := idpURLProblem(s.IDPMetadataURL); p != "" {
			probs = append(probs, problem{key + ".idp_metadata_url", p})
		}
	default:
		if p := fileProblem(c.SSOPath(s.IDPMetadataFile)); p != "" {
			probs = append(probs, problem{key + ".idp_metadata_file", p})
		}
	}
	return probs
}

// idpURLProblem is what is wrong with an IdP URL, or "": https, or http on
// a loopback host for tests.
func idpURLProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Sprintf("%q is not an absolute URL: write it like https://idp.example.com/", raw)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && netaddr.IsLoopback(u.Hostname())) {
		return ""
	}
	return fmt.Sprintf("%q must use https:// (http:// only on a loopback host, for tests)", raw)
}
