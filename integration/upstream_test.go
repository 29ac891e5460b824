package integration

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/auth/cloud/cloudtest"
)

// TestUpstreamFailuresLogNothingReplayable: STS and the platforms' key
// sets fail every way a network does (down, connection reset, 5xx, an
// endpoint echoing the request back); the exchange fails, and neither
// the operational log nor the audit log holds a URL with its query, a
// signature, a session token or a platform token: the host and a cause.
// (The timeout path needs STS's 10s limit; auth/cloud tests it.)
func TestUpstreamFailuresLogNothingReplayable(t *testing.T) {
	const sessionToken = "FwoGZXIvYXdzEPORTCULLISSESSIONTOKEN0000000000000000000000"
	remember(awsSecret)
	remember(sessionToken)
	// The key sets log through the default logger: keep its lines too.
	defaultLog := filepath.Join(t.TempDir(), "default.log")
	df, err := os.Create(defaultLog)
	if err != nil {
		t.Fatal(err)
	}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(df, nil)))
	t.Cleanup(func() { slog.SetDefault(prev); df.Close() })
	up := cloudtest.NewFailingUpstream(t)
	keys := cloudtest.NewFailingUpstream(t) // the key sets: down from the start
	keys.Close()
	gcp := cloudtest.NewFakeGCP(t) // its tokens, signed with keys the portal cannot fetch
	entra := cloudtest.NewFakeEntra(t, tenantID)
	top := fmt.Sprintf(`exchange:
  aws: {sts_endpoint: %q}
  gcp: {audience: %q, jwks_url: %q}
  azure: {tenants: [{tenant_id: %q, issuer: %q, jwks_url: %q, audience: %q}]}
  failures_per_minute: 1000
  rules:
    - {aws: {account: "123456789012", role: "etl-*"}, username: etl@svc, roles: [writer]}
    - {gcp: {project: any, service_account: workload}, username: g@svc, roles: [reader]}
    - {azure: {tenant: %q, object_id: %q}, username: a@svc, roles: [reader]}`,
		up.URL, gcpAud, keys.URL+"/oauth2/v3/certs?key=k", tenantID, entra.Issuer, keys.URL+"/keys", azureAud, tenantID, entra.OID)
	h := startHarness(t, harnessOpts{topYAML: top})
	aud := h.http // exchange.aws.audience defaults to issuer.url

	awsCfg := func(t *testing.T) aws.Config {
		dir := t.TempDir()
		cfg, err := awsconfig.LoadDefaultConfig(t.Context(),
			awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, SessionToken: sessionToken}, nil
			})),
			awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(up.URL),
			awsconfig.WithSharedConfigFiles([]string{filepath.Join(dir, "c")}), awsconfig.WithSharedCredentialsFiles([]string{filepath.Join(dir, "k")}))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var forbidden []string // every proof's replayable parts, collected as they are made
	keep := func(proof string) string {
		remember(proof)
		r, err := cloud.DecodeAWSRequest(proof)
		if err != nil {
			t.Fatal(err)
		}
		if _, sig, ok := strings.Cut(r.Headers.Get("Authorization"), "Signature="); ok {
			forbidden = append(forbidden, sig)
		}
		if u, err := url.Parse(r.URL); err == nil && u.RawQuery != "" {
			forbidden = append(forbidden, u.Query().Get("X-Amz-Signature"), u.RawQuery)
		}
		return proof
	}
	headerProof := func(t *testing.T) string {
		p, err := cloud.AWSProof(t.Context(), awsCfg(t), aud)
		if err != nil {
			t.Fatal(err)
		}
		return keep(p)
	}
	presigned := func(t *testing.T) string {
		pc := sts.NewPresignClient(sts.NewFromConfig(awsCfg(t)))
		req, err := pc.PresignGetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{}, func(po *sts.PresignOptions) {
			po.ClientOptions = append(po.ClientOptions, func(o *sts.Options) {
				o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue(cloud.AudienceHeader, aud))
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		hd := req.SignedHeader.Clone()
		hd.Del("Host")
		return keep(cloud.AWSRequest{Method: req.Method, URL: req.URL, Headers: hd}.Encode())
	}
	platformToken := func(s string) string {
		remember(s)
		forbidden = append(forbidden, s, s[strings.LastIndex(s, ".")+1:])
		return s
	}

	modes := []struct {
		name      string
		mode      cloudtest.Failure
		down      bool
		status    int
		wantInLog string
	}{
		{name: "connection reset", mode: cloudtest.FailReset, status: 500, wantInLog: "the connection was reset"},
		{name: "5xx", mode: cloudtest.Fail503, status: 500, wantInLog: "answered HTTP 503 ServiceUnavailable"},
		{name: "5xx echoing the request", mode: cloudtest.Fail500Echo, status: 500, wantInLog: "answered HTTP 500"},
		{name: "4xx echoing the request", mode: cloudtest.Fail400EchoXML, status: 401, wantInLog: "(unreadable)"},
		{name: "STS down", down: true, status: 500, wantInLog: "connection refused"},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			up.Mode.Store(int32(m.mode))
			proofs := []string{headerProof(t), presigned(t)}
			if m.down {
				up.Close()
			}
			for _, p := range proofs {
				if status, body := exchangeRaw(t, h, cloud.TokenTypeAWS, p); status != m.status {
					t.Errorf("aws exchange: %d %v, want %d", status, body, m.status)
				}
			}
			for _, tk := range []struct{ typ, token string }{
				{cloud.TokenTypeGCP, platformToken(gcp.Mint(t, gcpAud, nil))},
				{cloud.TokenTypeAzure, platformToken(entra.Mint(t, azureAud, nil))},
			} {
				if status, body := exchangeRaw(t, h, tk.typ, tk.token); status != 401 || !strings.Contains(fmt.Sprint(body["error_description"]), "signing keys unavailable") {
					t.Errorf("%s exchange with its keys unreachable: %d %v", tk.typ, status, body)
				}
			}
			logText := readFile(t, filepath.Join(h.dir, "portcullis.log"))
			auditText := readFile(t, h.audit)
			if !strings.Contains(logText+auditText, m.wantInLog) || !strings.Contains(logText, strings.TrimPrefix(up.URL, "http://")) {
				t.Errorf("the logs do not name the host %s and the cause %q", up.URL, m.wantInLog)
			}
		})
	}
	t.Run("nothing replayable in either log", func(t *testing.T) {
		for _, file := range []string{filepath.Join(h.dir, "portcullis.log"), h.audit, defaultLog} {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			text := string(data)
			for _, s := range append(forbidden, awsSecret, sessionToken, url.QueryEscape(sessionToken), "X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential", "?key=k", "dial tcp") {
				if s != "" && strings.Contains(text, s) {
					t.Errorf("%s holds %.24q...", filepath.Base(file), s)
				}
			}
		}
	})
}
