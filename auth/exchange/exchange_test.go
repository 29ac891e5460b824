package exchange

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/auth/cloud/cloudtest"
	"github.com/portcullisdb/portcullis/config"
)

func TestPart(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"etl", "etl", true},
		{"etl-*", "etl-nightly", true},
		{"etl-*", "etl-", true},
		{"etl-*", "etl", false},
		{"a*b*c", "a-b-c", true},
		{"a*b*c", "a-c-b", false},
		{"batch-*", "batch-x@evil.example.com", false},
		{"batch-*@corp.example.com", "batch-x@corp.example.com", true},
		{"batch-*@corp.example.com", "batch-x@evil.example.com", false},
		{"*@corp.example.com", "x@evil.com@corp.example.com", false},
		{"*", "billing", true},
		{"*", "a/b", false},
		{"*@corp.example.com", "first.last@corp.example.com", true},
		{"etl-*", "etl-v1.2", true},
		{"*", "", false},
		{"exact", "exact-not", false},
	}
	for _, tt := range tests {
		if got := part(tt.pattern, tt.s); got != tt.want {
			t.Errorf("part(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

type fakeVerifier struct{ id cloud.Identity }

func (f fakeVerifier) Verify(context.Context, string) (cloud.Identity, error) { return f.id, nil }

type recordingIssuer struct{ got auth.AccessClaims }

func (r *recordingIssuer) Issue(c auth.AccessClaims) (string, time.Time, error) {
	r.got = c
	return "tok", time.Now().Add(c.TTL), nil
}

func TestExchangeRules(t *testing.T) {
	aws1 := &cloud.AWSParts{Partition: "aws", Account: "111111111111", Kind: "role", Name: "etl-x", Session: "s", Region: "us-east-1"}
	rules := []config.ExchangeRule{
		{AWS: &config.AWSMatch{Account: "111111111111", Role: "etl-*"}, Username: "etl@svc", Roles: []string{"etl"}, TTL: 15 * time.Minute},
		{AWS: &config.AWSMatch{Account: config.MatchAny, Role: "*"}, Username: "catch-all@svc", TTL: 15 * time.Minute},
		{GCP: &config.GCPMatch{Project: "p", ServiceAccount: "a"}, Username: "a@svc", TTL: 15 * time.Minute},
	}
	gcpA := &cloud.GCPParts{Email: "a@p.iam.gserviceaccount.com", AccountID: "a", Project: "p", Sub: "1"}
	gcpB := &cloud.GCPParts{Email: "b@p.iam.gserviceaccount.com", AccountID: "b", Project: "p", Sub: "2"}
	tests := []struct {
		name     string
		id       cloud.Identity
		wantUser string
		wantTTL  time.Duration
		wantErr  string
	}{
		{"first match wins", cloud.Identity{Platform: "aws", Principal: "arn:aws:iam::111111111111:role/etl-x", AWS: aws1}, "etl@svc", 15 * time.Minute, ""},
		{"later rule, any account said explicitly", cloud.Identity{Platform: "aws", Principal: "arn:aws:iam::9:role/bob",
			AWS: &cloud.AWSParts{Partition: "aws", Account: "999999999999", Kind: "role", Name: "bob"}}, "catch-all@svc", 15 * time.Minute, ""},
		{"token capped by the proof's expiry", cloud.Identity{Platform: "gcp", Principal: gcpA.Email, GCP: gcpA, ExpiresAt: time.Now().Add(5 * time.Minute)}, "a@svc", 5 * time.Minute, ""},
		{"no rule names the parts to write", cloud.Identity{Platform: "gcp", Principal: gcpB.Email, GCP: gcpB}, "", 0,
			`no exchange rule matches gcp identity "b@p.iam.gserviceaccount.com" (project p, service_account b, sub 2): add a rule naming these parts`},
		{"an identity without parts matches nothing", cloud.Identity{Platform: "aws", Principal: "arn:aws:iam::111111111111:role/etl-x"}, "", 0, "no exchange rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := &recordingIssuer{}
			e := New(map[string]SubjectVerifier{"t": fakeVerifier{tt.id}}, nil, rules, iss)
			res, err := e.Exchange(context.Background(), "t", "proof")
			if tt.wantErr != "" {
				var nr *NoRuleError
				if !errors.As(err, &nr) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err != nil || res.Username != tt.wantUser || iss.got.Subject != tt.id.Principal {
				t.Fatalf("got %+v %v", res, err)
			}
			if d := iss.got.TTL - tt.wantTTL; d > time.Second || d < -time.Second {
				t.Fatalf("TTL %v, want %v", iss.got.TTL, tt.wantTTL)
			}
		})
	}
	t.Run("unknown token type", func(t *testing.T) {
		e := New(map[string]SubjectVerifier{"t": fakeVerifier{}}, nil, rules, &recordingIssuer{})
		var de *auth.DeniedError
		if _, err := e.Exchange(context.Background(), "other", "x"); !errors.As(err, &de) {
			t.Fatalf("got %v", err)
		}
	})
}

const (
	tenantA   = "aaaaaaaa-0000-0000-0000-000000000001"
	tenantB   = "bbbbbbbb-0000-0000-0000-000000000002"
	subA      = "00000000-0000-0000-0000-00000000000a"
	subB      = "00000000-0000-0000-0000-00000000000b"
	audience  = "https://portcullis.test"
	azureAud  = "api://portcullis"
	awsSecret = "overgrant0secret0key0EXAMPLE000000000000"
)

func mirid(sub, group, name string) string {
	return "/subscriptions/" + sub + "/resourcegroups/" + group + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name
}

// TestOverGrantsRefused tries each over-grant of the old string rules
// with real proofs (the AWS SDK against the fake STS, tokens signed by the
// fake Entra ID tenants and Google) through the real verifiers, and
// checks that the rules written in the new syntax refuse them while the
// identity each rule means is still granted.
func TestOverGrantsRefused(t *testing.T) {
	ctx := t.Context()
	// AWS: the same role name in two accounts.
	sts := cloudtest.NewFakeSTS(t,
		map[string]string{"ASIAOVERGRANTOURS001": awsSecret, "ASIAOVERGRANTTHEIRS1": awsSecret},
		map[string]string{
			"ASIAOVERGRANTOURS001": "arn:aws:sts::123456789012:assumed-role/x/i-0abc",
			"ASIAOVERGRANTTHEIRS1": "arn:aws:sts::999999999999:assumed-role/x/i-0abc",
		})
	awsV := &cloud.AWSVerifier{Endpoint: sts.URL, Audience: audience}
	// Azure: two trusted tenants.
	entraA, entraB := cloudtest.NewFakeEntra(t, tenantA), cloudtest.NewFakeEntra(t, tenantB)
	azV, err := cloud.NewAzureVerifier(ctx, []cloud.AzureTenant{
		{TenantID: tenantA, Issuer: entraA.Issuer, JWKSURL: entraA.JWKSURL, Audience: azureAud},
		{TenantID: tenantB, Issuer: entraB.Issuer, JWKSURL: entraB.JWKSURL, Audience: azureAud},
	})
	if err != nil {
		t.Fatal(err)
	}
	// GCP and a JWT issuer (the fake Google's keys serve as the issuer's).
	gcp := cloudtest.NewFakeGCP(t)
	gcpV, err := cloud.NewGCPVerifier(ctx, cloud.GCPConfig{Audience: audience, Issuer: gcp.Issuer, JWKSURL: gcp.JWKSURL})
	if err != nil {
		t.Fatal(err)
	}
	userV, err := auth.NewVerifier(ctx, []config.Issuer{{Name: "corp", Issuer: gcp.Issuer, Audiences: []string{audience}, JWKSURL: gcp.JWKSURL, UsernameClaim: "email"}})
	if err != nil {
		t.Fatal(err)
	}
	rules := []config.ExchangeRule{
		{AWS: &config.AWSMatch{Account: "123456789012", Role: "x"}, Username: "x@svc"},
		{Azure: &config.AzureMatch{Tenant: tenantA, Subscription: subA, ResourceGroup: "prod", Name: "billing"}, Username: "billing@svc"},
		{GCP: &config.GCPMatch{Project: "prod-project", ServiceAccount: "deploy"}, Username: "deploy@svc"},
		{JWT: &config.JWTMatch{Issuer: "corp", User: "batch-*@corp.example.com"}, Username: "batch@svc"},
	}
	for i := range rules {
		rules[i].TTL = 10 * time.Minute
	}
	e := New(map[string]SubjectVerifier{
		cloud.TokenTypeAWS: awsV, cloud.TokenTypeAzure: azV, cloud.TokenTypeGCP: gcpV,
		TokenTypeJWT: JWTSubject{Verifier: userV, Allowed: map[string]bool{"corp": true}},
	}, nil, rules, &recordingIssuer{})

	awsProof := func(key string) string {
		dir := t.TempDir()
		cfg, err := awsconfig.LoadDefaultConfig(ctx,
			awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: key, SecretAccessKey: awsSecret, SessionToken: "session-token-" + key}, nil
			})),
			awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(sts.URL),
			awsconfig.WithSharedConfigFiles([]string{filepath.Join(dir, "c")}), awsconfig.WithSharedCredentialsFiles([]string{filepath.Join(dir, "k")}))
		if err != nil {
			t.Fatal(err)
		}
		p, err := cloud.AWSProof(ctx, cfg, audience)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	azure := func(f *cloudtest.FakeEntra, mi string) string {
		return f.Mint(t, azureAud, func(tk *jwt.Token) { tk.Claims.(jwt.MapClaims)["xms_mirid"] = mi })
	}
	claim := func(k, v string) func(*jwt.Token) {
		return func(tk *jwt.Token) { tk.Claims.(jwt.MapClaims)[k] = v }
	}
	tests := []struct {
		name, tokenType, subject, wantUser string
	}{
		{"aws: the rule's role in its account", cloud.TokenTypeAWS, awsProof("ASIAOVERGRANTOURS001"), "x@svc"},
		{"aws: the same role name in another account (was arn:aws:iam::*:role/x)", cloud.TokenTypeAWS, awsProof("ASIAOVERGRANTTHEIRS1"), ""},
		{"azure: the rule's identity", cloud.TokenTypeAzure, azure(entraA, mirid(subA, "prod", "billing")), "billing@svc"},
		{"azure: same name, other resource group (was */userAssignedIdentities/billing)", cloud.TokenTypeAzure, azure(entraA, mirid(subA, "dev", "billing")), ""},
		{"azure: same name, other subscription", cloud.TokenTypeAzure, azure(entraA, mirid(subB, "prod", "billing")), ""},
		{"azure: same resource id, second trusted tenant", cloud.TokenTypeAzure, azure(entraB, mirid(subA, "prod", "billing")), ""},
		{"azure: name as a suffix of another", cloud.TokenTypeAzure, azure(entraA, mirid(subA, "prod", "x-billing")), ""},
		{"gcp: the rule's service account", cloud.TokenTypeGCP, gcp.Mint(t, audience, claim("email", "deploy@prod-project.iam.gserviceaccount.com")), "deploy@svc"},
		{"gcp: deploy in another project (was deploy@*)", cloud.TokenTypeGCP, gcp.Mint(t, audience, claim("email", "deploy@evil-project.iam.gserviceaccount.com")), ""},
		{"jwt: the rule's users", TokenTypeJWT, gcp.Mint(t, audience, claim("email", "batch-x@corp.example.com")), "batch@svc"},
		{"jwt: batch-x at another domain (was corp:batch-*)", TokenTypeJWT, gcp.Mint(t, audience, claim("email", "batch-x@evil.example.com")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.Exchange(ctx, tt.tokenType, tt.subject)
			if tt.wantUser == "" {
				var nr *NoRuleError
				if !errors.As(err, &nr) {
					t.Fatalf("granted %q (%v), want no rule to match %s", res.Username, err, res.Identity.Principal)
				}
				return
			}
			if err != nil || res.Username != tt.wantUser {
				t.Fatalf("got %q %v, want %q", res.Username, err, tt.wantUser)
			}
		})
	}
}

// TestGCPBindings: a rule that names sub, azp or hd grants only the token
// that carries them, so a deleted and re-created service account of the
// same email (a new sub) is not the old one; tokens are real Google-shaped
// tokens through the GCP verifier.
func TestGCPBindings(t *testing.T) {
	gcp := cloudtest.NewFakeGCP(t)
	v, err := cloud.NewGCPVerifier(t.Context(), cloud.GCPConfig{Audience: audience, Issuer: gcp.Issuer, JWKSURL: gcp.JWKSURL})
	if err != nil {
		t.Fatal(err)
	}
	rules := []config.ExchangeRule{{GCP: &config.GCPMatch{Project: cloudtest.DefaultGCPProject, ServiceAccount: "workload",
		Sub: "110000000000000000001", Azp: "110000000000000000001", HD: "corp.example.com"}, Username: "w@svc", TTL: time.Minute}}
	e := New(map[string]SubjectVerifier{cloud.TokenTypeGCP: v}, nil, rules, &recordingIssuer{})
	set := func(kv ...string) func(*jwt.Token) {
		return func(tk *jwt.Token) {
			for i := 0; i+1 < len(kv); i += 2 {
				tk.Claims.(jwt.MapClaims)[kv[i]] = kv[i+1]
			}
		}
	}
	tests := []struct {
		name    string
		edit    func(*jwt.Token)
		granted bool
	}{
		{"sub, azp and hd as the rule says", set("hd", "corp.example.com"), true},
		{"same email, another sub (account re-created)", set("hd", "corp.example.com", "sub", "110000000000000000099"), false},
		{"another azp", set("hd", "corp.example.com", "azp", "110000000000000000099"), false},
		{"another hd", set("hd", "evil.example.com"), false},
		{"no hd", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.Exchange(t.Context(), cloud.TokenTypeGCP, gcp.Mint(t, audience, tt.edit))
			var nr *NoRuleError
			switch {
			case tt.granted && (err != nil || res.Username != "w@svc"):
				t.Fatalf("got %q %v, want w@svc", res.Username, err)
			case !tt.granted && !errors.As(err, &nr):
				t.Fatalf("granted %q (%v), want no rule to match", res.Username, err)
			}
		})
	}
	t.Run("a token without sub is refused", func(t *testing.T) {
		_, err := e.Exchange(t.Context(), cloud.TokenTypeGCP, gcp.Mint(t, audience, func(tk *jwt.Token) { delete(tk.Claims.(jwt.MapClaims), "sub") }))
		var de *auth.DeniedError
		if !errors.As(err, &de) || !strings.Contains(de.Reason, `no "sub" claim`) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestAWSRuleRegions: a rule's regions narrow where its proofs may be
// signed.
func TestAWSRuleRegions(t *testing.T) {
	rules := []config.ExchangeRule{{AWS: &config.AWSMatch{Account: "111111111111", Role: "etl", Regions: []string{"eu-west-1"}}, Username: "etl@svc", TTL: time.Minute}}
	for _, tt := range []struct {
		region  string
		granted bool
	}{{"eu-west-1", true}, {"us-east-1", false}} {
		id := cloud.Identity{Platform: "aws", Principal: "arn", AWS: &cloud.AWSParts{Partition: "aws", Account: "111111111111", Kind: "role", Name: "etl", Session: "s", Region: tt.region}}
		_, err := New(map[string]SubjectVerifier{"t": fakeVerifier{id}}, nil, rules, &recordingIssuer{}).Exchange(t.Context(), "t", "p")
		if (err == nil) != tt.granted {
			t.Errorf("region %s: %v, want granted %v", tt.region, err, tt.granted)
		}
	}
}
