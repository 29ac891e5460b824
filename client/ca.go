package client

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ProxyCA returns the CA certificate (PEM) the portal at server hands out
// to verify the proxy with (/v1/ca.pem), or nil when it has none: the
// proxy's certificate is then configured, for the system's CAs to verify.
// Trusting the portal's CA is trusting the portal, which the token already
// comes from.
func ProxyCA(ctx context.Context, server string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(server, "/")+"/v1/ca.pem", nil)
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", server, err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach portcullis at %s: %w", server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("portcullis at %s answered %s to /v1/ca.pem: %v", server, resp.Status, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(body) {
		return nil, fmt.Errorf("portcullis at %s sent no PEM certificate at /v1/ca.pem", server)
	}
	return body, nil
}
