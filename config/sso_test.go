package config_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/config"
)

const ssoBase = `issuers: [{name: corp, issuer: "https://idp.test/", audiences: [portcullis], jwks_url: "https://idp.test/jwks.json"}]
roles:
  reader: {backend_user: ro, backend_password: ""}
  writer: {backend_user: rw, backend_password: ""}
`

func TestSSOConfig(t *testing.T) {
	const secret = "oidc-secret-Xq93"
	t.Setenv("PCIT_SSO_SECRET", secret)
	dir := writeFiles(t, map[string]string{
		"portcullis.yaml": ssoBase + `
sso:
  connections:
    - name: okta
      role_claim: portcullis_role
      role_values: {member: reader, administrator: writer}
      enforce_mfa: true
      oidc: {issuer: "https://corp.okta.com/", client_id: portcullis, client_secret: "${env:PCIT_SSO_SECRET}"}
    - name: adfs
      require_scim: true
      enabled: false
      saml: {idp_metadata_file: idp.xml}
`,
		"idp.xml": "<EntityDescriptor/>",
	})
	cfg, err := config.Load(filepath.Join(dir, "portcullis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	okta, adfs := cfg.SSO.Connections[0], cfg.SSO.Connections[1]
	tests := []struct {
		name      string
		got, want any
	}{
		{"client_secret resolved", okta.OIDC.ClientSecret.Value(), secret},
		{"enforce_mfa kept", okta.EnforceMFA, true},
		{"require_scim", adfs.RequireSCIM, true},
		{"enabled by default", okta.Enabled(), true},
		{"enabled: false kept", adfs.Enabled(), false},
		{"role_values", okta.RoleValues["administrator"], "writer"},
		{"default scopes", strings.Join(okta.OIDC.ScopesOrDefault(), " "), "openid email profile offline_access"},
		{"default username claim", okta.OIDC.UsernameClaimOrDefault(), "email"},
		{"label defaults to the name", adfs.Label(), "adfs"},
		{"metadata file relative to the config", cfg.SSOPath(adfs.SAML.IDPMetadataFile), filepath.Join(dir, "idp.xml")},
		{"session lasts 7h by default", cfg.SSO.SessionTTL(), 7 * time.Hour},
		{"access tokens default to issuer.max_token_ttl", cfg.SSO.AccessTokenTTL(cfg.Issuer.MaxTokenTTL), time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func TestSSOProblems(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"neither oidc nor saml", `{connections: [{name: a}]}`, "sso.connections[0]: has neither oidc nor saml"},
		{"both", `{connections: [{name: a, oidc: {issuer: "https://i/", client_id: c}, saml: {idp_metadata_url: "https://i/md"}}]}`, "has both oidc and saml"},
		{"a bad name", `{connections: [{name: "Corp SSO", oidc: {issuer: "https://i/", client_id: c}}]}`, `sso.connections[0].name: "Corp SSO" is not a connection name`},
		{"a duplicate name", `{connections: [{name: a, oidc: {issuer: "https://i/", client_id: c}}, {name: a, oidc: {issuer: "https://i/", client_id: c}}]}`, "sso.connections[1].name: \"a\" is also the name of sso.connections[0]"},
		{"an http issuer off loopback", `{connections: [{name: a, oidc: {issuer: "http://idp.example/", client_id: c}}]}`, "sso.connections[0].oidc.issuer: \"http://idp.example/\" must use https://"},
		{"no client id", `{connections: [{name: a, oidc: {issuer: "https://i/"}}]}`, "oidc.client_id: is empty"},
		{"scopes without openid", `{connections: [{name: a, oidc: {issuer: "https://i/", client_id: c, scopes: [email]}}]}`, "oidc.scopes: lacks openid"},
		{"an inline client secret", `{connections: [{name: a, oidc: {issuer: "https://i/", client_id: c, client_secret: hunter2}}]}`, "oidc.client_secret: write the secret as ${env:NAME}"},
		{"a role value naming no role", `{connections: [{name: a, role_claim: r, role_values: {admin: dba}, oidc: {issuer: "https://i/", client_id: c}}]}`, `role_values.admin: role "dba" is not defined`},
		{"role values without a claim", `{connections: [{name: a, role_values: {admin: reader}, oidc: {issuer: "https://i/", client_id: c}}]}`, "role_values: is set but role_claim is empty"},
		{"SAML with no metadata", `{connections: [{name: a, saml: {}}]}`, "saml.idp_metadata_url: is empty"},
		{"SAML metadata file missing", `{connections: [{name: a, saml: {idp_metadata_file: nope.xml}}]}`, "nope.xml does not exist"},
		{"session too long", `{session_ttl: 2000h}`, "sso.session_ttl: must be between"},
		{"access tokens over the issuer's cap", `{access_token_ttl: 2h}`, "sso.access_token_ttl: must be positive and at most issuer.max_token_ttl"},
		{"auth_params overriding the state", `{connections: [{name: a, oidc: {issuer: "https://i/", client_id: c, auth_params: {access_type: offline, state: x}}}]}`, "sso.connections[0].oidc.auth_params.state: is set by portcullis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := config.Parse([]byte(ssoBase+"sso: "+tt.yaml+"\n"), "portcullis.yaml", dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v\nwant a problem containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatal("the error shows an inline secret")
			}
		})
	}
}

// SSO needs only portcullis' own issuer, which is always trusted: a
// config with SSO connections and no issuers (and no dev issuer) loads.
func TestSSOOnlyConfig(t *testing.T) {
	const roles = `roles: {reader: {backend_user: ro, backend_password: ""}}
`
	tests := []struct {
		name, yaml, want string // want "": loads
	}{
		{"an OIDC connection alone", roles + `sso: {connections: [{name: okta, oidc: {issuer: "https://corp.okta.com/", client_id: c, auth_params: {access_type: offline}}}]}`, ""},
		{"local accounts alone", roles + "local: {enabled: true}\n", ""},
		{"nothing that gives a token", roles, "issuers: no token source is configured: add an IdP under sso.connections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), "portcullis.yaml", t.TempDir())
			if tt.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}
