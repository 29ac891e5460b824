package cloudtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FakeEntra is a loopback Entra ID tenant: a JWKS endpoint, and an App
// Service-style managed identity endpoint that mints v1 access tokens (as
// managed identities get) for one user-assigned managed identity, with
// tid, oid, appid, xms_mirid and the requested resource as aud.
//
// azidentity reaches it with IDENTITY_ENDPOINT=IdentityEndpoint and
// IDENTITY_HEADER=IdentityHeader (Setenv does): with both set, MSAL's
// managed identity source is App Service, which accepts a plain http
// endpoint and, like the real one, must be sent the secret header. Workload
// identity cannot be faked here (azidentity requires an https
// AZURE_AUTHORITY_HOST), nor can IMDS (fixed at 169.254.169.254).
type FakeEntra struct {
	TenantID string
	// Issuer is the `iss` of minted tokens: https://sts.windows.net/<tid>/.
	Issuer string
	// JWKSURL serves the tenant's public keys.
	JWKSURL string
	// IdentityEndpoint and IdentityHeader are the managed identity endpoint
	// and the secret it requires in X-IDENTITY-HEADER.
	IdentityEndpoint string
	IdentityHeader   string
	// The managed identity the endpoint mints tokens for. Change them only
	// before the first token request.
	OID          string
	AppID        string
	MIResourceID string // the xms_mirid claim; empty: the claim is left out

	key signingKey
}

// NewFakeEntra starts a fake Entra ID tenant tenantID.
func NewFakeEntra(tb testing.TB, tenantID string) *FakeEntra {
	tb.Helper()
	f := &FakeEntra{
		TenantID:       tenantID,
		Issuer:         "https://sts.windows.net/" + tenantID + "/",
		IdentityHeader: randomHex(16),
		OID:            "0b1f5c9e-4a7d-4f3e-9c2b-" + randomHex(6),
		AppID:          "6a8c3f21-9d4e-4b7a-8e1f-" + randomHex(6),
		MIResourceID: "/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/portcullis-test" +
			"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/portcullis-workload",
		key: newSigningKey(tb, randomHex(20), ""), // Entra ID publishes no alg
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+tenantID+"/discovery/v2.0/keys", f.key.serveJWKS)
	mux.HandleFunc("GET /msi/token", f.serveMI)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	f.JWKSURL = srv.URL + "/" + tenantID + "/discovery/v2.0/keys"
	f.IdentityEndpoint = srv.URL + "/msi/token"
	return f
}

// Setenv points azidentity's managed identity credential at the fake for
// the rest of the test, and clears the variables that would pick another
// credential or source.
func (f *FakeEntra) Setenv(t testing.TB) {
	t.Setenv("IDENTITY_ENDPOINT", f.IdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", f.IdentityHeader)
	for _, k := range []string{"IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
		"AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID"} {
		t.Setenv(k, "")
	}
}

// Mint mints an access token for audience as the managed identity endpoint
// would, after edit (when not nil) has changed it (see FakeGCP.Mint).
func (f *FakeEntra) Mint(tb testing.TB, audience string, edit func(*jwt.Token)) string {
	tb.Helper()
	return f.key.sign(tb, f.claims(audience), edit)
}

func (f *FakeEntra) claims(audience string) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"aud":      audience,
		"iss":      f.Issuer,
		"iat":      now.Add(-5 * time.Minute).Unix(),
		"nbf":      now.Add(-5 * time.Minute).Unix(),
		"exp":      now.Add(time.Hour).Unix(),
		"appid":    f.AppID,
		"appidacr": "2",
		"idp":      f.Issuer,
		"idtyp":    "app",
		"oid":      f.OID,
		"sub":      f.OID,
		"tid":      f.TenantID,
		"uti":      randomHex(11),
		"ver":      "1.0",
	}
	if f.MIResourceID != "" {
		c["xms_mirid"] = f.MIResourceID
	}
	return c
}

// serveMI is the App Service managed identity protocol (api-version
// 2019-08-01): GET ?resource=...&api-version=... with X-IDENTITY-HEADER.
func (f *FakeEntra) serveMI(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case r.Header.Get("X-IDENTITY-HEADER") != f.IdentityHeader:
		http.Error(w, `{"statusCode":400,"message":"Unable to load the proper Managed Identity."}`, http.StatusBadRequest)
		return
	case q.Get("resource") == "":
		http.Error(w, `{"error":"invalid_request","error_description":"resource is required"}`, http.StatusBadRequest)
		return
	case q.Get("api-version") != "2019-08-01":
		http.Error(w, `{"error":"invalid_request","error_description":"unsupported api-version"}`, http.StatusBadRequest)
		return
	}
	if id := q.Get("client_id"); id != "" && id != f.AppID {
		http.Error(w, `{"statusCode":400,"message":"No managed identity with this client id."}`, http.StatusBadRequest)
		return
	}
	resource := q.Get("resource")
	claims := f.claims(resource)
	tok, err := f.key.trySign(claims, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	exp, _ := claims["exp"].(int64)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(exp, 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    f.AppID,
	})
}
