package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/auth/cloud/cloudtest"
)

// TestAWSProofSingleUse: a signed GetCallerIdentity proof is exchanged
// once. A replay is refused, and audited with who it was, on the node that
// accepted it and on a second node sharing the MariaDB store.
func TestAWSProofSingleUse(t *testing.T) {
	remember(awsSecret)
	sts := cloudtest.NewFakeSTS(t, map[string]string{awsKeyID: awsSecret}, map[string]string{awsKeyID: awsRole})
	dbName := "pcit_store_" + randomHex(4)
	if _, err := root.Exec("CREATE DATABASE " + dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec("DROP DATABASE IF EXISTS " + dbName) })
	dsn := fmt.Sprintf("root@tcp(%s)/%s", backendAddr, dbName)
	// Both nodes are one deployment: one audience, as behind one issuer.url.
	const aud = "https://portcullis-replay.test"
	top := fmt.Sprintf(`exchange:
  aws: {sts_endpoint: %q, audience: %q}
  failures_per_minute: 100
  rules: [{aws: {account: "123456789012", role: "etl-*"}, username: etl@svc, roles: [writer]}]`, sts.URL, aud)
	a := startHarness(t, harnessOpts{storeDSN: dsn, topYAML: top})
	b := startHarness(t, harnessOpts{storeDSN: dsn, topYAML: top})

	proof := func(t *testing.T) string {
		dir := t.TempDir()
		cfg, err := awsconfig.LoadDefaultConfig(t.Context(),
			awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret}, nil
			})),
			awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(sts.URL),
			awsconfig.WithSharedConfigFiles([]string{filepath.Join(dir, "c")}), awsconfig.WithSharedCredentialsFiles([]string{filepath.Join(dir, "k")}))
		if err != nil {
			t.Fatal(err)
		}
		p, err := cloud.AWSProof(t.Context(), cfg, aud)
		if err != nil {
			t.Fatal(err)
		}
		remember(p)
		return p
	}
	exchange := func(t *testing.T, h *harness, p string) (int, string) {
		status, body := exchangeRaw(t, h, cloud.TokenTypeAWS, p)
		if tok, _ := body["access_token"].(string); tok != "" {
			remember(tok)
		}
		desc, _ := body["error_description"].(string)
		return status, desc
	}
	const replayed = "AWS proof was already exchanged"
	t.Run("same node", func(t *testing.T) {
		p := proof(t)
		if status, desc := exchange(t, a, p); status != 200 {
			t.Fatalf("first exchange: %d %s", status, desc)
		}
		if status, desc := exchange(t, a, p); status != 401 || !strings.Contains(desc, replayed) {
			t.Fatalf("replay on the same node: %d %q, want 401 %q", status, desc, replayed)
		}
	})
	t.Run("second node sharing the store", func(t *testing.T) {
		p := proof(t)
		if status, desc := exchange(t, a, p); status != 200 {
			t.Fatalf("first exchange on node A: %d %s", status, desc)
		}
		if status, desc := exchange(t, b, p); status != 401 || !strings.Contains(desc, replayed) {
			t.Fatalf("replay on node B: %d %q, want 401 %q", status, desc, replayed)
		}
		if status, desc := exchange(t, b, proof(t)); status != 200 {
			t.Fatalf("a fresh proof on node B: %d %s", status, desc)
		}
	})
	t.Run("the replay is audited with the identity", func(t *testing.T) {
		for _, h := range []*harness{a, b} {
			found := false
			for _, e := range h.auditLines() {
				reason, _ := e["reason"].(string)
				if e["event"] == "exchange" && e["outcome"] == "denied" && strings.Contains(reason, replayed) &&
					e["identity"] == "arn:aws:iam::123456789012:role/etl-nightly" {
					found = true
				}
			}
			if !found {
				t.Errorf("node %s: no denied exchange audit line naming the replayed identity", h.http)
			}
		}
	})
}
