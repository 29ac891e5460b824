package cloud

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/internal/safe"
	"github.com/portcullisdb/portcullis/store"
)

// AudienceHeader is the request header an AWS proof signs to name the
// portcullis deployment it is for. A proof whose signature does not cover
// it could be replayed to any other service that accepts GetCallerIdentity
// proofs, so the verifier requires it to be signed.
const AudienceHeader = "X-Portcullis-Audience"

// Defaults of AWSVerifier.
const (
	DefaultSTSEndpoint = "https://sts.amazonaws.com"
	DefaultAWSMaxAge   = 5 * time.Minute
)

// Limits of AWS proofs and of the STS answer.
const (
	maxAWSProofBytes = 16 << 10 // encoded; a proof with a 4 KB session token is about 7 KB
	maxSTSBodyBytes  = 64 << 10
	awsClockSkew     = 5 * time.Minute // how far in the future a signing time may be
	stsTimeout       = 10 * time.Second
	amzDateFormat    = "20060102T150405Z"
	sigV4Algorithm   = "AWS4-HMAC-SHA256"
	stsVersion       = "2011-06-15"
)

// AWSRequest is the signed sts:GetCallerIdentity request inside a
// TokenTypeAWS subject token. It is the proof Vault's aws auth method uses:
// the caller signs the request with its AWS credentials but does not send it;
// the verifier sends it to STS, and STS answers with the caller's ARN only if
// the signature is good.
//
// The subject token is base64url (RFC 4648 §5, padding optional) of the JSON
//
//	{
//	  "method":  "POST",
//	  "url":     "https://sts.amazonaws.com/",
//	  "headers": {"Authorization": ["AWS4-HMAC-SHA256 Credential=..."], "X-Amz-Date": ["20261123T101500Z"],
//	              "X-Portcullis-Audience": ["portcullis"], "Content-Type": ["application/x-www-form-urlencoded; charset=utf-8"], ...},
//	  "body":    "QWN0aW9uPUdldENhbGxlcklkZW50aXR5JlZlcnNpb249MjAxMS0wNi0xNQ=="
//	}
//
// where body is the standard base64 of the request body
// ("Action=GetCallerIdentity&Version=2011-06-15"). Two forms are accepted:
//   - header-signed: POST, the action in the form-encoded body, the
//     signature in the Authorization header (what AWSProof makes);
//   - presigned: GET, the action and the X-Amz-* signature parameters in the
//     URL query, no body (what sts.PresignClient.PresignGetCallerIdentity
//     makes, with AudienceHeader added before presigning).
//
// In both the X-Portcullis-Audience header must be present and signed.
type AWSRequest struct {
	Method  string      `json:"method"`
	URL     string      `json:"url"`
	Headers http.Header `json:"headers"`
	Body    []byte      `json:"body,omitempty"`
}

// Encode returns the subject token for r.
func (r AWSRequest) Encode() string {
	raw, err := json.Marshal(r)
	if err != nil { // a struct of strings and bytes always marshals
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// DecodeAWSRequest decodes a TokenTypeAWS subject token. It checks the
// encoding only; AWSVerifier.Verify checks the request.
func DecodeAWSRequest(subjectToken string) (AWSRequest, error) {
	switch {
	case subjectToken == "":
		return AWSRequest{}, auth.Denied("empty subject token")
	case len(subjectToken) > maxAWSProofBytes:
		return AWSRequest{}, auth.Denied("subject token too large: %d bytes, the limit is %d for an AWS proof", len(subjectToken), maxAWSProofBytes)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(subjectToken, "="))
	if err != nil {
		return AWSRequest{}, auth.Denied("malformed AWS proof: not base64url; make it with portcullis token --cloud aws")
	}
	var r AWSRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || dec.More() {
		return AWSRequest{}, auth.Denied(`malformed AWS proof: not a JSON object {"method", "url", "headers", "body"}`)
	}
	// Canonical header names, so lookups cannot be dodged by spelling.
	h := make(http.Header, len(r.Headers))
	for k, vs := range r.Headers {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		h[ck] = append(h[ck], vs...)
	}
	r.Headers = h
	return r, nil
}

// AWSVerifier checks TokenTypeAWS proofs: signed sts:GetCallerIdentity
// requests (see AWSRequest). It checks the request itself first, so that
// nothing but an unaltered GetCallerIdentity request for this deployment is
// ever sent to STS, then sends it to Endpoint and reads the caller's identity
// from STS's answer. The zero value, with Audience set, is ready to use; it
// is safe for concurrent use and must not be changed after first use.
type AWSVerifier struct {
	// Endpoint is the STS endpoint proofs must be signed for and are sent to.
	// Default https://sts.amazonaws.com (the global endpoint, signed for
	// us-east-1); set a regional one, e.g. https://sts.eu-west-1.amazonaws.com,
	// and point the workloads at the same (AWS_ENDPOINT_URL_STS). A proof
	// signed for another host is refused.
	Endpoint string
	// Audience is the value the signed X-Portcullis-Audience header must
	// hold. Required.
	Audience string
	// Client sends the proofs to STS. Nil means a client with a 10s timeout.
	// Redirects are never followed.
	Client *http.Client
	// MaxAge is how old a proof's signing time may be. Default 5m.
	MaxAge time.Duration
	// Regions the proof's signature may be scoped to; empty: any region
	// (STS itself refuses a region its endpoint does not serve).
	Regions []string
	// Spent remembers every accepted proof until it expires, so that each
	// is exchanged once, on every node sharing it (*store.DB). Nil: proofs
	// can be replayed within their life; only tests leave it nil.
	Spent SpentProofs
}

// SpentProofs remembers one-time proofs; *store.DB implements it.
// SpendProof fails with store.ErrConflict when id was spent already.
type SpentProofs interface {
	SpendProof(ctx context.Context, id string, expires time.Time) error
}

// Verify checks subjectToken and returns the identity STS vouches for.
// Every refusal is a *auth.DeniedError whose reason names the problem and
// never contains the proof, its signature or a key. Any other error means
// the check could not be made (STS unreachable or failing, or the verifier
// misconfigured): it is not the caller's fault.
func (v *AWSVerifier) Verify(ctx context.Context, subjectToken string) (Identity, error) {
	endpoint, err := v.endpoint()
	if err != nil {
		return Identity{}, err
	}
	if v.Audience == "" {
		return Identity{}, errors.New("aws verifier: Audience is not set")
	}
	maxAge := v.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultAWSMaxAge
	}
	r, err := DecodeAWSRequest(subjectToken)
	if err != nil {
		return Identity{}, err
	}
	c, err := checkAWSRequest(r, endpoint, v.Audience, maxAge, time.Now())
	if err != nil {
		return Identity{}, err
	}
	if len(v.Regions) > 0 && !slices.Contains(v.Regions, c.region) {
		return Identity{}, auth.Denied("AWS proof is signed for region %q; this portal accepts proofs signed for %s: sign it for one of them (AWS_REGION)",
			safe.Printable(c.region), strings.Join(v.Regions, ", "))
	}
	res, err := v.send(ctx, endpoint, c)
	if err != nil {
		return Identity{}, err
	}
	id, err := awsIdentity(res, c)
	if err != nil {
		return Identity{}, err
	}
	if v.Spent != nil {
		// After STS vouched for it, so that a forged proof spends nothing;
		// the store's insert is the one test-and-set racing nodes share.
		switch err := v.Spent.SpendProof(ctx, c.proofID(), c.expiresAt); {
		case errors.Is(err, store.ErrConflict):
			return id, auth.Denied("AWS proof was already exchanged: each proof is accepted once; make a fresh one (portcullis token --cloud aws does)")
		case err != nil:
			return Identity{}, fmt.Errorf("aws verifier: remember the proof: %w", err)
		}
	}
	return id, nil
}

// proofID names a proof in the spent-proof record: a digest of its
// signature, which no other request shares.
func (c *checkedAWS) proofID() string {
	sum := sha256.Sum256([]byte(strings.ToLower(c.signature))) // hex: one spelling per signature
	return "aws:" + hex.EncodeToString(sum[:])
}

func (v *AWSVerifier) endpoint() (*url.URL, error) {
	raw := v.Endpoint
	if raw == "" {
		raw = DefaultSTSEndpoint
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("aws verifier: Endpoint %q is not an absolute http(s) URL", raw)
	}
	return u, nil
}

// checkedAWS is a proof that passed the local checks.
type checkedAWS struct {
	req           AWSRequest
	u             *url.URL
	presigned     bool
	signedHeaders []string // lower case
	accessKeyID   string
	region        string
	signature     string
	signedAt      time.Time
	expiresAt     time.Time
}

// checkAWSRequest makes every check that needs no STS: method, host,
// action, audience and its signature coverage, and signing time.
func checkAWSRequest(r AWSRequest, endpoint *url.URL, audience string, maxAge time.Duration, now time.Time) (*checkedAWS, error) {
	c := &checkedAWS{req: r}
	switch r.Method {
	case http.MethodPost, http.MethodGet:
	default:
		return nil, auth.Denied("AWS proof uses method %q: only a POST (signed headers) or GET (presigned URL) sts:GetCallerIdentity request is accepted",
			safe.Printable(r.Method))
	}
	u, err := url.Parse(r.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, auth.Denied("malformed AWS proof: the request URL is not an absolute http(s) URL")
	}
	if u.User != nil || u.Fragment != "" {
		return nil, auth.Denied("malformed AWS proof: the request URL has user info or a fragment")
	}
	if got, want := hostKey(u), hostKey(endpoint); got != want {
		return nil, auth.Denied("AWS proof is signed for host %q, but this portal verifies proofs with STS at %q: sign the proof for that endpoint (AWS_ENDPOINT_URL_STS=%s)",
			safe.Printable(u.Host), endpoint.Host, endpoint.Scheme+"://"+endpoint.Host)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, auth.Denied("AWS proof request path %q is not /", safe.Printable(u.Path))
	}
	c.u = u

	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, auth.Denied("malformed AWS proof: the request URL's query is not form-encoded")
	}
	c.presigned = query.Has("X-Amz-Signature") || query.Has("X-Amz-Algorithm") || query.Has("X-Amz-Credential")
	authz := r.Headers.Values("Authorization")
	var params url.Values
	switch {
	case c.presigned && len(authz) > 0:
		return nil, auth.Denied("malformed AWS proof: it is both presigned and header-signed")
	case c.presigned && r.Method != http.MethodGet:
		return nil, auth.Denied("AWS proof is a presigned %s request: presigned proofs must be GET", r.Method)
	case !c.presigned && r.Method != http.MethodPost:
		return nil, auth.Denied("AWS proof is an unsigned GET request: a GET proof must be a presigned URL")
	case c.presigned:
		if len(r.Body) > 0 {
			return nil, auth.Denied("AWS proof is a presigned GET request with a body: GetCallerIdentity takes none")
		}
		params = url.Values{}
		for k, vs := range query {
			if !strings.HasPrefix(strings.ToLower(k), "x-amz-") {
				params[k] = vs
			}
		}
	default:
		if len(query) > 0 {
			return nil, auth.Denied("AWS proof is a POST request with URL query parameters: the action belongs in the body only")
		}
		ct := r.Headers.Get("Content-Type")
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, auth.Denied("AWS proof body is %q, not application/x-www-form-urlencoded", safe.Printable(ct))
		}
		if params, err = url.ParseQuery(string(r.Body)); err != nil {
			return nil, auth.Denied("malformed AWS proof: the request body is not form-encoded")
		}
	}
	if err := checkAction(params); err != nil {
		return nil, err
	}

	var sig sigV4
	if c.presigned {
		sig, err = presignedSigV4(query)
	} else {
		sig, err = headerSigV4(authz, r.Headers)
	}
	if err != nil {
		return nil, err
	}
	c.signedHeaders, c.accessKeyID, c.region, c.signature = sig.signedHeaders, sig.accessKeyID, sig.region, sig.signature
	if !slices.Contains(sig.signedHeaders, "host") {
		return nil, auth.Denied("AWS proof does not sign the host header")
	}

	switch got := r.Headers.Values(AudienceHeader); {
	case len(got) == 0:
		return nil, auth.Denied("AWS proof has no %s header: make it with portcullis token --cloud aws, which signs the audience %q",
			AudienceHeader, audience)
	case len(got) > 1:
		return nil, auth.Denied("AWS proof has %d %s headers: it must have one", len(got), AudienceHeader)
	case !slices.Contains(sig.signedHeaders, strings.ToLower(AudienceHeader)):
		return nil, auth.Denied("AWS proof's %s header is not signed: an unsigned audience does not stop replay to other services; sign it with the request",
			AudienceHeader)
	case got[0] != audience:
		return nil, auth.Denied("AWS proof is for audience %q, not %q: a proof made for another service is refused; request one for %q",
			safe.Printable(got[0]), audience, audience)
	}
	for _, h := range sig.signedHeaders {
		if h != "host" && h != "content-length" && len(r.Headers.Values(h)) == 0 {
			return nil, auth.Denied("AWS proof signs header %q but does not carry it", safe.Printable(h))
		}
	}

	c.signedAt = sig.date
	window := maxAge
	if sig.expires > 0 {
		window = min(window, sig.expires)
	}
	c.expiresAt = sig.date.Add(window)
	switch {
	case sig.date.After(now.Add(awsClockSkew)):
		return nil, auth.Denied("AWS proof is signed %s in the future: check the clock of the signing host", safe.HumanDuration(sig.date.Sub(now)))
	case now.After(c.expiresAt):
		return nil, auth.Denied("AWS proof expired %s ago (signed %s ago; it was valid for %s): make a fresh one",
			safe.HumanDuration(now.Sub(c.expiresAt)), safe.HumanDuration(now.Sub(sig.date)), safe.HumanDuration(window))
	}
	return c, nil
}

// checkAction requires exactly Action=GetCallerIdentity&Version=2011-06-15.
func checkAction(params url.Values) error {
	action := params["Action"]
	switch {
	case len(action) == 0:
		return auth.Denied("AWS proof names no STS action: it must be sts:GetCallerIdentity")
	case len(action) > 1:
		return auth.Denied("AWS proof names %d STS actions: it must name one, GetCallerIdentity", len(action))
	case action[0] != "GetCallerIdentity":
		return auth.Denied("AWS proof is for sts:%s, not sts:GetCallerIdentity", safe.Printable(action[0]))
	}
	if version := params["Version"]; len(version) != 1 || version[0] != stsVersion {
		return auth.Denied("AWS proof must name STS API version %s", stsVersion)
	}
	for k := range params {
		if k != "Action" && k != "Version" {
			return auth.Denied("AWS proof has parameter %q: GetCallerIdentity takes only Action and Version", safe.Printable(k))
		}
	}
	return nil
}

// hostKey is a URL's host for comparison: lower case, default port dropped.
func hostKey(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" || (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		return host
	}
	return net.JoinHostPort(host, port)
}

// sigV4 is what a proof's signature says about itself.
type sigV4 struct {
	signature     string
	accessKeyID   string
	region        string
	signedHeaders []string
	date          time.Time
	expires       time.Duration // presigned only
}

// headerSigV4 reads an Authorization header:
// AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/sts/aws4_request, SignedHeaders=a;b, Signature=hex
func headerSigV4(authz []string, h http.Header) (sigV4, error) {
	if len(authz) != 1 {
		return sigV4{}, auth.Denied("AWS proof is not signed: it has %d Authorization headers and no presigned URL", len(authz))
	}
	alg, rest, _ := strings.Cut(authz[0], " ")
	if alg != sigV4Algorithm {
		return sigV4{}, auth.Denied("AWS proof is signed with %q: only %s (SigV4) is accepted", safe.Printable(alg), sigV4Algorithm)
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = val
	}
	if fields["Signature"] == "" || fields["SignedHeaders"] == "" || fields["Credential"] == "" {
		return sigV4{}, auth.Denied("malformed AWS proof: the Authorization header lacks Credential, SignedHeaders or Signature")
	}
	s, err := credentialScope(fields["Credential"])
	if err != nil {
		return sigV4{}, err
	}
	s.signedHeaders = strings.Split(fields["SignedHeaders"], ";")
	s.signature = fields["Signature"]
	if !slices.Contains(s.signedHeaders, "x-amz-date") {
		return sigV4{}, auth.Denied("AWS proof does not sign its X-Amz-Date header")
	}
	dates := h.Values("X-Amz-Date")
	if len(dates) != 1 {
		return sigV4{}, auth.Denied("AWS proof must have one X-Amz-Date header")
	}
	if s.date, err = amzDate(dates[0]); err != nil {
		return sigV4{}, err
	}
	return s, nil
}

// presignedSigV4 reads the X-Amz-* parameters of a presigned URL.
func presignedSigV4(q url.Values) (sigV4, error) {
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if len(q[k]) != 1 || q.Get(k) == "" {
			return sigV4{}, auth.Denied("malformed presigned AWS proof: it needs exactly one %s parameter", k)
		}
	}
	if alg := q.Get("X-Amz-Algorithm"); alg != sigV4Algorithm {
		return sigV4{}, auth.Denied("AWS proof is signed with %q: only %s (SigV4) is accepted", safe.Printable(alg), sigV4Algorithm)
	}
	s, err := credentialScope(q.Get("X-Amz-Credential"))
	if err != nil {
		return sigV4{}, err
	}
	s.signedHeaders = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	s.signature = q.Get("X-Amz-Signature")
	if s.date, err = amzDate(q.Get("X-Amz-Date")); err != nil {
		return sigV4{}, err
	}
	if e := q.Get("X-Amz-Expires"); e != "" {
		secs, err := strconv.Atoi(e)
		if err != nil || secs <= 0 {
			return sigV4{}, auth.Denied("malformed presigned AWS proof: X-Amz-Expires is not a positive number of seconds")
		}
		s.expires = time.Duration(secs) * time.Second
	}
	return s, nil
}

// credentialScope reads AKID/yyyymmdd/region/sts/aws4_request.
func credentialScope(cred string) (sigV4, error) {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[0] == "" || parts[4] != "aws4_request" {
		return sigV4{}, auth.Denied("malformed AWS proof: the signature's credential scope is not AKID/date/region/service/aws4_request")
	}
	if parts[3] != "sts" {
		return sigV4{}, auth.Denied("AWS proof is signed for service %q, not sts", safe.Printable(parts[3]))
	}
	return sigV4{accessKeyID: parts[0], region: parts[2]}, nil
}

func amzDate(s string) (time.Time, error) {
	t, err := time.Parse(amzDateFormat, s)
	if err != nil {
		return time.Time{}, auth.Denied("malformed AWS proof: X-Amz-Date %q is not of the form 20060102T150405Z", safe.Printable(s))
	}
	return t, nil
}

// stsResult is what STS said about the caller.
type stsResult struct {
	Arn     string `xml:"GetCallerIdentityResult>Arn"`
	UserID  string `xml:"GetCallerIdentityResult>UserId"`
	Account string `xml:"GetCallerIdentityResult>Account"`
}

// stsError is STS's error document.
type stsError struct {
	Code      string `xml:"Error>Code"`
	Message   string `xml:"Error>Message"`
	RequestID string `xml:"RequestId"`
}

// send sends the checked request to STS, with only the headers its
// signature covers (and the signature), and reads the answer.
func (v *AWSVerifier) send(ctx context.Context, endpoint *url.URL, c *checkedAWS) (stsResult, error) {
	target := url.URL{Scheme: endpoint.Scheme, Host: endpoint.Host, Path: "/", RawQuery: c.u.RawQuery}
	req, err := http.NewRequestWithContext(ctx, c.req.Method, target.String(), bytes.NewReader(c.req.Body))
	if err != nil {
		return stsResult{}, fmt.Errorf("aws verifier: build STS request: %w", err)
	}
	if len(c.req.Body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.Host = c.u.Host // the host the signature covers; it names the same endpoint
	for _, h := range c.signedHeaders {
		if h == "host" || h == "content-length" {
			continue
		}
		ck := textproto.CanonicalMIMEHeaderKey(h)
		req.Header[ck] = c.req.Headers.Values(ck)
	}
	if !c.presigned {
		req.Header["Authorization"] = c.req.Headers.Values("Authorization")
	}
	client := http.Client{Timeout: stsTimeout}
	if v.Client != nil {
		client = *v.Client
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// A failure is worded by safe.Upstream: the error of a failed request
	// quotes its URL, which for a presigned proof holds the signature and
	// the session token.
	resp, err := client.Do(req)
	if err != nil {
		return stsResult{}, safe.Upstream("aws verifier: send the proof to STS", endpoint.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSTSBodyBytes))
	if err != nil {
		return stsResult{}, safe.Upstream("aws verifier: read the answer of STS", endpoint.Host, err)
	}
	if resp.StatusCode == http.StatusOK {
		var res stsResult
		if err := xml.Unmarshal(body, &res); err != nil || res.Arn == "" || res.Account == "" {
			return stsResult{}, fmt.Errorf("aws verifier: STS %s answered 200 without a GetCallerIdentityResponse", endpoint.Host)
		}
		return res, nil
	}
	var se stsError
	if err := xml.Unmarshal(body, &se); err != nil || se.Code == "" {
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return stsResult{}, fmt.Errorf("aws verifier: STS at %s answered HTTP %d: it is failing or throttling; retry later", endpoint.Host, resp.StatusCode)
		}
		return stsResult{}, auth.Denied("AWS STS refused the proof with HTTP %d", resp.StatusCode)
	}
	return stsResult{}, stsDenial(endpoint.Host, resp.StatusCode, se)
}

// stsDenial words STS's refusal. STS's own message is not repeated: it is
// not ours to vouch for.
func stsDenial(host string, status int, se stsError) error {
	code, reqID := stsWord(se.Code), stsWord(se.RequestID)
	switch se.Code {
	case "SignatureDoesNotMatch":
		if strings.HasPrefix(se.Message, "Signature expired") {
			return auth.Denied("AWS STS says the proof's signature expired (SignatureDoesNotMatch): make a fresh proof, and check the signing host's clock")
		}
		return auth.Denied("AWS STS refused the proof's signature (SignatureDoesNotMatch): the request was altered after signing or signed with a wrong secret key")
	case "InvalidClientTokenId":
		return auth.Denied("AWS STS does not know the access key that signed the proof (InvalidClientTokenId): the credentials are wrong, deleted or for another partition")
	case "ExpiredToken", "ExpiredTokenException":
		return auth.Denied("the AWS session credentials that signed the proof have expired (%s): refresh them", code)
	case "RequestExpired":
		return auth.Denied("AWS STS says the proof has expired (RequestExpired): make a fresh one")
	case "AccessDenied", "AccessDeniedException":
		return auth.Denied("AWS STS denied the proof (%s)", code)
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable", "InternalFailure":
		return fmt.Errorf("aws verifier: STS at %s answered HTTP %d %s (request id %s): it is failing or throttling; retry later", host, status, code, reqID)
	default:
		if status >= 500 {
			return fmt.Errorf("aws verifier: STS at %s answered HTTP %d %s (request id %s): it is failing or throttling; retry later", host, status, code, reqID)
		}
		return auth.Denied("AWS STS refused the proof (%s)", code)
	}
}

// stsWord passes an error code or request id of STS's answer on only when
// it looks like one (letters, digits, "-", ".", at most 64): an endpoint
// that echoes the request must not carry it into the log.
func stsWord(s string) string {
	if s == "" || len(s) > 64 || strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.')
	}) >= 0 {
		return "(unreadable)"
	}
	return s
}

// awsIdentity builds the identity from STS's answer.
func awsIdentity(res stsResult, c *checkedAWS) (Identity, error) {
	id := Identity{
		Platform:   PlatformAWS,
		Principal:  res.Arn,
		Attributes: map[string]string{},
		ExpiresAt:  c.expiresAt,
	}
	setAttr(id.Attributes, "arn", res.Arn)
	setAttr(id.Attributes, "account", res.Account)
	setAttr(id.Attributes, "user_id", res.UserID)
	setAttr(id.Attributes, "access_key_id", c.accessKeyID)
	setAttr(id.Attributes, "region", c.region)
	if role, session, ok := assumedRole(res.Arn); ok {
		id.Principal = role
		setAttr(id.Attributes, "role_arn", role)
		setAttr(id.Attributes, "session_name", session)
	}
	parts, ok := ParseAWSARN(res.Arn)
	if !ok || parts.Account != res.Account {
		return Identity{}, fmt.Errorf("aws verifier: STS answered with an ARN that is not a caller ARN of account %s", safe.Printable(res.Account))
	}
	parts.Region = c.region
	id.AWS = &parts
	return id, nil
}

func assumedRole(arn string) (role, session string, ok bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sts" {
		return "", "", false
	}
	rest, isRole := strings.CutPrefix(parts[5], "assumed-role/")
	if !isRole {
		return "", "", false
	}
	name, session, ok := strings.Cut(rest, "/")
	if !ok || name == "" {
		return "", "", false
	}
	return "arn:" + parts[1] + ":iam::" + parts[4] + ":role/" + name, session, true
}

// AWSProof makes a TokenTypeAWS subject token: an sts:GetCallerIdentity
// request carrying the X-Portcullis-Audience header, signed (SigV4, in the
// Authorization header) with the credentials of cfg but not sent. Load cfg
// with config.LoadDefaultConfig: its credential chain (environment, shared
// config and credentials files, web identity, ECS/EKS container
// credentials, EC2 IMDS) finds the workload's identity.
//
// The request is built by the STS client of the SDK, so the SDK's endpoint
// settings apply: cfg.BaseEndpoint, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL
// or the services section of the shared config. Without any, the proof is
// for the global endpoint https://sts.amazonaws.com signed for us-east-1,
// which is the AWSVerifier's default. With an endpoint set, the proof is
// signed for cfg.Region, or for the region in an sts.REGION.amazonaws.com
// host when cfg.Region is empty.
func AWSProof(ctx context.Context, cfg aws.Config, audience string) (string, error) {
	if audience == "" {
		return "", errors.New("aws proof: the audience is empty: pass the audience the portal expects")
	}
	if err := checkAWSCredentials(ctx, cfg); err != nil {
		return "", err
	}
	capture := &captureClient{}
	client := sts.NewFromConfig(cfg, func(o *sts.Options) {
		pickSTSEndpoint(o)
		o.HTTPClient = capture
		o.Retryer = aws.NopRetryer{}
		o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue(AudienceHeader, audience))
	})
	_, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if capture.req == nil {
		return "", fmt.Errorf("aws proof: sign sts:GetCallerIdentity: %w", err)
	}
	u := *capture.req.URL
	if capture.req.Host != "" {
		u.Host = capture.req.Host
	}
	return AWSRequest{
		Method:  capture.req.Method,
		URL:     u.String(),
		Headers: capture.req.Header.Clone(),
		Body:    capture.body,
	}.Encode(), nil
}

// checkAWSCredentials fails early, and clearly, when cfg has no usable
// credentials.
func checkAWSCredentials(ctx context.Context, cfg aws.Config) error {
	if cfg.Credentials == nil {
		return errors.New("no AWS credentials: tried env, shared config, IMDS (the config has no credential provider)")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no AWS credentials: %w", ctx.Err())
		}
		return fmt.Errorf("no AWS credentials: tried env, shared config, IMDS (%w)", err)
	}
	return nil
}

// pickSTSEndpoint applies the default global endpoint, and a region, to an
// STS client's options.
func pickSTSEndpoint(o *sts.Options) {
	if o.BaseEndpoint == nil {
		o.BaseEndpoint = aws.String(DefaultSTSEndpoint)
		o.Region = "us-east-1"
		return
	}
	if o.Region != "" {
		return
	}
	o.Region = "us-east-1"
	if u, err := url.Parse(*o.BaseEndpoint); err == nil {
		labels := strings.Split(u.Hostname(), ".")
		if len(labels) >= 4 && labels[0] == "sts" && labels[2] == "amazonaws" {
			o.Region = labels[1]
		}
	}
}

// errCaptured stops the SDK from sending a request it has signed.
var errCaptured = errors.New("request captured, not sent")

// captureClient is the STS client's HTTP client for AWSProof: it keeps
// the signed request instead of sending it.
type captureClient struct {
	req  *http.Request
	body []byte
}

func (c *captureClient) Do(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
	}
	c.req, c.body = r, body
	return nil, errCaptured
}
