package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/auth/cloud/cloudtest"
)

const (
	awsKeyID  = "AKIAPORTCULLISTEST01"
	awsSecret = "portcullis-test-secret-access-key-0000000"
	awsRole   = "arn:aws:sts::123456789012:assumed-role/etl-nightly/i-0abc"
	tenantID  = "11111111-2222-3333-4444-555555555555"
	gcpAud    = "https://portcullis.test"
	azureAud  = "api://portcullis"
)

// cloudHarness runs the product with AWS, GCP and Azure exchange pointed
// at loopback fakes that the real SDKs reach through their own endpoint
// overrides.
type cloudHarness struct {
	*harness
	sts   *cloudtest.FakeSTS
	gcp   *cloudtest.FakeGCP
	entra *cloudtest.FakeEntra
	env   []string // for the portcullis binary: the SDK overrides and a private config dir
}

func startCloudHarness(t *testing.T) *cloudHarness {
	remember(awsSecret)
	sts := cloudtest.NewFakeSTS(t, map[string]string{awsKeyID: awsSecret}, map[string]string{awsKeyID: awsRole})
	gcp := cloudtest.NewFakeGCP(t)
	entra := cloudtest.NewFakeEntra(t, tenantID)
	x := fmt.Sprintf(`
exchange:
  aws: {sts_endpoint: %q}
  gcp: {audience: %q, issuer: %q, jwks_url: %q}
  azure:
    tenants: [{tenant_id: %q, issuer: %q, jwks_url: %q, audience: %q}]
  failures_per_minute: 100
  rules:
    - {aws: {account: "123456789012", role: "etl-*"}, username: etl@svc, roles: [writer], ttl: 10m}
    - {gcp: {project: %q, service_account: %q}, username: reports@svc, roles: [reader]}
    - {azure: {tenant: %q, subscription: "00000000-0000-0000-0000-000000000001", resource_group: portcullis-test, name: portcullis-workload}, username: billing@svc, roles: [reader]}
`, sts.URL, gcpAud, gcp.Issuer, gcp.JWKSURL, tenantID, entra.Issuer, entra.JWKSURL, azureAud,
		cloudtest.DefaultGCPProject, strings.Split(gcp.Email, "@")[0], tenantID)
	h := startHarness(t, harnessOpts{topYAML: x})
	env := append(os.Environ(),
		"XDG_CONFIG_HOME="+t.TempDir(),
		"PORTCULLIS_SERVER="+h.http,
		"AWS_ACCESS_KEY_ID="+awsKeyID, "AWS_SECRET_ACCESS_KEY="+awsSecret, "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL_STS="+sts.URL, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"GCE_METADATA_HOST="+gcp.Host,
		"IDENTITY_ENDPOINT="+entra.IdentityEndpoint, "IDENTITY_HEADER="+entra.IdentityHeader,
	)
	return &cloudHarness{harness: h, sts: sts, gcp: gcp, entra: entra, env: env}
}

// portcullis runs the real binary with the harness's environment.
func (c *cloudHarness) portcullis(t *testing.T, args ...string) (string, string, error) {
	cmd := exec.Command(portcullisBin(t), args...)
	cmd.Env = c.env
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return strings.TrimSpace(out.String()), errOut.String(), err
}

func TestCloudExchangeEndToEnd(t *testing.T) {
	c := startCloudHarness(t)
	tests := []struct {
		cloud, user, wantBackend string
	}{
		{"aws", "etl@svc", writerUser + "@%"},
		{"gcp", "reports@svc", readerUser + "@%"},
		{"azure", "billing@svc", readerUser + "@%"},
	}
	for _, tt := range tests {
		t.Run(tt.cloud, func(t *testing.T) {
			token, errOut, err := c.portcullis(t, "token", "--cloud", tt.cloud)
			if err != nil {
				t.Fatalf("portcullis token --cloud %s: %v\n%s", tt.cloud, err, errOut)
			}
			remember(token)
			claims := jwt.MapClaims{}
			if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
				t.Fatal(err)
			}
			if claims["auth_method"] != tt.cloud || claims["username"] != tt.user {
				t.Fatalf("claims %v", claims)
			}
			db := c.open(tt.user, token)
			if got := queryString(t, db, "SELECT CURRENT_USER()"); got != tt.wantBackend {
				t.Fatalf("CURRENT_USER() = %q, want %q", got, tt.wantBackend)
			}
		})
	}
	t.Run("serve --check says what each rule grants", func(t *testing.T) {
		out, errOut, err := c.portcullis(t, "serve", "--check", "-c", filepath.Join(c.dir, "portcullis.yaml"))
		for _, want := range []string{
			`exchange.rules[0]: AWS roles matching "etl-*" (* stays within the role) in account 123456789012 (partition aws), any session name -> user etl@svc`,
			`exchange.rules[1]: GCP service account workload of project portcullis-test -> user reports@svc`,
			`exchange.rules[2]: Azure user-assigned managed identity portcullis-workload in resource group portcullis-test of subscription 00000000-0000-0000-0000-000000000001 in tenant ` + tenantID,
		} {
			if err != nil || !strings.Contains(out, want) {
				t.Errorf("serve --check: %v, output lacks %q:\n%s%s", err, want, out, errOut)
			}
		}
	})
	t.Run("the cache is 0600 and reused while fresh", func(t *testing.T) {
		calls := c.sts.Calls()
		if _, _, err := c.portcullis(t, "token", "--cloud", "aws"); err != nil {
			t.Fatal(err)
		}
		if c.sts.Calls() != calls {
			t.Fatal("a fresh cached token was not reused")
		}
		var cacheFile string
		for _, e := range c.env {
			if v, ok := strings.CutPrefix(e, "XDG_CONFIG_HOME="); ok {
				cacheFile = filepath.Join(v, "portcullis", "tokens.json")
			}
		}
		info, err := os.Stat(cacheFile)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("cache file %s: %v %v", cacheFile, info, err)
		}
	})
	t.Run("portcullis mysql runs the client with the token, not in argv", func(t *testing.T) {
		out, errOut, err := c.portcullis(t, "mysql", "--cloud", "gcp", "--", "--batch", "--skip-column-names", "-e", "SELECT CURRENT_USER()")
		if err != nil || out != readerUser+"@%" {
			t.Fatalf("portcullis mysql: %v %q\n%s", err, out, errOut)
		}
	})
}

// exchangeRaw posts a token exchange and returns the status and body.
func exchangeRaw(t *testing.T, h *harness, tokenType, subject string) (int, map[string]any) {
	resp, err := http.PostForm(h.http+"/v1/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token_type": {tokenType}, "subject_token": {subject},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestCloudExchangeRefusals(t *testing.T) {
	c := startCloudHarness(t)
	gcpToken := func(aud string, edit func(*jwt.Token)) string {
		s := c.gcp.Mint(t, aud, edit)
		remember(s)
		return s
	}
	tests := []struct {
		name, tokenType, subject string
		status                   int
		want                     string
	}{
		{"GCP token for another audience (replay)", cloud.TokenTypeGCP, gcpToken("https://other.example", nil), 401, "audience"},
		{"GCP email not verified", cloud.TokenTypeGCP, gcpToken(gcpAud, func(tk *jwt.Token) { tk.Claims.(jwt.MapClaims)["email_verified"] = false }), 401, "email_verified"},
		{"GCP identity no rule maps", cloud.TokenTypeGCP, gcpToken(gcpAud, func(tk *jwt.Token) { tk.Claims.(jwt.MapClaims)["email"] = "intruder@evil.iam.gserviceaccount.com" }), 403, "no exchange rule matches gcp identity"},
		{"Azure identity of the rule's name in another subscription (was */userAssignedIdentities/...)", cloud.TokenTypeAzure, c.entra.Mint(t, azureAud, func(tk *jwt.Token) {
			tk.Claims.(jwt.MapClaims)["xms_mirid"] = "/subscriptions/00000000-0000-0000-0000-0000000000ff/resourcegroups/portcullis-test/providers/Microsoft.ManagedIdentity/userAssignedIdentities/portcullis-workload"
		}), 403, "subscription 00000000-0000-0000-0000-0000000000ff"},
		{"GCP account of the rule's name in another project (was name@*)", cloud.TokenTypeGCP, gcpToken(gcpAud, func(tk *jwt.Token) {
			tk.Claims.(jwt.MapClaims)["email"] = "workload@evil-project.iam.gserviceaccount.com"
		}), 403, "project evil-project"},
		{"Azure token from an untrusted tenant", cloud.TokenTypeAzure, c.entra.Mint(t, azureAud, func(tk *jwt.Token) { tk.Claims.(jwt.MapClaims)["tid"] = "99999999-0000-0000-0000-000000000000" }), 401, "tenant"},
		{"garbage AWS proof", cloud.TokenTypeAWS, "not-a-proof", 401, ""},
		{"unknown token type", "urn:example:nope", "x", 401, "not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := exchangeRaw(t, c.harness, tt.tokenType, tt.subject)
			desc, _ := body["error_description"].(string)
			if status != tt.status || !strings.Contains(desc, tt.want) {
				t.Fatalf("got %d %q, want %d containing %q", status, desc, tt.status, tt.want)
			}
		})
	}
	t.Run("each refusal is audited", func(t *testing.T) {
		n := 0
		for _, e := range c.auditLines() {
			if e["event"] == "exchange" && e["outcome"] == "denied" {
				n++
			}
		}
		if n < len(tests) {
			t.Fatalf("%d denied exchange audit lines, want %d", n, len(tests))
		}
	})
}
