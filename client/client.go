package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/portcullisdb/portcullis/auth/cloud"
)

// Discovery is what a portal says about itself at
// /.well-known/openid-configuration.
type Discovery struct {
	Issuer        string            `json:"issuer"`
	TokenEndpoint string            `json:"token_endpoint"`
	Audience      string            `json:"portcullis_audience"`
	MySQLAddress  string            `json:"portcullis_mysql_address"`
	Exchange      map[string]string `json:"portcullis_exchange_audiences"` // platform -> audience
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// Discover reads a portal's discovery document.
func Discover(ctx context.Context, server string) (Discovery, error) {
	var d Discovery
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(server, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return d, fmt.Errorf("server %q: %w", server, err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return d, fmt.Errorf("reach portcullis at %s: %w", server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("portcullis at %s answered %s to discovery: is --server the portal's URL?", server, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return d, fmt.Errorf("portcullis at %s sent a bad discovery document: %w", server, err)
	}
	return d, nil
}

// Options say how to get a token.
type Options struct {
	Server string
	Cloud  string // aws | azure | gcp | auto | "" (use the cache only)
	Cache  *Cache
}

// Token returns a fresh token for the server: the cached one while more
// than a third of its life is left, else a new one by cloud exchange.
func Token(ctx context.Context, o Options) (Entry, error) {
	if e, ok := o.Cache.Get(o.Server, o.Cloud); ok && e.Fresh(time.Now()) {
		return e, nil
	}
	if o.Cloud == "" {
		if e, ok, err := Refresh(ctx, o); ok {
			return e, err
		}
		return Entry{}, fmt.Errorf("no valid token for %s: run `portcullis login` (people) or `portcullis token --cloud auto` (workloads)", o.Server)
	}
	platform := o.Cloud
	if platform == "auto" {
		if platform = cloud.Detect(ctx); platform == "" {
			return Entry{}, errors.New("no cloud identity found: not on AWS, Azure or GCP as far as the environment shows; name one with --cloud")
		}
	}
	d, err := Discover(ctx, o.Server)
	if err != nil {
		return Entry{}, err
	}
	aud := d.Exchange[platform]
	if aud == "" {
		return Entry{}, fmt.Errorf("portcullis at %s does not accept %s identities (no exchange.%s in its config)", o.Server, platform, platform)
	}
	tokenType, proof, err := cloudProof(ctx, platform, aud)
	if err != nil {
		return Entry{}, err
	}
	e, err := exchange(ctx, d, tokenType, proof)
	if err != nil {
		return Entry{}, err
	}
	e.Server, e.Method = o.Server, platform
	if err := o.Cache.Put(e); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// cloudProof obtains the platform's proof with its own SDK.
func cloudProof(ctx context.Context, platform, audience string) (tokenType, proof string, err error) {
	switch platform {
	case cloud.PlatformAWS:
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return "", "", fmt.Errorf("load AWS configuration: %w", err)
		}
		p, err := cloud.AWSProof(ctx, cfg, audience)
		return cloud.TokenTypeAWS, p, err
	case cloud.PlatformAzure:
		scope := audience
		if !strings.HasSuffix(scope, "/.default") {
			scope = strings.TrimSuffix(scope, "/") + "/.default"
		}
		p, err := cloud.AzureToken(ctx, scope)
		return cloud.TokenTypeAzure, p, err
	case cloud.PlatformGCP:
		p, err := cloud.GCPToken(ctx, audience)
		return cloud.TokenTypeGCP, p, err
	}
	return "", "", fmt.Errorf("unknown cloud %q: use aws, azure, gcp or auto", platform)
}

// exchange posts an RFC 8693 token exchange.
func exchange(ctx context.Context, d Discovery, tokenType, subject string) (Entry, error) {
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token_type": {tokenType},
		"subject_token":      {subject},
	}
	req, err := http.NewRequestWithContext(ctx, "POST", d.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Entry{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sent := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return Entry{}, fmt.Errorf("reach the token endpoint %s: %w", d.TokenEndpoint, err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Username    string `json:"username"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return Entry{}, fmt.Errorf("token endpoint answered %s with no JSON", resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("portcullis refused the exchange (%s): %s", resp.Status, body.Description)
		if strings.Contains(body.Description, "future") || strings.Contains(body.Description, "not valid for another") {
			msg += " (check this machine's clock)"
		}
		return Entry{}, errors.New(msg)
	}
	return Entry{AccessToken: body.AccessToken, Username: body.Username, IssuedAt: sent, ExpiresAt: sent.Add(time.Duration(body.ExpiresIn) * time.Second)}, nil
}
