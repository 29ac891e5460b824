package service

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/auth/oidc"
	"github.com/portcullisdb/portcullis/auth/saml"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/portal"
)

// ssoOptions builds browser login from cfg.SSO; nil when it is off.
func ssoOptions(ctx context.Context, cfg *config.Config, s *Service, log *slog.Logger) (*portal.SSOOptions, error) {
	if len(cfg.SSO.Connections) == 0 {
		return nil, nil
	}
	// Every node derives the same key from the shared key-encryption
	// key, so a login started on one node completes on another.
	key, err := hkdf.Key(sha256.New, s.kek, nil, "portcullis sso", 32)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(cfg.Issuer.URL, "/")
	opt := &portal.SSOOptions{
		Store: s.Store, Key: key, Roles: roleNames(cfg),
		SessionTTL: cfg.SSO.SessionTTL(), AccessTTL: cfg.SSO.AccessTokenTTL(cfg.Issuer.MaxTokenTTL),
		SecureCookies: strings.HasPrefix(base, "https://"),
	}
	client := &http.Client{Timeout: 15 * time.Second}
	for i, c := range cfg.SSO.Connections {
		pc := portal.SSOConnection{Name: c.Name, DisplayName: c.Label(), Disabled: !c.Enabled(), EnforceMFA: c.EnforceMFA, RequireSCIM: c.RequireSCIM,
			RoleClaim: c.RoleClaim, RoleValues: c.RoleValues}
		key := fmt.Sprintf("sso.connections[%d]", i)
		switch {
		case c.OIDC != nil:
			o := c.OIDC
			pc.OIDC, err = oidc.New(ctx, oidc.Config{
				Name: c.Name, Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret.Value(),
				RedirectURL: base + "/v1/sso/oidc/" + c.Name + "/callback", Scopes: o.ScopesOrDefault(), AuthParams: o.AuthParams,
				UsernameClaim: o.UsernameClaimOrDefault(), AllowUnverifiedEmail: o.AllowUnverifiedEmail, HTTPClient: client,
			})
			if err != nil {
				return nil, fmt.Errorf("%s.oidc: %w", key, err)
			}
			if !pc.OIDC.Ready() {
				log.Warn("sso: the IdP cannot be reached for discovery; logins retry it", "connection", c.Name, "issuer", o.Issuer)
			}
		case c.SAML != nil:
			if pc.SAML, err = samlSP(ctx, cfg, key, base, c, client); err != nil {
				return nil, err
			}
		}
		opt.Connections = append(opt.Connections, pc)
		log.Info("sso: connection ready", "connection", c.Name, "type", map[bool]string{true: "oidc", false: "saml"}[c.OIDC != nil],
			"enabled", c.Enabled(), "enforce_mfa", c.EnforceMFA, "require_scim", c.RequireSCIM)
	}
	return opt, nil
}

// samlSP reads the IdP's metadata and builds the connection's SP.
func samlSP(ctx context.Context, cfg *config.Config, key, base string, c config.SSOConnection, client *http.Client) (*saml.SP, error) {
	sc := c.SAML
	var md []byte
	var err error
	if sc.IDPMetadataURL != "" {
		fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		md, err = saml.FetchMetadata(fctx, client, sc.IDPMetadataURL)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s.saml.idp_metadata_url: %w (or save the metadata to a file and set idp_metadata_file)", key, err)
		}
	} else if md, err = os.ReadFile(cfg.SSOPath(sc.IDPMetadataFile)); err != nil {
		return nil, fmt.Errorf("%s.saml.idp_metadata_file: %w", key, err)
	}
	prefix := base + "/v1/sso/saml/" + c.Name
	sp, err := saml.New(saml.Config{Name: c.Name, MetadataURL: prefix + "/metadata", ACSURL: prefix + "/acs",
		EntityID: sc.EntityID, IDPMetadata: md, UsernameAttribute: sc.UsernameAttribute})
	if err != nil {
		return nil, fmt.Errorf("%s.saml: %w", key, err)
	}
	return sp, nil
}
