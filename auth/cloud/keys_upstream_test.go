package cloud_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/auth/cloud/cloudtest"
)

// syncBuffer is a bytes.Buffer safe for the key sets' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestKeySetFailuresLeakNothing: when Google's or an Entra ID tenant's key
// set is down, resets the connection, fails with 5xx or echoes the
// request, the token is refused with a cause, and neither the refusal nor
// the log holds the token, the key set URL's query or a raw error.
func TestKeySetFailuresLeakNothing(t *testing.T) {
	logs := &syncBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	const query = "?client_secret=not-for-logs"
	tests := []struct {
		name string
		mode cloudtest.Failure
		down bool
		want string
	}{
		{name: "down", down: true, want: "connection refused"},
		{name: "connection reset", mode: cloudtest.FailReset, want: "connection was reset"},
		{name: "5xx", mode: cloudtest.Fail503, want: "unexpected HTTP status"},
		{name: "5xx echoing the request", mode: cloudtest.Fail500Echo, want: "unexpected HTTP status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := cloudtest.NewFailingUpstream(t)
			up.Mode.Store(int32(tt.mode))
			if tt.down {
				up.Close()
			}
			gcp := cloudtest.NewFakeGCP(t)
			g, err := cloud.NewGCPVerifier(t.Context(), cloud.GCPConfig{Audience: gcpAudience, Issuer: gcp.Issuer, JWKSURL: up.URL + "/certs" + query})
			if err != nil {
				t.Fatal(err)
			}
			const tenant = "7d3f9a41-2b6c-4e8d-9f10-00000000fa11"
			entra := cloudtest.NewFakeEntra(t, tenant)
			az, err := cloud.NewAzureVerifier(t.Context(), []cloud.AzureTenant{{TenantID: tenant, Issuer: entra.Issuer, JWKSURL: up.URL + "/keys" + query, Audience: "api://portcullis"}})
			if err != nil {
				t.Fatal(err)
			}
			gTok, aTok := gcp.Mint(t, gcpAudience, nil), entra.Mint(t, "api://portcullis", nil)
			_, gErr := g.Verify(t.Context(), gTok)
			_, aErr := az.Verify(t.Context(), aTok)
			requireDenied(t, gErr, "signing keys unavailable ("+"jwks_url", gTok)
			requireDenied(t, aErr, "signing keys unavailable ("+"jwks_url", aTok)
			for _, err := range []error{gErr, aErr} {
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("refusal %q lacks the cause %q", err, tt.want)
				}
			}
			deadline := time.Now().Add(2 * time.Second)
			for !strings.Contains(logs.String(), "fetch signing keys failed") && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			text := logs.String() + gErr.Error() + aErr.Error()
			if !strings.Contains(logs.String(), strings.TrimPrefix(up.URL, "http://")) {
				t.Errorf("the log does not name the key set's host:\n%s", logs.String())
			}
			for _, s := range []string{gTok, aTok, "client_secret", "not-for-logs", "dial tcp", "upstream failed for"} {
				if strings.Contains(text, s) {
					t.Errorf("a refusal or the log holds %.30q:\n%s", s, text)
				}
			}
		})
	}
}
