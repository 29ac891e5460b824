package cloud_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/auth/cloud/cloudtest"
)

const (
	awsAudience = "portcullis-test"

	aliceKey    = "AKIAPORTCULLISALICE1"
	aliceSecret = "alice0secret0key0EXAMPLE0000000000000000"
	aliceARN    = "arn:aws:iam::111122223333:user/alice"

	roleKey     = "ASIAPORTCULLISROLE01"
	roleSecret  = "role0secret0key0EXAMPLE00000000000000000"
	roleToken   = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
	roleSession = "arn:aws:sts::111122223333:assumed-role/app-role/i-0123456789abcdef0"
	roleARN     = "arn:aws:iam::111122223333:role/app-role"

	strangerKey    = "AKIAPORTCULLISSTRNGR"
	strangerSecret = "stranger0secret0EXAMPLE00000000000000000"

	getCallerIdentity = "Action=GetCallerIdentity&Version=2011-06-15"
)

// newFakeSTS starts a fake STS knowing alice and the app role.
func newFakeSTS(t *testing.T) *cloudtest.FakeSTS {
	t.Helper()
	return cloudtest.NewFakeSTS(t,
		map[string]string{aliceKey: aliceSecret, roleKey: roleSecret},
		map[string]string{aliceKey: aliceARN, roleKey: roleSession})
}

// awsEnv makes the SDK's default chain find exactly the given static
// credentials and send STS calls to endpoint ("" for the SDK's own
// default), with no shared config and no IMDS.
func awsEnv(t *testing.T, endpoint, key, secret, token string) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                      key,
		"AWS_SECRET_ACCESS_KEY":                  secret,
		"AWS_SESSION_TOKEN":                      token,
		"AWS_ENDPOINT_URL_STS":                   endpoint,
		"AWS_ENDPOINT_URL":                       "",
		"AWS_REGION":                             "us-east-1",
		"AWS_PROFILE":                            "",
		"AWS_CONFIG_FILE":                        filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE":            filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_ROLE_ARN":                           "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
	} {
		t.Setenv(k, v)
	}
}

func loadAWSConfig(t *testing.T) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	return cfg
}

// awsProof makes a proof with AWSProof and the SDK's default chain.
func awsProof(t *testing.T, endpoint, key, secret, token, audience string) string {
	t.Helper()
	awsEnv(t, endpoint, key, secret, token)
	proof, err := cloud.AWSProof(t.Context(), loadAWSConfig(t), audience)
	if err != nil {
		t.Fatalf("AWSProof: %v", err)
	}
	return proof
}

// hand is a proof signed by hand with the SDK's v4 signer, for the bad
// cases AWSProof would never make.
type hand struct {
	method      string // default POST
	endpoint    string // default the fake's URL
	body        string // default GetCallerIdentity
	audience    string // the X-Portcullis-Audience value; "" for none
	unsignedAud bool   // add the audience header after signing
	key, secret string // default alice
	at          time.Time
	presign     bool
}

func (h hand) proof(t *testing.T, stsURL string) string {
	t.Helper()
	if h.method == "" {
		h.method = http.MethodPost
	}
	if h.endpoint == "" {
		h.endpoint = stsURL
	}
	if h.body == "" && !h.presign {
		h.body = getCallerIdentity
	}
	if h.key == "" {
		h.key, h.secret = aliceKey, aliceSecret
	}
	if h.at.IsZero() {
		h.at = time.Now()
	}
	req, err := http.NewRequest(h.method, h.endpoint+"/", strings.NewReader(h.body))
	if err != nil {
		t.Fatal(err)
	}
	if h.body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	if h.audience != "" && !h.unsignedAud {
		req.Header.Set(cloud.AudienceHeader, h.audience)
	}
	sum := sha256.Sum256([]byte(h.body))
	creds := aws.Credentials{AccessKeyID: h.key, SecretAccessKey: h.secret}
	signer := v4.NewSigner()
	out := cloud.AWSRequest{Method: h.method, Body: []byte(h.body)}
	if h.presign {
		req.URL.RawQuery = getCallerIdentity + "&X-Amz-Expires=900"
		signed, headers, err := signer.PresignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "sts", "us-east-1", h.at)
		if err != nil {
			t.Fatal(err)
		}
		headers.Del("Host")
		out.URL, out.Headers = signed, headers
	} else {
		if err := signer.SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "sts", "us-east-1", h.at); err != nil {
			t.Fatal(err)
		}
		out.URL, out.Headers = req.URL.String(), req.Header
	}
	if h.audience != "" && h.unsignedAud {
		out.Headers.Set(cloud.AudienceHeader, h.audience)
	}
	return out.Encode()
}

// edit decodes a proof, changes it, and encodes it again.
func edit(t *testing.T, proof string, change func(*cloud.AWSRequest)) string {
	t.Helper()
	r, err := cloud.DecodeAWSRequest(proof)
	if err != nil {
		t.Fatalf("decode own proof: %v", err)
	}
	change(&r)
	return r.Encode()
}

// signatureOf is the hex signature inside a proof, to check reasons never
// repeat it.
func signatureOf(t *testing.T, proof string) string {
	t.Helper()
	r, err := cloud.DecodeAWSRequest(proof)
	if err != nil {
		return ""
	}
	if _, sig, ok := strings.Cut(r.Headers.Get("Authorization"), "Signature="); ok {
		return sig
	}
	if u, err := url.Parse(r.URL); err == nil {
		return u.Query().Get("X-Amz-Signature")
	}
	return ""
}

func TestAWSVerify(t *testing.T) {
	fake := newFakeSTS(t)

	tests := []struct {
		name      string
		proof     func(t *testing.T) string
		maxAge    time.Duration
		audience  string // default awsAudience
		principal string // want success with this Principal
		attrs     map[string]string
		denied    string // want a denial containing this
		toSTS     bool   // the proof reaches STS
	}{
		{
			name:      "IAM user via AWSProof",
			proof:     func(t *testing.T) string { return awsProof(t, fake.URL, aliceKey, aliceSecret, "", awsAudience) },
			principal: aliceARN,
			attrs:     map[string]string{"account": "111122223333", "arn": aliceARN, "access_key_id": aliceKey},
			toSTS:     true,
		},
		{
			name:      "assumed role via AWSProof is normalised to the role",
			proof:     func(t *testing.T) string { return awsProof(t, fake.URL, roleKey, roleSecret, roleToken, awsAudience) },
			principal: roleARN,
			attrs:     map[string]string{"arn": roleSession, "session_name": "i-0123456789abcdef0", "role_arn": roleARN},
			toSTS:     true,
		},
		{
			name: "presigned GET via the SDK's presign client",
			proof: func(t *testing.T) string {
				awsEnv(t, fake.URL, aliceKey, aliceSecret, "")
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
			},
			principal: aliceARN,
			toSTS:     true,
		},
		{
			name: "presigned GET signed by hand",
			proof: func(t *testing.T) string {
				return hand{method: "GET", presign: true, audience: awsAudience}.proof(t, fake.URL)
			},
			principal: aliceARN,
			toSTS:     true,
		},
		{
			name: "proof for another action",
			proof: func(t *testing.T) string {
				return hand{body: "Action=AssumeRole&Version=2011-06-15", audience: awsAudience}.proof(t, fake.URL)
			},
			denied: "sts:AssumeRole, not sts:GetCallerIdentity",
		},
		{
			name: "proof with an extra parameter",
			proof: func(t *testing.T) string {
				return hand{body: getCallerIdentity + "&RoleArn=x", audience: awsAudience}.proof(t, fake.URL)
			},
			denied: `parameter "RoleArn"`,
		},
		{
			name: "presigned URL whose query is not form-encoded",
			proof: func(t *testing.T) string {
				return edit(t, hand{method: "GET", presign: true, audience: awsAudience}.proof(t, fake.URL), func(r *cloud.AWSRequest) {
					r.URL += "&Action;x=AssumeRole"
				})
			},
			denied: "query is not form-encoded",
		},
		{
			name: "proof signed for another host",
			proof: func(t *testing.T) string {
				return hand{endpoint: "https://sts.evil.example", audience: awsAudience}.proof(t, fake.URL)
			},
			denied: `signed for host "sts.evil.example"`,
		},
		{
			name:   "proof without the audience header",
			proof:  func(t *testing.T) string { return hand{}.proof(t, fake.URL) },
			denied: "has no X-Portcullis-Audience header",
		},
		{
			name:   "audience header present but not signed",
			proof:  func(t *testing.T) string { return hand{audience: awsAudience, unsignedAud: true}.proof(t, fake.URL) },
			denied: "X-Portcullis-Audience header is not signed",
		},
		{
			name:   "proof for another audience",
			proof:  func(t *testing.T) string { return awsProof(t, fake.URL, aliceKey, aliceSecret, "", "vault") },
			denied: `for audience "vault", not "portcullis-test"`,
		},
		{
			name: "two audience headers",
			proof: func(t *testing.T) string {
				return edit(t, awsProof(t, fake.URL, aliceKey, aliceSecret, "", awsAudience), func(r *cloud.AWSRequest) {
					r.Headers.Add(cloud.AudienceHeader, "other")
				})
			},
			denied: "2 X-Portcullis-Audience headers",
		},
		{
			name: "expired X-Amz-Date",
			proof: func(t *testing.T) string {
				return hand{audience: awsAudience, at: time.Now().Add(-20 * time.Minute)}.proof(t, fake.URL)
			},
			denied: "AWS proof expired 15m ago",
		},
		{
			name: "X-Amz-Date in the future",
			proof: func(t *testing.T) string {
				return hand{audience: awsAudience, at: time.Now().Add(10 * time.Minute)}.proof(t, fake.URL)
			},
			denied: "in the future",
		},
		{
			name: "STS itself refuses an old signature",
			proof: func(t *testing.T) string {
				return hand{audience: awsAudience, at: time.Now().Add(-20 * time.Minute)}.proof(t, fake.URL)
			},
			maxAge: time.Hour,
			denied: "signature expired (SignatureDoesNotMatch)",
			toSTS:  true,
		},
		{
			name: "tampered signature",
			proof: func(t *testing.T) string {
				return edit(t, awsProof(t, fake.URL, aliceKey, aliceSecret, "", awsAudience), func(r *cloud.AWSRequest) {
					a := r.Headers.Get("Authorization")
					last := a[len(a)-1]
					flip := byte('0')
					if last == '0' {
						flip = '1'
					}
					r.Headers.Set("Authorization", a[:len(a)-1]+string(flip))
				})
			},
			denied: "refused the proof's signature (SignatureDoesNotMatch)",
			toSTS:  true,
		},
		{
			name: "signed header altered after signing",
			proof: func(t *testing.T) string {
				return edit(t, awsProof(t, fake.URL, aliceKey, aliceSecret, "", awsAudience), func(r *cloud.AWSRequest) {
					r.Headers.Set("Amz-Sdk-Request", "attempt=9; max=9")
				})
			},
			denied: "SignatureDoesNotMatch",
			toSTS:  true,
		},
		{
			name: "signed with a wrong secret",
			proof: func(t *testing.T) string {
				return hand{audience: awsAudience, secret: "wrong", key: aliceKey}.proof(t, fake.URL)
			},
			denied: "SignatureDoesNotMatch",
			toSTS:  true,
		},
		{
			name:   "unknown access key",
			proof:  func(t *testing.T) string { return awsProof(t, fake.URL, strangerKey, strangerSecret, "", awsAudience) },
			denied: "does not know the access key that signed the proof (InvalidClientTokenId)",
			toSTS:  true,
		},
		{
			name: "GET without a presigned URL",
			proof: func(t *testing.T) string {
				return edit(t, awsProof(t, fake.URL, aliceKey, aliceSecret, "", awsAudience), func(r *cloud.AWSRequest) {
					r.Method = "GET"
				})
			},
			denied: "a GET proof must be a presigned URL",
		},
		{
			name: "method other than GET or POST",
			proof: func(t *testing.T) string {
				return edit(t, awsProof(t, fake.URL, aliceKey, aliceSecret, "", awsAudience), func(r *cloud.AWSRequest) {
					r.Method = "PUT"
				})
			},
			denied: `method "PUT"`,
		},
		{
			name: "signature for another service",
			proof: func(t *testing.T) string {
				return edit(t, awsProof(t, fake.URL, aliceKey, aliceSecret, "", awsAudience), func(r *cloud.AWSRequest) {
					r.Headers.Set("Authorization", strings.Replace(r.Headers.Get("Authorization"), "/sts/", "/s3/", 1))
				})
			},
			denied: `signed for service "s3"`,
		},
		{
			name:   "garbage token",
			proof:  func(*testing.T) string { return "this is not a proof!" },
			denied: "malformed AWS proof: not base64url",
		},
		{
			name:   "base64 of something that is not JSON",
			proof:  func(*testing.T) string { return "bm90IGpzb24" },
			denied: "not a JSON object",
		},
		{
			name:   "empty token",
			proof:  func(*testing.T) string { return "" },
			denied: "empty subject token",
		},
		{
			name:   "oversized token",
			proof:  func(*testing.T) string { return strings.Repeat("A", 17<<10) },
			denied: "subject token too large",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proof := tc.proof(t)
			audience := tc.audience
			if audience == "" {
				audience = awsAudience
			}
			v := &cloud.AWSVerifier{Endpoint: fake.URL, Audience: audience, MaxAge: tc.maxAge}
			before := fake.Calls()
			id, err := v.Verify(t.Context(), proof)
			if reached := fake.Calls() > before; reached != tc.toSTS {
				t.Errorf("proof reached STS: %v, want %v", reached, tc.toSTS)
			}
			if tc.denied != "" {
				requireDenied(t, err, tc.denied, proof, signatureOf(t, proof), aliceSecret, roleSecret, roleToken)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Platform != "aws" || id.Principal != tc.principal {
				t.Errorf("identity = %s %q, want aws %q", id.Platform, id.Principal, tc.principal)
			}
			for k, want := range tc.attrs {
				if got := id.Attributes[k]; got != want {
					t.Errorf("Attributes[%q] = %q, want %q", k, got, want)
				}
			}
			if until := time.Until(id.ExpiresAt); until <= 0 || until > cloud.DefaultAWSMaxAge {
				t.Errorf("ExpiresAt in %v, want within the 15m max age", until)
			}
		})
	}
}

func TestAWSVerifyOperationalErrors(t *testing.T) {
	fake := newFakeSTS(t)
	proof := awsProof(t, fake.URL, aliceKey, aliceSecret, "", awsAudience)
	tests := []struct {
		name string
		v    *cloud.AWSVerifier
		want string
	}{
		{"no audience configured", &cloud.AWSVerifier{Endpoint: fake.URL}, "Audience is not set"},
		{"bad endpoint", &cloud.AWSVerifier{Endpoint: "sts.amazonaws.com", Audience: awsAudience}, "not an absolute http(s) URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.v.Verify(t.Context(), proof)
			var denied *auth.DeniedError
			if err == nil || errors.As(err, &denied) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want a configuration error containing %q", err, tc.want)
			}
		})
	}
}

func TestAWSProof(t *testing.T) {
	tests := []struct {
		name     string
		env      func(t *testing.T)
		base     string // cfg.BaseEndpoint
		host     string // want the proof signed for this host
		region   string
		errorHas string
	}{
		{
			name:   "no endpoint override: the global endpoint, us-east-1",
			env:    func(t *testing.T) { awsEnv(t, "", aliceKey, aliceSecret, ""); t.Setenv("AWS_REGION", "eu-west-1") },
			host:   "sts.amazonaws.com",
			region: "us-east-1",
		},
		{
			name:   "AWS_ENDPOINT_URL_STS with a regional host",
			env:    func(t *testing.T) { awsEnv(t, "https://sts.eu-west-1.amazonaws.com", aliceKey, aliceSecret, "") },
			host:   "sts.eu-west-1.amazonaws.com",
			region: "us-east-1", // AWS_REGION wins over the host
		},
		{
			name: "AWS_ENDPOINT_URL, no region: the region comes from the host",
			env: func(t *testing.T) {
				awsEnv(t, "", aliceKey, aliceSecret, "")
				t.Setenv("AWS_ENDPOINT_URL", "https://sts.ap-south-1.amazonaws.com")
				t.Setenv("AWS_REGION", "")
				t.Setenv("AWS_DEFAULT_REGION", "")
			},
			host:   "sts.ap-south-1.amazonaws.com",
			region: "ap-south-1",
		},
		{
			name:   "cfg.BaseEndpoint",
			env:    func(t *testing.T) { awsEnv(t, "", aliceKey, aliceSecret, "") },
			base:   "http://127.0.0.1:4566",
			host:   "127.0.0.1:4566",
			region: "us-east-1",
		},
		{
			name:     "no credentials anywhere",
			env:      func(t *testing.T) { awsEnv(t, "", "", "", "") },
			errorHas: "no AWS credentials: tried env, shared config, IMDS",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.env(t)
			cfg := loadAWSConfig(t)
			if tc.base != "" {
				cfg.BaseEndpoint = aws.String(tc.base)
			}
			proof, err := cloud.AWSProof(t.Context(), cfg, awsAudience)
			if tc.errorHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errorHas) {
					t.Fatalf("error = %v, want one containing %q", err, tc.errorHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("AWSProof: %v", err)
			}
			r, err := cloud.DecodeAWSRequest(proof)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			u, _ := url.Parse(r.URL)
			if u.Host != tc.host {
				t.Errorf("proof host = %q, want %q", u.Host, tc.host)
			}
			if authz := r.Headers.Get("Authorization"); !strings.Contains(authz, "/"+tc.region+"/sts/aws4_request") {
				t.Errorf("Authorization = %q, want region %s", authz, tc.region)
			}
			if r.Method != "POST" || string(r.Body) != getCallerIdentity || r.Headers.Get(cloud.AudienceHeader) != awsAudience {
				t.Errorf("proof = %s %q audience %q, want POST %q audience %q",
					r.Method, r.Body, r.Headers.Get(cloud.AudienceHeader), getCallerIdentity, awsAudience)
			}
		})
	}
}

// FuzzAWSVerify feeds arbitrary subject tokens to the AWS verifier: it
// must refuse them without panicking. The endpoint is a closed port, so a
// proof that passes every local check fails to reach STS harmlessly.
func FuzzAWSVerify(f *testing.F) {
	now := time.Now().UTC().Format("20060102T150405Z")
	seed := cloud.AWSRequest{
		Method: "POST",
		URL:    "http://127.0.0.1:9/",
		Headers: http.Header{
			"Authorization":         {"AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-portcullis-audience, Signature=00"},
			"Content-Type":          {"application/x-www-form-urlencoded"},
			"X-Amz-Date":            {now},
			"X-Portcullis-Audience": {awsAudience},
		},
		Body: []byte(getCallerIdentity),
	}
	f.Add(seed.Encode())
	presigned := cloud.AWSRequest{Method: "GET", URL: "http://127.0.0.1:9/?" + getCallerIdentity +
		"&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261123%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=" + now +
		"&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-portcullis-audience&X-Amz-Signature=00",
		Headers: http.Header{"X-Portcullis-Audience": {awsAudience}}}
	f.Add(presigned.Encode())
	f.Add("")
	f.Add("e30")
	f.Add(`eyJtZXRob2QiOiJQT1NUIn0`)
	v := &cloud.AWSVerifier{Endpoint: "http://127.0.0.1:9", Audience: awsAudience,
		Client: &http.Client{Timeout: time.Second}}
	f.Fuzz(func(t *testing.T, token string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := v.Verify(ctx, token); err == nil {
			t.Fatal("a fuzzed proof was accepted")
		}
	})
}

// TestFakeSTSWithSDK calls the fake with the SDK's own STS client, so the
// fake's answers and errors are known to parse as the real service's do.
func TestFakeSTSWithSDK(t *testing.T) {
	fake := newFakeSTS(t)
	tests := []struct {
		name        string
		key, secret string
		token       string
		arn         string
		errorCode   string
	}{
		{name: "user", key: aliceKey, secret: aliceSecret, arn: aliceARN},
		{name: "assumed role", key: roleKey, secret: roleSecret, token: roleToken, arn: roleSession},
		{name: "wrong secret", key: aliceKey, secret: "wrong", errorCode: "SignatureDoesNotMatch"},
		{name: "unknown key", key: strangerKey, secret: strangerSecret, errorCode: "InvalidClientTokenId"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			awsEnv(t, fake.URL, tc.key, tc.secret, tc.token)
			out, err := sts.NewFromConfig(loadAWSConfig(t), func(o *sts.Options) { o.RetryMaxAttempts = 1 }).
				GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
			if tc.errorCode != "" {
				var apiErr interface{ ErrorCode() string }
				if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.errorCode {
					t.Fatalf("error = %v, want STS error %s", err, tc.errorCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetCallerIdentity: %v", err)
			}
			if aws.ToString(out.Arn) != tc.arn || aws.ToString(out.Account) != "111122223333" {
				t.Errorf("GetCallerIdentity = %s in %s, want %s in 111122223333", aws.ToString(out.Arn), aws.ToString(out.Account), tc.arn)
			}
		})
	}
}
