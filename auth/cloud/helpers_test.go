package cloud_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/config"
)

// The portal converts the config types to these: keep them convertible,
// and the defaults equal.
var (
	_ = cloud.AzureTenant(config.AzureTenant{})
	_ = cloud.GCPConfig(config.ExchangeGCP{})
)

func TestConfigDefaults(t *testing.T) {
	tests := []struct{ name, cloud, config string }{
		{"sts endpoint", cloud.DefaultSTSEndpoint, config.DefaultSTSEndpoint},
		{"google issuer", cloud.DefaultGoogleIssuer, config.DefaultGoogleIssuer},
		{"google jwks", cloud.DefaultGoogleJWKS, config.DefaultGoogleJWKS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cloud != tc.config {
				t.Errorf("cloud default %q != config default %q", tc.cloud, tc.config)
			}
		})
	}
}

// requireDenied fails unless err is a *auth.DeniedError whose reason
// contains want and none of secrets (the token, its signature, keys);
// secrets shorter than 8 bytes are too short to tell and are skipped.
func requireDenied(t *testing.T, err error, want string, secrets ...string) {
	t.Helper()
	var denied *auth.DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("error = %v (%T), want a *auth.DeniedError containing %q", err, err, want)
	}
	if !strings.Contains(denied.Reason, want) {
		t.Errorf("reason = %q, want it to contain %q", denied.Reason, want)
	}
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(denied.Reason, s) {
			t.Errorf("reason %q contains a secret (%.12s...)", denied.Reason, s)
		}
	}
}
