package cloud_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/auth/cloud/cloudtest"
)

const (
	tenantID      = "7d3f9a41-2b6c-4e8d-9f10-5a4b3c2d1e0f"
	otherTenantID = "0e1d2c3b-4a5f-4968-8776-a5b4c3d2e1f0"
)

// uniqueAudience is an application ID URI no earlier test in this process
// has asked for: MSAL caches managed identity tokens process-wide by
// resource, so a reused one would come from an earlier test's fake (and
// `go test -count=2` would fail).
func uniqueAudience(name string) string {
	return "api://portcullis-" + name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

func TestAzureVerify(t *testing.T) {
	azureAudience := uniqueAudience("test")
	fake := cloudtest.NewFakeEntra(t, tenantID)
	other := cloudtest.NewFakeEntra(t, otherTenantID)
	fake.Setenv(t)
	v, err := cloud.NewAzureVerifier(t.Context(), []cloud.AzureTenant{
		{TenantID: tenantID, JWKSURL: fake.JWKSURL, Audience: azureAudience},
	})
	if err != nil {
		t.Fatalf("NewAzureVerifier: %v", err)
	}
	claim := func(name string, value any) func(*jwt.Token) {
		return func(tok *jwt.Token) { tok.Claims.(jwt.MapClaims)[name] = value }
	}
	tests := []struct {
		name      string
		token     func(t *testing.T) string
		principal string
		denied    string
	}{
		{
			name: "managed identity token via azidentity",
			token: func(t *testing.T) string {
				tok, err := cloud.AzureToken(t.Context(), azureAudience+"/.default")
				if err != nil {
					t.Fatalf("AzureToken: %v", err)
				}
				return tok
			},
			principal: fake.MIResourceID,
		},
		{
			name: "no xms_mirid: the object id",
			token: func(t *testing.T) string {
				return fake.Mint(t, azureAudience, func(tok *jwt.Token) { delete(tok.Claims.(jwt.MapClaims), "xms_mirid") })
			},
			principal: "oid:" + fake.OID,
		},
		{
			name:   "untrusted tenant",
			token:  func(t *testing.T) string { return other.Mint(t, azureAudience, nil) },
			denied: `Entra ID tenant "` + otherTenantID + `" is not trusted`,
		},
		{
			name:   "trusted tenant id on another tenant's token",
			token:  func(t *testing.T) string { return other.Mint(t, azureAudience, claim("tid", tenantID)) },
			denied: "is not in Entra ID tenant " + tenantID + "'s key set",
		},
		{
			name:   "wrong audience",
			token:  func(t *testing.T) string { return fake.Mint(t, "https://management.azure.com/", nil) },
			denied: `token audience [https://management.azure.com/] does not include any of [` + azureAudience + `]`,
		},
		{
			name: "expired",
			token: func(t *testing.T) string {
				return fake.Mint(t, azureAudience, claim("exp", time.Now().Add(-3*time.Hour).Unix()))
			},
			denied: "token expired 3h ago",
		},
		{
			name: "not yet valid",
			token: func(t *testing.T) string {
				return fake.Mint(t, azureAudience, claim("nbf", time.Now().Add(time.Hour).Unix()))
			},
			denied: "not valid for another 1h",
		},
		{
			name: "HS256 signed with the public key",
			token: func(t *testing.T) string {
				return fake.Mint(t, azureAudience, func(tok *jwt.Token) { tok.Method = jwt.SigningMethodHS256 })
			},
			denied: `token algorithm "HS256" is not allowed`,
		},
		{
			name: "alg none",
			token: func(t *testing.T) string {
				return fake.Mint(t, azureAudience, func(tok *jwt.Token) { tok.Method = jwt.SigningMethodNone })
			},
			denied: `token algorithm "none" is not allowed`,
		},
		{
			name: "v2 issuer when the v1 issuer is trusted",
			token: func(t *testing.T) string {
				return fake.Mint(t, azureAudience, claim("iss", "https://login.microsoftonline.com/"+tenantID+"/v2.0"))
			},
			denied: "is not trusted for Entra ID tenant " + tenantID,
		},
		{
			name:   "delegated user token",
			token:  func(t *testing.T) string { return fake.Mint(t, azureAudience, claim("scp", "user_impersonation")) },
			denied: "delegated (user) access token",
		},
		{
			name:   "no tenant",
			token:  func(t *testing.T) string { return fake.Mint(t, azureAudience, claim("tid", nil)) },
			denied: `no "tid" claim`,
		},
		{name: "garbage", token: func(*testing.T) string { return "a.b" }, denied: "not a JWT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t)
			id, err := v.Verify(t.Context(), tok)
			if tc.denied != "" {
				requireDenied(t, err, tc.denied, tok, tok[strings.LastIndex(tok, ".")+1:])
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Platform != "azure" || id.Principal != tc.principal {
				t.Errorf("identity = %s %q, want azure %q", id.Platform, id.Principal, tc.principal)
			}
			want := map[string]string{"tenant": tenantID, "oid": fake.OID, "appid": fake.AppID}
			for k, w := range want {
				if id.Attributes[k] != w {
					t.Errorf("Attributes[%q] = %q, want %q", k, id.Attributes[k], w)
				}
			}
			if time.Until(id.ExpiresAt) <= 0 {
				t.Errorf("ExpiresAt %v is not in the future", id.ExpiresAt)
			}
		})
	}
}

func TestAzureToken(t *testing.T) {
	fake := cloudtest.NewFakeEntra(t, tenantID)
	tests := []struct {
		name     string
		env      func(t *testing.T)
		scope    string
		errorHas string
	}{
		{
			name:     "wrong identity header",
			env:      func(t *testing.T) { fake.Setenv(t); t.Setenv("IDENTITY_HEADER", "wrong") },
			scope:    uniqueAudience("wrong-header") + "/.default",
			errorHas: "ManagedIdentityCredential",
		},
		{
			name:     "user-assigned identity by AZURE_CLIENT_ID",
			env:      func(t *testing.T) { fake.Setenv(t); t.Setenv("AZURE_CLIENT_ID", fake.AppID) },
			scope:    uniqueAudience("user-assigned") + "/.default",
			errorHas: "",
		},
		{
			name:     "empty scope",
			env:      func(t *testing.T) { fake.Setenv(t) },
			errorHas: "the scope is empty",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.env(t)
			ctx, cancel := contextWithTimeout(t, 20*time.Second)
			defer cancel()
			tok, err := cloud.AzureToken(ctx, tc.scope)
			if tc.errorHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errorHas) {
					t.Fatalf("error = %v, want one containing %q", err, tc.errorHas)
				}
				return
			}
			if err != nil || strings.Count(tok, ".") != 2 {
				t.Fatalf("AzureToken = %.20q, %v; want a JWT", tok, err)
			}
		})
	}
}

func TestNewAzureVerifierConfig(t *testing.T) {
	azureAudience := uniqueAudience("config")
	_, err := cloud.NewAzureVerifier(t.Context(), []cloud.AzureTenant{
		{TenantID: tenantID, Audience: azureAudience, JWKSURL: "http://127.0.0.1:9/keys"},
		{TenantID: strings.ToUpper(tenantID), Audience: azureAudience},
		{Audience: ""},
	})
	for _, want := range []string{"tenants[1].tenant_id: " + strings.ToUpper(tenantID) + " is listed twice", "tenants[2].tenant_id: is empty", "tenants[2].audience: is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to contain %q", err, want)
		}
	}
}
