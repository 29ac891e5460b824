package cloud_test

import (
	"testing"

	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/store"
)

// TestAWSProofOnce: with a store to remember them, each accepted proof is
// exchanged once; a replay is refused with a reason that says so, and
// names the identity for the audit.
func TestAWSProofOnce(t *testing.T) {
	fake := newFakeSTS(t)
	db, err := store.OpenSQLite(t.Context(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	v := &cloud.AWSVerifier{Endpoint: fake.URL, Audience: awsAudience, Spent: db}
	proof := awsProof(t, fake.URL, roleKey, roleSecret, roleToken, awsAudience)
	if _, err := v.Verify(t.Context(), proof); err != nil {
		t.Fatalf("first use: %v", err)
	}
	id, err := v.Verify(t.Context(), proof)
	requireDenied(t, err, "AWS proof was already exchanged", proof, signatureOf(t, proof), roleSecret, roleToken)
	if id.Principal != roleARN {
		t.Errorf("a refused replay names %q, want %q for the audit", id.Principal, roleARN)
	}
	if _, err := v.Verify(t.Context(), awsProof(t, fake.URL, roleKey, roleSecret, roleToken, awsAudience)); err != nil {
		t.Fatalf("a fresh proof: %v", err)
	}
}

// TestAWSProofRegion: a proof must be signed for a region the config
// allows, and the identity carries the region and the ARN's parts.
func TestAWSProofRegion(t *testing.T) {
	fake := newFakeSTS(t)
	proof := awsProof(t, fake.URL, roleKey, roleSecret, roleToken, awsAudience) // signed for us-east-1
	before := fake.Calls()
	_, err := (&cloud.AWSVerifier{Endpoint: fake.URL, Audience: awsAudience, Regions: []string{"eu-west-1"}}).Verify(t.Context(), proof)
	requireDenied(t, err, `AWS proof is signed for region "us-east-1"; this portal accepts proofs signed for eu-west-1`, proof, signatureOf(t, proof))
	if fake.Calls() != before {
		t.Error("a proof for another region reached STS")
	}
	id, err := (&cloud.AWSVerifier{Endpoint: fake.URL, Audience: awsAudience, Regions: []string{"eu-west-1", "us-east-1"}}).Verify(t.Context(), proof)
	if err != nil {
		t.Fatal(err)
	}
	want := cloud.AWSParts{Partition: "aws", Account: "111122223333", Kind: "role", Name: "app-role", Session: "i-0123456789abcdef0", Region: "us-east-1"}
	if id.AWS == nil || *id.AWS != want {
		t.Fatalf("parts %+v, want %+v", id.AWS, want)
	}
}

func TestParseAWSARN(t *testing.T) {
	tests := []struct {
		arn  string
		want cloud.AWSParts
		ok   bool
	}{
		{"arn:aws:sts::123456789012:assumed-role/etl/i-1", cloud.AWSParts{Partition: "aws", Account: "123456789012", Kind: "role", Name: "etl", Session: "i-1"}, true},
		{"arn:aws-cn:iam::123456789012:user/team/bob", cloud.AWSParts{Partition: "aws-cn", Account: "123456789012", Kind: "user", Name: "bob", Path: "/team/"}, true},
		{"arn:aws:iam::123456789012:user/bob", cloud.AWSParts{Partition: "aws", Account: "123456789012", Kind: "user", Name: "bob", Path: "/"}, true},
		{"arn:aws:sts::123456789012:assumed-role/etl", cloud.AWSParts{}, false},
		{"not-an-arn", cloud.AWSParts{}, false},
	}
	for _, tt := range tests {
		got, ok := cloud.ParseAWSARN(tt.arn)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseAWSARN(%q) = %+v %v, want %+v %v", tt.arn, got, ok, tt.want, tt.ok)
		}
	}
}
