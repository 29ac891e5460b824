package service

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"log/slog"
	"net/url"
	"strings"

	"github.com/portcullisdb/portcullis/auth/mfa"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/portal"
)

// localOptions builds local accounts and the web pages from cfg.Local;
// nil when they are off (or their key cannot be derived, which is
// logged).
func (s *Service) localOptions(cfg *config.Config, log *slog.Logger) *portal.LocalOptions {
	if !cfg.Local.Enabled {
		for _, c := range cfg.SSO.Connections {
			if c.EnforceMFA {
				log.Warn("sso: enforce_mfa has no effect while local.enabled is false (the second-factor pages are off)", "connection", c.Name)
			}
		}
		return nil
	}
	// The same on every node: derived from the shared key-encryption key.
	key, err := hkdf.Key(sha256.New, s.kek, nil, "portcullis local accounts", 32)
	if err != nil {
		log.Error("local accounts are off: their key cannot be derived from the key-encryption key", "err", err)
		return nil
	}
	base := strings.TrimSuffix(cfg.Issuer.URL, "/")
	label := "portcullis"
	if u, err := url.Parse(base); err == nil && u.Hostname() != "" {
		label = "portcullis (" + u.Hostname() + ")"
	}
	log.Info("local accounts on", "mfa_required", cfg.Local.MFA(), "trusted_device_days", cfg.Local.TrustDays(), "second_factor", secondFactor(cfg))
	return &portal.LocalOptions{
		Store: s.Store, Key: key, MFARequired: cfg.Local.MFA(), TrustDays: cfg.Local.TrustDays(),
		FailuresPerMinute: cfg.Local.Failures(), Issuer: label, SecureCookies: strings.HasPrefix(base, "https://"),
		SessionTTL: cfg.SSO.SessionTTL(), AccessTTL: cfg.SSO.AccessTokenTTL(cfg.Issuer.MaxTokenTTL), Roles: roleNames(cfg),
		AuditFile: cfg.Audit.File, Sessions: s.sessions,
		Mailer: mailer(cfg, log), EmailTTL: cfg.Local.Email.CodeLifetime(),
	}
}

// mailer is the configured sender of email login codes; nil: none.
func mailer(cfg *config.Config, log *slog.Logger) mfa.Mailer {
	e := cfg.Local.Email
	switch e.Mailer {
	case "dev":
		return &mfa.FileMailer{Path: cfg.SSOPath(e.File)}
	case "smtp":
		roots, err := cfg.SMTPRoots() // validated at load; the file may have changed since
		if err != nil {
			log.Error("email codes are off: local.email.smtp.ca_file cannot be read", "err", err)
			return nil
		}
		return &mfa.SMTPMailer{Addr: e.SMTP.Address, From: e.From, Username: e.SMTP.Username, Password: e.SMTP.Password.Value(),
			TLS: &tls.Config{RootCAs: roots}}
	}
	return nil
}

// secondFactor says at start which second factor local accounts get.
func secondFactor(cfg *config.Config) string {
	if cfg.Local.Email.Mailer == "" {
		return "authenticator app only: no local.email.mailer is configured, so every local account enrols an app (TOTP)"
	}
	return "email codes by default; an authenticator app may be added on /account (administrators always use an app)"
}
