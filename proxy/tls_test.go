package proxy

import (
	"crypto/tls"
	"testing"
)

// TestKeyExchange: a Go client offers the post-quantum hybrid first; the
// default (hybrid) takes it, "classical" settles on X25519.
func TestKeyExchange(t *testing.T) {
	for _, tt := range []struct {
		keyExchange string
		want        tls.CurveID
	}{
		{"", tls.X25519MLKEM768},
		{"hybrid", tls.X25519MLKEM768},
		{"classical", tls.X25519},
	} {
		t.Run(tt.keyExchange, func(t *testing.T) {
			cfg, _, err := SelfSignedTLS()
			if err != nil {
				t.Fatal(err)
			}
			cfg.CurvePreferences = CurvesFor(tt.keyExchange)
			rawServer, rawClient := tcpPair(t)
			s := tls.Server(rawServer, cfg)
			c := tls.Client(rawClient, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test's own certificate
			errs := make(chan error, 1)
			go func() { errs <- s.Handshake() }()
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			if got := s.ConnectionState().CurveID; got != tt.want {
				t.Fatalf("key exchange %q negotiated %v, want %v", tt.keyExchange, got, tt.want)
			}
		})
	}
}
