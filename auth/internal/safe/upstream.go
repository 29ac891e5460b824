package safe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"
)

// UpstreamError is a failure to talk to a service we call (STS, a key
// set), worded for the log and the audit: the host and a cause a person
// can act on, never the request URL (a presigned proof carries its
// signature and session token in the query) nor the raw error text. The
// underlying error stays reachable with errors.Is and errors.As.
type UpstreamError struct {
	What  string // "aws verifier: send the proof to STS"
	Host  string
	Cause string // from NetCause
	err   error
}

// Upstream wraps err, a failed call to host, as an *UpstreamError.
func Upstream(what, host string, err error) error {
	return &UpstreamError{What: what, Host: host, Cause: NetCause(err), err: err}
}

func (e *UpstreamError) Error() string { return e.What + " at " + e.Host + ": " + e.Cause }

func (e *UpstreamError) Unwrap() error { return e.err }

// NetCause words why a network call failed, without quoting the error
// (whose text may hold the URL).
func NetCause(err error) string {
	var (
		netErr  net.Error
		dnsErr  *net.DNSError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		record  tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return "the request was cancelled (the client went away)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "no answer in time (timed out): check that it is up and reachable from this host"
	case errors.As(err, &dnsErr):
		return "its name does not resolve: check the host name and this host's DNS"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens there; check the endpoint and that the service is up"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the connection was reset before an answer came: a proxy or firewall on the path may be cutting it"
	case errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid):
		return "its TLS certificate is not trusted for that name: check the endpoint and this host's CA certificates"
	case errors.As(err, &record):
		return "it does not speak TLS: check the URL's scheme"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to it from this host: check the network and any proxy settings"
	default:
		return "the connection failed"
	}
}
