package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/auth/exchange"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/portal"
	"github.com/portcullisdb/portcullis/proxy"
	"github.com/portcullisdb/portcullis/rbac/scim"
	"github.com/portcullisdb/portcullis/store"
)

// OpenStore opens the configured store (the CLI's admin commands use it too).
func OpenStore(ctx context.Context, cfg *config.Config) (*store.DB, error) {
	st, err := store.Open(ctx, store.Config{Engine: cfg.Store.Engine, Path: cfg.Store.Path, DSN: cfg.Store.DSN.Value()})
	if err != nil {
		return nil, fmt.Errorf("store (%s): %w", cfg.Store.Engine, err)
	}
	return st, nil
}

// NewIssuer builds portcullis' own token issuer over the store.
func NewIssuer(ctx context.Context, cfg *config.Config, kek []byte, st auth.KeyStore, log *slog.Logger) (*auth.TokenIssuer, error) {
	return auth.NewTokenIssuer(ctx, auth.IssuerConfig{
		URL: cfg.Issuer.URL, Audience: cfg.Issuer.Audience, Alg: cfg.Issuer.Alg,
		KEK: kek, MaxTTL: cfg.Issuer.MaxTokenTTL, Log: log,
	}, st)
}

// KeyEncryptionKey is issuer.key_encryption_key, or the generated one
// beside the SQLite store, made at first start. Read it once per process.
func KeyEncryptionKey(cfg *config.Config, log *slog.Logger) ([]byte, error) {
	if cfg.Issuer.KeyEncryptionKey.Ref != "" {
		return []byte(cfg.Issuer.KeyEncryptionKey.Value()), nil
	}
	path := cfg.KEKPath()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		rand.Read(raw)
		data = []byte(base64.StdEncoding.EncodeToString(raw) + "\n")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("write generated key-encryption key %s: %w", path, err)
		}
		log.Warn("generated a key-encryption key for the signing keys; back it up, and set issuer.key_encryption_key when several nodes share the store", "path", path)
	} else if err != nil {
		return nil, fmt.Errorf("read key-encryption key %s: %w", path, err)
	}
	return []byte(strings.TrimSpace(string(data))), nil
}

// newExchanger builds the token exchange from the config; nil when no
// platform is configured. Its platforms' key sets are kept fresh until ctx
// ends.
func newExchanger(ctx context.Context, cfg *config.Config, v *auth.Verifier, issuer *auth.TokenIssuer, spent cloud.SpentProofs) (*exchange.Exchanger, error) {
	verifiers, err := subjectVerifiers(ctx, cfg, v, spent)
	if err != nil || len(verifiers) == 0 {
		return nil, err
	}
	return exchange.New(verifiers, exchangeAudiences(cfg), cfg.Exchange.Rules, issuer), nil
}

// subjectVerifiers builds one verifier per configured exchange platform.
func subjectVerifiers(ctx context.Context, cfg *config.Config, v *auth.Verifier, spent cloud.SpentProofs) (map[string]exchange.SubjectVerifier, error) {
	out := map[string]exchange.SubjectVerifier{}
	x := cfg.Exchange
	if x.AWS != nil {
		out[cloud.TokenTypeAWS] = &cloud.AWSVerifier{Endpoint: x.AWS.STSEndpoint, Audience: x.AWS.Audience,
			MaxAge: x.AWS.MaxAge, Regions: x.AWS.Regions, Spent: spent}
	}
	if x.GCP != nil {
		g, err := cloud.NewGCPVerifier(ctx, cloud.GCPConfig(*x.GCP))
		if err != nil {
			return nil, err
		}
		out[cloud.TokenTypeGCP] = g
	}
	if x.Azure != nil {
		tenants := make([]cloud.AzureTenant, len(x.Azure.Tenants))
		for i, t := range x.Azure.Tenants {
			tenants[i] = cloud.AzureTenant(t)
		}
		az, err := cloud.NewAzureVerifier(ctx, tenants)
		if err != nil {
			return nil, err
		}
		out[cloud.TokenTypeAzure] = az
	}
	if len(x.JWTIssuers) > 0 {
		allowed := map[string]bool{}
		for _, n := range cfg.Exchange.JWTIssuers {
			allowed[n] = true
		}
		out[exchange.TokenTypeJWT] = exchange.JWTSubject{Verifier: v, Allowed: allowed}
	}
	return out, nil
}

// sessions adapts the proxy's registry for the admin API.
func (s *Service) sessions() []portal.SessionInfo {
	var out []portal.SessionInfo
	for _, p := range s.Proxy.Sessions.List() {
		out = append(out, portal.SessionInfo{ID: p.ID, Identity: p.Identity, Issuer: p.Issuer, Role: p.Role,
			BackendUser: p.BackendUser, ClientAddr: p.ClientAddr, Started: p.Started})
	}
	return out
}

// rotateSCIMToken replaces a connection's SCIM bearer token; only its
// SHA-256 is stored.
func (s *Service) rotateSCIMToken(ctx context.Context, connection string) (string, error) {
	plain, hash := scim.NewToken()
	if _, err := s.Store.PutSCIMToken(ctx, store.SCIMToken{Connection: connection, Hash: hash}); err != nil {
		return "", err
	}
	return plain, nil
}

func roleNames(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Roles))
	for name := range cfg.Roles {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// exchangeAudiences tells clients, through discovery, which audience to
// request a proof for on each platform.
func exchangeAudiences(cfg *config.Config) map[string]string {
	out := map[string]string{}
	x := cfg.Exchange
	if x.AWS != nil {
		out[cloud.PlatformAWS] = x.AWS.Audience
	}
	if x.GCP != nil {
		out[cloud.PlatformGCP] = x.GCP.Audience
	}
	if x.Azure != nil && len(x.Azure.Tenants) > 0 {
		out[cloud.PlatformAzure] = x.Azure.Tenants[0].Audience
	}
	return out
}

// pools sizes the proxy's warm connections per backend account of the
// static roles that pool.
func pools(cfg *config.Config) map[string]proxy.PoolConfig {
	out := map[string]proxy.PoolConfig{}
	for _, r := range cfg.Roles {
		if r.Plan == config.PlanStatic && r.Pool.MaxIdle > 0 {
			out[r.BackendUser] = proxy.PoolConfig{MinIdle: r.Pool.MinIdle, MaxIdle: r.Pool.MaxIdle, MaxLifetime: r.Pool.MaxLifetime, IdleTimeout: r.Pool.IdleTimeout}
		}
	}
	return out
}

// logExchangeRules says, for each exchange rule, what it grants, so the
// operator sees at start-up and reload what the running rules let in.
func logExchangeRules(log *slog.Logger, cfg *config.Config) {
	for i, g := range cfg.ExchangeGrants() {
		if open := cfg.Exchange.Rules[i].AnyParts(); len(open) > 0 {
			log.Warn("exchange rule grants every value of some parts (any): check it is meant", "rule", i, "any", open, "grants", g)
			continue
		}
		log.Info("exchange rule", "rule", i, "grants", g)
	}
}
