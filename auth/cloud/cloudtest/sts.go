package cloudtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// STS's limits on a signature's age, as the real service applies them.
const (
	stsMaxSkew    = 15 * time.Minute
	amzDateFormat = "20060102T150405Z"
	stsXMLNS      = "https://sts.amazonaws.com/doc/2011-06-15/"
)

// FakeSTS is a loopback AWS STS that answers GetCallerIdentity, and only
// after it has checked the request's SigV4
// signature the way STS does: it signs the received request again with the
// SDK's own v4 signer and the secret it knows for the access key, and
// compares. It answers with STS's own error documents:
// InvalidClientTokenId (unknown access key), SignatureDoesNotMatch (bad
// signature; "Signature expired" when X-Amz-Date is more than 15 minutes
// off), RequestExpired (a presigned URL past X-Amz-Expires), InvalidAction.
//
// Point the SDK at it with AWS_ENDPOINT_URL_STS=URL (or cfg.BaseEndpoint).
type FakeSTS struct {
	// URL is the endpoint, http://127.0.0.1:PORT, with no trailing slash.
	URL string

	creds      map[string]string // access key id -> secret
	identities map[string]string // access key id -> ARN
	calls      atomic.Int64
}

// NewFakeSTS starts a fake STS that knows the secret of each access key id
// in creds and answers GetCallerIdentity for it with the ARN in identities
// (an IAM user, or an arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION).
func NewFakeSTS(tb testing.TB, creds map[string]string, identities map[string]string) *FakeSTS {
	tb.Helper()
	f := &FakeSTS{
		creds:      creds,
		identities: identities,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", f.serveAPI)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Calls is how many API requests (signed or not) the fake has received.
func (f *FakeSTS) Calls() int { return int(f.calls.Load()) }

// stsFault is an STS error answer.
type stsFault struct {
	status  int
	code    string
	message string
}

func (f *FakeSTS) serveAPI(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeSTSError(w, stsFault{http.StatusBadRequest, "MalformedInput", "cannot read the request body"})
		return
	}
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			writeSTSError(w, stsFault{http.StatusBadRequest, "MalformedInput", "the body is not form-encoded"})
			return
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	akid, fault := f.checkSignature(r, body)
	if fault != nil {
		writeSTSError(w, *fault)
		return
	}
	arn, ok := f.identities[akid]
	if !ok {
		writeSTSError(w, stsFault{http.StatusForbidden, "AccessDenied", "no identity is configured for this access key in the fake"})
		return
	}
	switch params.Get("Action") {
	case "GetCallerIdentity":
		writeSTSXML(w, "GetCallerIdentity", fmt.Sprintf("<Arn>%s</Arn><UserId>%s</UserId><Account>%s</Account>",
			xmlText(arn), xmlText(userID(akid, arn)), xmlText(accountOf(arn))))
	default:
		writeSTSError(w, stsFault{http.StatusBadRequest, "InvalidAction", "Could not find operation " + params.Get("Action") + " for version 2011-06-15"})
	}
}

// checkSignature checks r's SigV4 signature, header-signed or presigned,
// by signing it again with the SDK's signer. It returns the access key id.
func (f *FakeSTS) checkSignature(r *http.Request, body []byte) (string, *stsFault) {
	q := r.URL.Query()
	presigned := q.Has("X-Amz-Signature")
	var cred, signedHeaders, signature, date string
	if presigned {
		cred, signedHeaders, signature, date = q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature"), q.Get("X-Amz-Date")
	} else {
		authz := r.Header.Get("Authorization")
		rest, ok := strings.CutPrefix(authz, "AWS4-HMAC-SHA256 ")
		if !ok {
			return "", &stsFault{http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token"}
		}
		for part := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch k {
			case "Credential":
				cred = v
			case "SignedHeaders":
				signedHeaders = v
			case "Signature":
				signature = v
			}
		}
		date = r.Header.Get("X-Amz-Date")
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || signedHeaders == "" || signature == "" {
		return "", &stsFault{http.StatusBadRequest, "IncompleteSignature", "The request signature does not conform to AWS standards."}
	}
	akid, region, service := scope[0], scope[2], scope[3]
	secret, ok := f.creds[akid]
	if !ok {
		return "", &stsFault{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	signedAt, err := time.Parse(amzDateFormat, date)
	if err != nil {
		return "", &stsFault{http.StatusBadRequest, "IncompleteSignature", "X-Amz-Date is missing or malformed."}
	}
	now := time.Now().UTC()
	switch {
	case presigned:
		expires, _ := strconv.Atoi(q.Get("X-Amz-Expires"))
		if expires <= 0 {
			expires = int(stsMaxSkew / time.Second)
		}
		if now.After(signedAt.Add(time.Duration(expires) * time.Second)) {
			return "", &stsFault{http.StatusForbidden, "RequestExpired", "Request has expired."}
		}
	case now.Sub(signedAt) > stsMaxSkew:
		return "", &stsFault{http.StatusForbidden, "SignatureDoesNotMatch", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			date, now.Add(-stsMaxSkew).Format(amzDateFormat), now.Format(amzDateFormat))}
	}
	if signedAt.Sub(now) > stsMaxSkew {
		return "", &stsFault{http.StatusForbidden, "SignatureDoesNotMatch", fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 15 min.)",
			date, now.Add(stsMaxSkew).Format(amzDateFormat), now.Format(amzDateFormat))}
	}

	// The request as it was signed: same method, host, path, query (less
	// the signature for a presigned URL), body, and only the signed headers.
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
	if presigned {
		creds.SessionToken = q.Get("X-Amz-Security-Token")
		for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"} {
			q.Del(k)
		}
		u.RawQuery = q.Encode()
	} else {
		creds.SessionToken = r.Header.Get("X-Amz-Security-Token")
		u.RawQuery = r.URL.RawQuery
	}
	again, err := http.NewRequestWithContext(context.Background(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return "", &stsFault{http.StatusBadRequest, "MalformedInput", "cannot rebuild the request"}
	}
	again.ContentLength = int64(len(body))
	for _, h := range strings.Split(signedHeaders, ";") {
		if h == "host" || h == "content-length" {
			continue
		}
		ck := textproto.CanonicalMIMEHeaderKey(h)
		again.Header[ck] = r.Header.Values(ck)
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	signer := v4.NewSigner()
	var want string
	if presigned {
		signedURL, _, err := signer.PresignHTTP(context.Background(), creds, again, payloadHash, service, region, signedAt)
		if err != nil {
			return "", &stsFault{http.StatusBadRequest, "MalformedInput", "cannot sign the request again"}
		}
		if su, err := url.Parse(signedURL); err == nil {
			want = su.Query().Get("X-Amz-Signature")
		}
	} else {
		if err := signer.SignHTTP(context.Background(), creds, again, payloadHash, service, region, signedAt); err != nil {
			return "", &stsFault{http.StatusBadRequest, "MalformedInput", "cannot sign the request again"}
		}
		_, sig, _ := strings.Cut(again.Header.Get("Authorization"), "Signature=")
		want = sig
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(signature)) != 1 {
		return "", &stsFault{http.StatusForbidden, "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	}
	return akid, nil
}

func writeSTSXML(w http.ResponseWriter, action, result string) {
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%sResponse xmlns="%s">
  <%sResult>%s</%sResult>
  <ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>
</%sResponse>
`, action, stsXMLNS, action, result, action, requestID(), action)
}

func writeSTSError(w http.ResponseWriter, f stsFault) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(f.status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="%s">
  <Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>
  <RequestId>%s</RequestId>
</ErrorResponse>
`, stsXMLNS, xmlText(f.code), xmlText(f.message), requestID())
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func requestID() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func accountOf(arn string) string {
	if parts := strings.SplitN(arn, ":", 6); len(parts) == 6 {
		return parts[4]
	}
	return ""
}

// userID is what STS calls the unique id: AIDA... for a user, AROA...:session
// for an assumed role.
func userID(akid, arn string) string {
	sum := sha256.Sum256([]byte(akid + arn))
	id := strings.ToUpper(hex.EncodeToString(sum[:]))[:17]
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && strings.HasPrefix(parts[5], "assumed-role/") {
		session := parts[5][strings.LastIndex(parts[5], "/")+1:]
		return "AROA" + id + ":" + session
	}
	return "AIDA" + id
}
