package cloud_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/auth/cloud/cloudtest"
)

// presignedProof is a presigned GetCallerIdentity proof made by the SDK's
// presign client with session credentials: its URL query holds the
// signature and the session token.
func presignedProof(t *testing.T, endpoint string) string {
	t.Helper()
	awsEnv(t, endpoint, roleKey, roleSecret, roleToken)
	pc := sts.NewPresignClient(sts.NewFromConfig(loadAWSConfig(t)))
	req, err := pc.PresignGetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{}, func(po *sts.PresignOptions) {
		po.ClientOptions = append(po.ClientOptions, func(o *sts.Options) {
			o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue(cloud.AudienceHeader, awsAudience))
		})
	})
	if err != nil {
		t.Fatalf("presign: %v", err)
	}
	h := req.SignedHeader.Clone()
	h.Del("Host")
	return cloud.AWSRequest{Method: req.Method, URL: req.URL, Headers: h}.Encode()
}

// replayable lists what must never appear in a log or an error: the
// proof, its signature, the session token, the signed query.
func replayable(t *testing.T, proof string) []string {
	t.Helper()
	out := []string{proof, signatureOf(t, proof), roleToken, url.QueryEscape(roleToken), roleSecret, "X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential"}
	return out
}

// TestAWSUpstreamFailuresLeakNothing: when STS is down, slow, resets the
// connection, fails with 5xx or echoes the request, the error names the
// host and a cause a person can act on, and holds nothing a reader could
// replay: not the URL with its query, not the signature, not the session
// token.
func TestAWSUpstreamFailuresLeakNothing(t *testing.T) {
	tests := []struct {
		name   string
		mode   cloudtest.Failure
		down   bool
		denied bool
		want   string
	}{
		{name: "STS down", down: true, want: "connection refused"},
		{name: "timeout", mode: cloudtest.FailHang, want: "timed out"},
		{name: "connection reset", mode: cloudtest.FailReset, want: "connection was reset"},
		{name: "5xx", mode: cloudtest.Fail503, want: "answered HTTP 503 ServiceUnavailable"},
		{name: "5xx echoing the request", mode: cloudtest.Fail500Echo, want: "answered HTTP 500"},
		{name: "4xx echoing the request in its error document", mode: cloudtest.Fail400EchoXML, denied: true, want: "(unreadable)"},
	}
	for _, tt := range tests {
		for _, form := range []string{"presigned", "header-signed"} {
			t.Run(tt.name+"/"+form, func(t *testing.T) {
				up := cloudtest.NewFailingUpstream(t)
				up.Mode.Store(int32(tt.mode))
				var proof string
				if form == "presigned" {
					proof = presignedProof(t, up.URL)
				} else {
					proof = awsProof(t, up.URL, roleKey, roleSecret, roleToken, awsAudience)
				}
				if tt.down {
					up.Close()
				}
				v := &cloud.AWSVerifier{Endpoint: up.URL, Audience: awsAudience, Client: &http.Client{Timeout: 300 * time.Millisecond}}
				_, err := v.Verify(t.Context(), proof)
				if err == nil {
					t.Fatal("Verify succeeded against a failing STS")
				}
				if tt.denied {
					requireDenied(t, err, tt.want, replayable(t, proof)...)
					return
				}
				msg := err.Error()
				host := strings.TrimPrefix(up.URL, "http://")
				if !strings.Contains(msg, tt.want) || !strings.Contains(msg, host) {
					t.Errorf("error %q, want the host %s and %q", msg, host, tt.want)
				}
				for _, s := range replayable(t, proof) {
					if s != "" && strings.Contains(msg, s) {
						t.Errorf("error %q holds %.20q...", msg, s)
					}
				}
			})
		}
	}
}
