package service

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/exchange"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/directory"
	"github.com/portcullisdb/portcullis/directory/scim"
	"github.com/portcullisdb/portcullis/metrics"
	"github.com/portcullisdb/portcullis/portal"
	"github.com/portcullisdb/portcullis/proxy"
	"github.com/portcullisdb/portcullis/rbac"
	"github.com/portcullisdb/portcullis/store"
)

// Options are the run-time switches that are not in the config file.
type Options struct {
	// InsecureNoTLS lets clients pass tokens without TLS: for local
	// development and the benchmark's comparison row only.
	InsecureNoTLS bool
	Log           *slog.Logger
	// ConfigPath is the file Reload re-reads (SIGHUP, `portcullis reload`).
	ConfigPath string
}

// Service is a started portcullis.
type Service struct {
	Proxy       *proxy.Server
	Issuer      *auth.TokenIssuer
	Store       store.Store
	MySQLAddr   net.Addr
	HTTPAddr    net.Addr
	Fingerprint string // SHA-256 of the client-leg certificate
	// Certs keeps the client-leg certificate made in the store when none
	// is configured (nil with tls.cert_file or --insecure-no-tls).
	Certs *proxy.CertKeeper

	audit *audit.Logger
	kek   []byte // the key-encryption key, read once: the issuer, SSO and local accounts derive from it
	// accountWarnings are CheckAccountPrivileges' findings ([]string),
	// shown by /readyz.
	accountWarnings atomic.Value
	users           *rbac.Provisioner
	dir             *rbac.DirectoryCache // the store's users, groups and teams as the resolver reads them
	writer          *directory.Directory // the one writer of users, teams and access events
	http            *http.Server
	served          chan error
	ctx             context.Context
	cancel          context.CancelFunc
	opt             Options
	log             *slog.Logger

	reloadMu   sync.Mutex
	verifier   atomic.Pointer[auth.Verifier]
	exchanger  atomic.Pointer[exchange.Exchanger] // nil: no exchange configured
	liveCancel context.CancelFunc                 // stops the JWKS refreshes of the current verifier and exchanger

	shutdownOnce sync.Once
	shutdownErr  error
	draining     atomic.Bool // /readyz says not ready from the start of Shutdown

	node string // cfg.Node: names this process in the session registry
}

// Start builds every part from cfg, listens, and serves in the background.
func Start(ctx context.Context, cfg *config.Config, opt Options) (*Service, error) {
	log := opt.Log
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Service{served: make(chan error, 2), ctx: ctx, cancel: cancel, opt: opt, log: log}
	s.node = cfg.Node
	started := false
	defer func() {
		if !started {
			s.close()
		}
	}()

	var dev *auth.DevIssuer
	var err error
	if err := fitFDLimit(cfg, log); err != nil {
		return nil, err
	}
	if cfg.DevIssuer.Enabled {
		if dev, err = auth.LoadDevIssuer(cfg.DevIssuer); err != nil {
			return nil, err
		}
	}
	var st store.Store
	if st, err = OpenStore(ctx, cfg); err != nil {
		return nil, err
	}
	// The resolver reads through the cache; everything else writes
	// through s.Store, which drops the cache on each directory write.
	s.dir = rbac.NewDirectoryCache(st, time.Second)
	s.Store = s.dir.Writes(st)
	s.writer = directory.New(s.Store, roleNames(cfg), log)
	if s.kek, err = KeyEncryptionKey(cfg, log); err != nil {
		return nil, err
	}
	if s.Issuer, err = NewIssuer(ctx, cfg, s.kek, s.Store, log); err != nil {
		return nil, err
	}
	go s.Issuer.Run(ctx, 30*time.Second) // picks up rotations made elsewhere
	vctx, vcancel := context.WithCancel(ctx)
	verifier, err := auth.NewVerifier(vctx, cfg.Issuers, devLocal(dev), s.Issuer)
	if err != nil {
		vcancel()
		return nil, err
	}
	s.verifier.Store(verifier)
	s.liveCancel = vcancel
	if !opt.InsecureNoTLS && cfg.TLS.CertFile == "" {
		if s.Certs, err = NewCertKeeper(ctx, cfg, s.kek, s.Store, log); err != nil {
			return nil, err
		}
		go s.Certs.Run(ctx, time.Minute) // renews, and picks up another node's renewal
	}
	clientTLS, fingerprint, err := s.loadClientTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}
	s.Fingerprint = fingerprint
	backendTLS, err := backendTLS(cfg.Backend)
	if err != nil {
		return nil, err
	}
	backendKey, err := backendPublicKey(cfg.Backend)
	if err != nil {
		return nil, err
	}
	if s.audit, err = audit.Open(cfg.Audit.File); err != nil {
		return nil, err
	}
	s.audit.OnDrop(metrics.AuditDropped.Inc)
	exchanger, err := newExchanger(vctx, cfg, verifier, s.Issuer, s.Store)
	if err != nil {
		return nil, err
	}
	s.exchanger.Store(exchanger)
	sso, err := ssoOptions(ctx, cfg, s, log)
	if err != nil {
		return nil, err
	}
	backendLogin := rbac.BackendLogin{Address: cfg.Backend.Address, TLS: backendTLS, PublicKey: backendKey}
	go s.checkAccounts(ctx, cfg, backendLogin) // off the start's path: a slow backend must not hold it
	s.users = rbac.NewProvisioner(cfg, backendLogin, s.Store, log)
	s.users.UsePasswordKey(s.kek)
	if n, err := s.users.Sweep(ctx); err != nil {
		log.Warn("sweep leftover session users", "err", err)
	} else if n > 0 {
		log.Info("dropped session users left by an earlier run", "count", n)
	}
	s.Proxy, err = proxy.New(proxy.Options{
		Verifier:         verifier,
		SessionUsers:     s.users,
		PersonalAccounts: s.users,
		Pools:            pools(cfg),
		Roles:            rbac.NewResolver(cfg, s.dir),
		Audit:            s.audit,
		Log:              log,
		TLS:              clientTLS,
		InsecureNoTLS:    opt.InsecureNoTLS,
		Backend: proxy.Backend{
			Address:     cfg.Backend.Address,
			DialTimeout: cfg.Backend.DialTimeout,
			TLS:         backendTLS,
			TLSOptional: cfg.Backend.TLS == config.BackendTLSPreferred,
			PublicKey:   backendKey,
		},
		MaxConnections:             cfg.Proxy.MaxConnections,
		HandshakeTimeout:           cfg.Proxy.HandshakeTimeout,
		MaxTokenBytes:              cfg.Proxy.MaxTokenBytes,
		MaxSessionsPerIdentity:     cfg.Proxy.MaxSessionsPerIdentity,
		FailedAuthPerMinute:        cfg.Proxy.FailedAuthPerMinute,
		FailedAuthPerUserPerMinute: cfg.Proxy.FailedAuthPerUserPerMinute,
		IdleTimeout:                cfg.Proxy.IdleTimeout,
		DirectoryChanged:           s.dir.Invalidate,
		MaxHandshakes:              cfg.Proxy.MaxHandshakes,
		MaxHandshakesPerAddress:    cfg.Proxy.MaxHandshakesPerAddress,
		FirstPacketTimeout:         cfg.Proxy.FirstPacketTimeout,
		Records:                    st,
		Node:                       cfg.Node,
		Failures:                   st,
	})
	if err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.Listen.MySQL)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (listen.mysql): %w", cfg.Listen.MySQL, err)
	}
	hln, err := net.Listen("tcp", cfg.Listen.HTTP)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s (listen.http): %w", cfg.Listen.HTTP, err)
	}
	s.MySQLAddr, s.HTTPAddr = ln.Addr(), hln.Addr()
	if cfg.Listen.PProf != "" {
		if err := startPProf(ctx, cfg.Listen.PProf, log); err != nil {
			ln.Close()
			hln.Close()
			return nil, err
		}
	}
	s.http = &http.Server{
		Handler: portal.New(portal.Options{
			Issuer: s.Issuer, Exchanger: s.exchanger.Load, Audit: s.audit, Log: log,
			MySQLAddress: ln.Addr().String(), FailuresPerMinute: cfg.Exchange.FailuresPerMinute,
			Admin: portal.AdminOptions{
				Token: cfg.Admin.Token.Value(), Store: s.Store, Sessions: s.sessions, Roles: roleNames(cfg),
				RotateSCIMToken: func(ctx context.Context, conn string) (string, error) { return s.rotateSCIMToken(ctx, cfg, conn) },
				Reload:          s.ReloadFile,
			},
			SSO:       sso,
			Local:     s.localOptions(cfg, log),
			SCIM:      scim.New(scim.Options{Store: s.Store, Directory: s.writer, BaseURL: strings.TrimSuffix(cfg.Issuer.URL, "/") + "/scim/v2", Log: log}),
			Directory: s.writer,
			Ready:     s.ready,
			Warnings: func() []string {
				w, _ := s.accountWarnings.Load().([]string)
				return w
			},

			WhoAmI: s.whoami, // portcullis status
			CACert: s.caCert(),
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { s.served <- s.Proxy.Serve(ctx, ln) }()
	go s.Proxy.WatchEvents(ctx, s.Store, 200*time.Millisecond)
	go s.Proxy.SyncRegistry(ctx, RegistryHeartbeat, RegistryStale)
	go s.watchKeySets(ctx, 15*time.Second)
	go func() {
		if err := s.http.Serve(hln); !errors.Is(err, http.ErrServerClosed) {
			s.served <- fmt.Errorf("portal: %w", err)
		}
	}()
	started = true

	if clientTLS == nil {
		log.Warn("client TLS is OFF (--insecure-no-tls): tokens cross the network in the clear; never do this outside development")
	}
	log.Info("portcullis listening", "mysql", ln.Addr().String(), "http", hln.Addr().String(), "backend", cfg.Backend.Address,
		"tls_sha256", fingerprint, "issuer", cfg.Issuer.URL, "signing_kid", s.Issuer.SigningKID())
	logExchangeRules(log, cfg)
	return s, nil
}

// Shutdown stops accepting, drains sessions until ctx ends, then closes
// the rest. Calling it again returns the first call's result.
func (s *Service) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		// The MySQL listener closes at once and /readyz answers 503 while
		// sessions drain, so load balancers move away; the portal itself
		// stops last.
		s.draining.Store(true)
		err := s.Proxy.Shutdown(ctx)
		if serr := <-s.served; serr != nil && err == nil {
			err = serr
		}
		if herr := s.http.Shutdown(ctx); herr != nil {
			s.http.Close() // out of time: portal requests end too
		}
		lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if lerr := s.Proxy.LeaveRegistry(lctx); lerr != nil {
			s.log.Warn("session registry: remove this node", "err", lerr)
		}
		lcancel()
		s.close()
		s.shutdownErr = err
	})
	return s.shutdownErr
}

// Reload applies a new configuration's issuers, mappings, roles and
// client certificate to connections from now on, and its token exchange
// (platforms and rules) to exchanges from now on; live sessions and
// tokens already issued keep what they were granted. A config that fails
// to build leaves the old one in force. Listen addresses, the store, the
// backend and exchange.failures_per_minute need a restart.
func (s *Service) Reload(cfg *config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	var dev *auth.DevIssuer
	var err error
	if cfg.DevIssuer.Enabled {
		if dev, err = auth.LoadDevIssuer(cfg.DevIssuer); err != nil {
			return err
		}
	}
	vctx, vcancel := context.WithCancel(s.ctx)
	verifier, err := auth.NewVerifier(vctx, cfg.Issuers, devLocal(dev), s.Issuer)
	if err != nil {
		vcancel()
		return err
	}
	clientTLS, fingerprint := s.Proxy.Live().TLS, s.Fingerprint
	if cfg.TLS.CertFile != "" {
		// A configured certificate is re-read; a self-signed one is kept,
		// so clients that pinned its fingerprint keep working.
		if clientTLS, fingerprint, err = s.loadClientTLS(cfg.TLS); err != nil {
			vcancel()
			return err
		}
	}
	// Built with the new verifier: JWT exchange must trust the new issuers.
	exchanger, err := newExchanger(vctx, cfg, verifier, s.Issuer, s.Store)
	if err != nil {
		vcancel()
		return err
	}
	if err := s.Proxy.Reload(proxy.Live{Verifier: verifier, Roles: rbac.NewResolver(cfg, s.dir), TLS: clientTLS, Pools: pools(cfg)}); err != nil {
		vcancel()
		return err
	}
	s.users.Reload(cfg.Roles)
	s.verifier.Store(verifier)
	s.exchanger.Store(exchanger)
	s.liveCancel()
	s.liveCancel = vcancel
	s.Fingerprint = fingerprint
	s.log.Info("configuration reloaded", "issuers", len(cfg.Issuers), "roles", len(cfg.Roles),
		"exchange_rules", len(cfg.Exchange.Rules), "tls_sha256", fingerprint)
	logExchangeRules(s.log, cfg)
	return nil
}

// ReloadFile re-reads Options.ConfigPath and reloads it; an invalid file
// is refused with its problems and the running configuration stays.
func (s *Service) ReloadFile(context.Context) error {
	if s.opt.ConfigPath == "" {
		return errors.New("reload: this server was started without a config file")
	}
	if err := s.audit.Reopen(); err != nil { // for logrotate: the same path, a new file
		s.log.Error("audit log not reopened: lines still go to the old file", "err", err)
	}
	cfg, err := config.Load(s.opt.ConfigPath)
	if err != nil {
		s.log.Error("reload refused: the running configuration stays", "err", err)
		return err
	}
	if err := s.Reload(cfg); err != nil {
		s.log.Error("reload refused: the running configuration stays", "err", err)
		return err
	}
	return nil
}

// Done reports a listener's failure.
func (s *Service) Done() <-chan error { return s.served }

// close releases what Start acquired.
func (s *Service) close() {
	s.cancel()
	if s.audit != nil {
		s.audit.Close()
	}
	if s.users != nil {
		s.users.Close()
	}
	if s.Store != nil {
		s.Store.Close()
	}
}

// devLocal keeps a nil *DevIssuer from becoming a non-nil LocalIssuer.
func devLocal(d *auth.DevIssuer) auth.LocalIssuer {
	if d == nil {
		return nil
	}
	return d
}

func (s *Service) loadClientTLS(c config.TLS) (*tls.Config, string, error) {
	cfg, fingerprint, err := s.loadClientTLSCert(c)
	if cfg != nil {
		cfg.CurvePreferences = proxy.CurvesFor(c.KeyExchange)
	}
	return cfg, fingerprint, err
}

func (s *Service) loadClientTLSCert(c config.TLS) (*tls.Config, string, error) {
	switch {
	case s.opt.InsecureNoTLS:
		return nil, "", nil
	case c.CertFile != "":
		return proxy.LoadTLS(c.CertFile, c.KeyFile)
	case s.Certs != nil:
		return s.Certs.TLSConfig(), s.Certs.Fingerprint(), nil
	default:
		return nil, "", errors.New("no client-leg certificate: set tls.cert_file, or leave it unset for one kept in the store")
	}
}

func backendTLS(b config.Backend) (*tls.Config, error) {
	switch b.TLS {
	case config.BackendTLSDisabled, "":
		return nil, nil
	case config.BackendTLSPreferred, config.BackendTLSRequired:
		// Encrypt without verifying, as MySQL's own ssl-mode=REQUIRED does;
		// verify-full is the mode that checks the certificate.
		return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}, nil //nolint:gosec // documented mode
	case config.BackendTLSVerifyFull:
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: b.ServerName}
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(b.Address)
			if err != nil {
				return nil, fmt.Errorf("backend.address: %w", err)
			}
			cfg.ServerName = host
		}
		if b.CAFile != "" {
			pem, err := os.ReadFile(b.CAFile)
			if err != nil {
				return nil, fmt.Errorf("backend.ca_file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, errors.New("backend.ca_file: no PEM certificate found")
			}
		}
		return cfg, nil
	}
	return nil, fmt.Errorf("backend.tls: unknown mode %q", b.TLS)
}

// NewCertKeeper loads (or makes, the first time) the client-leg CA and
// server certificate kept in the store, for the names clients connect to:
// listen.mysql's host (this machine's name too when it is a wildcard) and
// tls.names.
func NewCertKeeper(ctx context.Context, cfg *config.Config, kek []byte, st store.Store, log *slog.Logger) (*proxy.CertKeeper, error) {
	seal, err := auth.NewKeySealer(kek)
	if err != nil {
		return nil, err
	}
	names := append([]string{}, cfg.TLS.Names...)
	if host, _, err := net.SplitHostPort(cfg.Listen.MySQL); err == nil {
		names = append(names, host)
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			if h, err := os.Hostname(); err == nil {
				names = append(names, h)
			}
		}
	}
	return proxy.NewCertKeeper(ctx, st, seal, names, log)
}

// caCert is the portal's /v1/ca.pem source: the kept CA, or nil when the
// certificate is configured.
func (s *Service) caCert() func() []byte {
	if s.Certs == nil {
		return nil
	}
	return s.Certs.CAPEM
}

// backendPublicKey reads backend.public_key_file, if set.
func backendPublicKey(b config.Backend) (*rsa.PublicKey, error) {
	if b.PublicKeyFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(b.PublicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("backend.public_key_file: %w", err)
	}
	key, err := proxy.ParseRSAPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("backend.public_key_file %s: %w: give the backend's RSA public key in PEM (MySQL's public_key.pem)", b.PublicKeyFile, err)
	}
	return key, nil
}

// checkAccounts warns, in the log and in /readyz, about static role
// accounts that hold privileges letting a person escape the proxy.
func (s *Service) checkAccounts(ctx context.Context, cfg *config.Config, b rbac.BackendLogin) {
	w := rbac.CheckAccounts(ctx, cfg, b)
	for _, x := range w {
		s.log.Warn("over-privileged role account", "problem", x)
	}
	s.accountWarnings.Store(w)
}

// AccountsChecked reports whether the start-up check of the role accounts
// has finished (its findings are in /readyz).
func (s *Service) AccountsChecked() bool { return s.accountWarnings.Load() != nil }

// CheckAccountPrivileges is serve --check's look at the static role
// accounts (see rbac.CheckAccounts).
func CheckAccountPrivileges(ctx context.Context, cfg *config.Config) ([]string, error) {
	t, err := backendTLS(cfg.Backend)
	if err != nil {
		return nil, err
	}
	key, err := backendPublicKey(cfg.Backend)
	if err != nil {
		return nil, err
	}
	return rbac.CheckAccounts(ctx, cfg, rbac.BackendLogin{Address: cfg.Backend.Address, TLS: t, PublicKey: key}), nil
}
