package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/portcullisdb/portcullis/client"
	"github.com/portcullisdb/portcullis/client/tunnel"
	"github.com/portcullisdb/portcullis/config"
)

func tunnelCmd() *cobra.Command {
	var listen, role, address, caFile, fingerprint string
	cmd := &cobra.Command{
		Use:   "tunnel [--listen 127.0.0.1:3307] [--role ROLE]",
		Short: "Let GUI tools connect to 127.0.0.1 with no password: each connection goes to the proxy with a fresh token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server := serverURL(cmd)
			cache, err := client.DefaultCache()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			// Fail now, not at the first connection, when there is no login.
			e, err := client.Token(ctx, client.Options{Server: server, Cache: cache})
			if err != nil {
				return err
			}
			if address == "" {
				d, err := client.Discover(ctx, server)
				if err != nil {
					return err
				}
				address = d.MySQLAddress
			}
			tlsCfg, err := proxyTLS(address, caFile, fingerprint)
			if err != nil {
				return err
			}
			var mu sync.Mutex // one renewal at a time: a refresh token works once
			t, err := tunnel.Listen(tunnel.Options{
				Listen: listen, ProxyAddr: address, TLS: tlsCfg, Role: role, Log: newLogger(config.Log{Level: "info", Format: "text"}),
				Token: func(ctx context.Context) (string, string, error) {
					mu.Lock()
					defer mu.Unlock()
					e, err := client.Token(ctx, client.Options{Server: server, Cache: cache})
					return e.Username, e.AccessToken, err
				},
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "portcullis tunnel: listening on %s for %s (proxy %s); connect your tool there with any user name and no password (TLS off)\n",
				t.Addr(), e.Username, address)
			return t.Serve(ctx)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:3307", "loopback address to listen on")
	cmd.Flags().StringVar(&role, "role", "", "connect with this role (a tool's user name x/ROLE picks another)")
	cmd.Flags().StringVar(&address, "address", "", "the proxy's host:port (default: what the portal advertises)")
	cmd.Flags().StringVar(&caFile, "ca", "", "PEM file of the CA that signed the proxy's certificate (default: the system's)")
	cmd.Flags().StringVar(&fingerprint, "fingerprint", "", "trust the proxy certificate with this SHA-256 fingerprint (the proxy logs it: tls_sha256)")
	serverFlag(cmd)
	return cmd
}

// proxyTLS verifies the proxy's certificate: by fingerprint (the
// self-signed one the proxy makes), by a CA file, or by the system's CAs.
func proxyTLS(address, caFile, fingerprint string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("proxy address %q: %w", address, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if fingerprint != "" {
		want, err := hex.DecodeString(strings.NewReplacer(":", "", " ", "").Replace(fingerprint))
		if err != nil || len(want) != sha256.Size {
			return nil, errors.New("--fingerprint must be a SHA-256 in hex (AB:CD:... as the proxy logs it)")
		}
		cfg.InsecureSkipVerify = true //nolint:gosec // verified below, by pinning
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the proxy sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], want) != 1 {
				return errors.New("the proxy's certificate does not have the --fingerprint given")
			}
			return nil
		}
		return cfg, nil
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s holds no PEM certificate", caFile)
		}
	}
	return cfg, nil
}
