package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/proxy"
	"github.com/portcullisdb/portcullis/rbac"
)

// Options are the run-time switches that are not in the config file.
type Options struct {
	// InsecureNoTLS lets clients pass tokens without TLS: for local
	// development and the benchmark's comparison row only.
	InsecureNoTLS bool
	Log           *slog.Logger
}

// Service is a started portcullis.
type Service struct {
	Proxy       *proxy.Server
	MySQLAddr   net.Addr
	Fingerprint string // SHA-256 of the client-leg certificate

	cfg      *config.Config
	audit    *audit.Logger
	listener net.Listener
	served   chan error
	cancel   context.CancelFunc

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start builds every part from cfg, listens, and serves in the background.
func Start(ctx context.Context, cfg *config.Config, opt Options) (*Service, error) {
	log := opt.Log
	if log == nil {
		log = slog.Default()
	}
	var dev *auth.DevIssuer
	if cfg.DevIssuer.Enabled {
		var err error
		if dev, err = auth.LoadDevIssuer(cfg.DevIssuer); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	verifier, err := auth.NewVerifier(ctx, cfg.Issuers, dev)
	if err != nil {
		cancel()
		return nil, err
	}
	clientTLS, fingerprint, err := clientTLS(cfg.TLS, opt.InsecureNoTLS)
	if err != nil {
		cancel()
		return nil, err
	}
	backendTLS, err := backendTLS(cfg.Backend)
	if err != nil {
		cancel()
		return nil, err
	}
	al, err := audit.Open(cfg.Audit.File)
	if err != nil {
		cancel()
		return nil, err
	}
	p, err := proxy.New(proxy.Options{
		Verifier:      verifier,
		Roles:         rbac.NewResolver(cfg),
		Audit:         al,
		Log:           log,
		TLS:           clientTLS,
		InsecureNoTLS: opt.InsecureNoTLS,
		Backend: proxy.Backend{
			Address:     cfg.Backend.Address,
			DialTimeout: cfg.Backend.DialTimeout,
			TLS:         backendTLS,
			TLSOptional: cfg.Backend.TLS == config.BackendTLSPreferred,
		},
		MaxConnections:   cfg.Proxy.MaxConnections,
		HandshakeTimeout: cfg.Proxy.HandshakeTimeout,
		MaxTokenBytes:    cfg.Proxy.MaxTokenBytes,
	})
	if err != nil {
		cancel()
		al.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen.MySQL)
	if err != nil {
		cancel()
		al.Close()
		return nil, fmt.Errorf("listen on %s (listen.mysql): %w", cfg.Listen.MySQL, err)
	}
	s := &Service{Proxy: p, MySQLAddr: ln.Addr(), Fingerprint: fingerprint, cfg: cfg, audit: al, listener: ln, served: make(chan error, 1), cancel: cancel}
	go func() { s.served <- p.Serve(ctx, ln) }()
	if clientTLS == nil {
		log.Warn("client TLS is OFF (--insecure-no-tls): tokens cross the network in the clear; never do this outside development")
	}
	log.Info("portcullis proxy listening", "mysql", ln.Addr().String(), "backend", cfg.Backend.Address, "tls_sha256", fingerprint)
	return s, nil
}

// Shutdown stops accepting, drains sessions until ctx ends, then closes the rest.
// Calling it again returns the first call's result.
func (s *Service) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		err := s.Proxy.Shutdown(ctx)
		s.cancel()
		if serr := <-s.served; serr != nil && err == nil {
			err = serr
		}
		s.audit.Close()
		s.shutdownErr = err
	})
	return s.shutdownErr
}

// Done reports the serve loop's end (an accept failure).
func (s *Service) Done() <-chan error { return s.served }

func clientTLS(c config.TLS, insecure bool) (*tls.Config, string, error) {
	switch {
	case insecure:
		return nil, "", nil
	case c.CertFile != "":
		return proxy.LoadTLS(c.CertFile, c.KeyFile)
	default:
		return proxy.SelfSignedTLS()
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
