package cloud

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/internal/jwks"
	"github.com/portcullisdb/portcullis/auth/internal/jwtcheck"
	"github.com/portcullisdb/portcullis/auth/internal/safe"
)

// azureAlgs: Entra ID signs access tokens with RS256 only.
var azureAlgs = []string{"RS256"}

// AzureTenant is one trusted Entra ID tenant. Its fields match
// config.AzureTenant, so one converts to the other.
type AzureTenant struct {
	TenantID string // the directory id; tokens name it in `tid`. Required.
	// Issuer is the exact `iss` of the tokens: https://sts.windows.net/<tid>/
	// for v1 access tokens (managed identities get these), or
	// https://login.microsoftonline.com/<tid>/v2.0 for v2. Default: the v1 form.
	Issuer string
	// JWKSURL is where the tenant's signing keys are. Default
	// https://login.microsoftonline.com/<tid>/discovery/v2.0/keys.
	JWKSURL string
	// Audience is the aud the tokens must carry: the application ID URI
	// (api://portcullis) or client id of the portcullis app registration.
	// Required.
	Audience string
}

// AzureVerifier checks TokenTypeAzure tokens: Entra ID access tokens of
// managed identities and workload identities in the trusted tenants. It is
// safe for concurrent use.
type AzureVerifier struct {
	tenants map[string]*jwtcheck.VerifiedIssuer // by lower-case tenant id
}

// NewAzureVerifier builds a verifier trusting tenants. Each distinct JWKS
// URL is fetched now and kept fresh until ctx ends (see NewGCPVerifier).
// It fails, naming every problem at once, when the tenant list is
// inconsistent.
func NewAzureVerifier(ctx context.Context, tenants []AzureTenant) (*AzureVerifier, error) {
	var problems []string
	if len(tenants) == 0 {
		problems = append(problems, "tenants: is empty: list the Entra ID tenants to trust")
	}
	seen := map[string]bool{}
	for i, t := range tenants {
		key := fmt.Sprintf("tenants[%d]", i)
		tid := strings.ToLower(t.TenantID)
		switch {
		case tid == "":
			problems = append(problems, key+".tenant_id: is empty: set the tenant (directory) id")
		case seen[tid]:
			problems = append(problems, key+".tenant_id: "+t.TenantID+" is listed twice: merge the entries")
		}
		seen[tid] = true
		if t.Audience == "" {
			problems = append(problems, key+".audience: is empty: set the application ID URI tokens are requested for")
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid azure configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	v := &AzureVerifier{tenants: make(map[string]*jwtcheck.VerifiedIssuer, len(tenants))}
	keysByURL := map[string]*jwks.Set{}
	for _, t := range tenants {
		if t.Issuer == "" {
			t.Issuer = "https://sts.windows.net/" + t.TenantID + "/"
		}
		if t.JWKSURL == "" {
			t.JWKSURL = "https://login.microsoftonline.com/" + t.TenantID + "/discovery/v2.0/keys"
		}
		name := "Entra ID tenant " + t.TenantID
		keys := keysByURL[t.JWKSURL]
		if keys == nil {
			var err error
			if keys, err = jwks.Fetch(ctx, name, t.JWKSURL, 0); err != nil {
				return nil, err
			}
			keysByURL[t.JWKSURL] = keys
		}
		v.tenants[strings.ToLower(t.TenantID)] = newPlatformIssuer(name, []string{t.Issuer}, t.Audience, azureAlgs, keys)
	}
	return v, nil
}

// Verify checks an Entra ID access token and returns the identity in it.
// The tenant is picked by the token's `tid`; then the signature (RS256,
// the tenant's keys), `iss` (exact), `aud`, `exp`, `nbf` and `iat` are
// checked. Delegated tokens (with an `scp` claim: a person signed in) are
// refused: people use portcullis login. The Principal is `xms_mirid` when
// present, else "oid:<oid>"; see Identity. Refusals are *auth.DeniedError.
func (v *AzureVerifier) Verify(ctx context.Context, subjectToken string) (Identity, error) {
	claims, err := verifyPlatformJWT(ctx, subjectToken, func(unverified jwt.MapClaims) (*jwtcheck.VerifiedIssuer, error) {
		tid, _ := unverified["tid"].(string)
		if tid == "" {
			return nil, jwtcheck.Refuse(`token has no "tid" claim: it is not an Entra ID access token`)
		}
		tenant, ok := v.tenants[strings.ToLower(tid)]
		if !ok {
			return nil, jwtcheck.Refuse("Entra ID tenant %q is not trusted: add it to exchange.azure.tenants, or use an identity of a trusted tenant", safe.Printable(tid))
		}
		return tenant, nil
	})
	if err != nil {
		return Identity{}, err
	}
	tid, _ := claims["tid"].(string) // the signed tid: the one that picked the tenant
	if _, delegated := claims["scp"]; delegated {
		return Identity{}, auth.Denied("token is a delegated (user) access token: exchange accepts workload identities only; people sign in with portcullis login")
	}
	get := func(name string) string {
		s, _ := claims[name].(string)
		return s
	}
	exp, _ := claims.GetExpirationTime() // present: checked by the validator
	id := Identity{Platform: PlatformAzure, Attributes: map[string]string{}, ExpiresAt: exp.Time}
	for _, k := range []string{"oid", "sub", "xms_mirid", "idtyp"} {
		setAttr(id.Attributes, k, get(k))
	}
	setAttr(id.Attributes, "tenant", tid)
	appid := get("appid") // v1 tokens
	if appid == "" {
		appid = get("azp") // v2 tokens
	}
	setAttr(id.Attributes, "appid", appid)
	id.Azure = &AzureParts{Tenant: strings.ToLower(tid), ObjectID: strings.ToLower(get("oid"))}
	if mirid := get("xms_mirid"); mirid != "" {
		if sub, group, typ, name, ok := ParseAzureResourceID(mirid); ok {
			id.Azure.Subscription, id.Azure.ResourceGroup, id.Azure.ResourceType, id.Azure.Name = sub, group, typ, name
		}
	}
	switch {
	case get("xms_mirid") != "":
		id.Principal = get("xms_mirid")
	case get("oid") != "":
		id.Principal = "oid:" + get("oid")
	default:
		return Identity{}, auth.Denied(`Entra ID token has neither "xms_mirid" nor "oid": it names no identity`)
	}
	return id, nil
}

// AzureToken gets an Entra ID access token for scope (for example
// "api://portcullis/.default") with the workload's own identity, through
// azidentity. It tries, in order:
//  1. WorkloadIdentityCredential, when AZURE_FEDERATED_TOKEN_FILE is set
//     (AKS workload identity; also AZURE_CLIENT_ID, AZURE_TENANT_ID and
//     AZURE_AUTHORITY_HOST, which azidentity requires to be https);
//  2. ManagedIdentityCredential: App Service, Functions and Container Apps
//     (IDENTITY_ENDPOINT + IDENTITY_HEADER), Cloud Shell and Azure ML
//     (MSI_ENDPOINT), Azure Arc, Service Fabric, else the VM's IMDS. A
//     user-assigned identity is picked by AZURE_CLIENT_ID.
//
// It is deliberately not DefaultAzureCredential: that would also take a
// person's Azure CLI or developer sign-in and exchange it as if it were the
// workload; people use portcullis login. Off Azure, the IMDS attempt
// retries for a while: bound it with ctx.
func AzureToken(ctx context.Context, scope string) (string, error) {
	if scope == "" {
		return "", errors.New("azure token: the scope is empty: pass the portcullis application's scope, e.g. api://portcullis/.default")
	}
	var creds []azcore.TokenCredential
	if os.Getenv("AZURE_FEDERATED_TOKEN_FILE") != "" {
		wi, err := azidentity.NewWorkloadIdentityCredential(nil)
		if err != nil {
			return "", fmt.Errorf("azure workload identity: %w", err)
		}
		creds = append(creds, wi)
	}
	opts := &azidentity.ManagedIdentityCredentialOptions{}
	if id := os.Getenv("AZURE_CLIENT_ID"); id != "" {
		opts.ID = azidentity.ClientID(id)
	}
	mi, err := azidentity.NewManagedIdentityCredential(opts)
	if err != nil {
		return "", fmt.Errorf("azure managed identity: %w", err)
	}
	creds = append(creds, mi)
	chain, err := azidentity.NewChainedTokenCredential(creds, nil)
	if err != nil {
		return "", fmt.Errorf("azure credentials: %w", err)
	}
	tok, err := chain.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		return "", fmt.Errorf("azure token for %s: %w", scope, err)
	}
	return tok.Token, nil
}
