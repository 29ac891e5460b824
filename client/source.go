package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth/cloud"
)

// tokenTypeJWT is RFC 8693's subject token type for a JWT of an issuer
// listed in the portal's exchange.jwt_issuers.
const tokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"

// Source says where a long-running process (an app's connection pool,
// `portcullis agent`) gets each new token: the same places the CLI
// gets them from. Set exactly one of Cloud, JWTFile, Login and TokenFile.
type Source struct {
	// Server is the portal's URL (exchange and login sources).
	Server string
	// Cloud exchanges this platform identity: aws, azure, gcp or auto.
	Cloud string
	// JWTFile exchanges the JWT in this file, read again at every renewal
	// (a Kubernetes projected service-account token, a CI job's OIDC
	// token); its issuer must be listed in the portal's exchange.jwt_issuers.
	JWTFile string
	// Login renews the `portcullis login` cached in Cache with its
	// refresh token: a person's tools, not a service.
	Login bool
	// TokenFile reads the token from this file, as `portcullis agent`
	// writes it; renewing it is the agent's business.
	TokenFile string
	// Cache holds the login (Login only); nil: DefaultCache.
	Cache *Cache
}

// Validate says what is wrong with s, in the terms of the agent's flags.
func (s Source) Validate() error {
	n := 0
	for _, set := range []bool{s.Cloud != "", s.JWTFile != "", s.Login, s.TokenFile != ""} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return errors.New("name exactly one token source: --cloud aws|azure|gcp|auto, --jwt-file PATH, --login or --token-file PATH")
	case s.TokenFile == "" && s.Server == "":
		return errors.New("no portal to get tokens from: set --server or PORTCULLIS_SERVER")
	case s.Cloud != "" && s.Cloud != "auto" && s.Cloud != cloud.PlatformAWS && s.Cloud != cloud.PlatformAzure && s.Cloud != cloud.PlatformGCP:
		return fmt.Errorf("unknown cloud %q: use aws, azure, gcp or auto", s.Cloud)
	}
	return nil
}

// String names the source for logs, never with a secret.
func (s Source) String() string {
	switch {
	case s.Cloud != "":
		return s.Cloud + " exchange at " + s.Server
	case s.JWTFile != "":
		return "exchange of the JWT in " + s.JWTFile + " at " + s.Server
	case s.Login:
		return "login to " + s.Server
	case s.TokenFile != "":
		return "token file " + s.TokenFile
	}
	return "no source"
}

// Token obtains a new token from the source. It caches nothing (but a
// login's rotated refresh token): share one Keeper to reuse the token.
func (s Source) Token(ctx context.Context) (Entry, error) {
	if err := s.Validate(); err != nil {
		return Entry{}, err
	}
	switch {
	case s.TokenFile != "":
		return readTokenFile(s.TokenFile)
	case s.Login:
		return s.login(ctx)
	}
	d, err := Discover(ctx, s.Server)
	if err != nil {
		return Entry{}, err
	}
	var tokenType, proof, method string
	if s.JWTFile != "" {
		raw, err := os.ReadFile(s.JWTFile)
		if err != nil {
			return Entry{}, fmt.Errorf("read the JWT to exchange: %w", err)
		}
		tokenType, proof, method = tokenTypeJWT, strings.TrimSpace(string(raw)), "jwt"
		if proof == "" {
			return Entry{}, fmt.Errorf("the JWT file %s is empty", s.JWTFile)
		}
	} else {
		platform := s.Cloud
		if platform == "auto" {
			if platform = cloud.Detect(ctx); platform == "" {
				return Entry{}, errors.New("no cloud identity found: not on AWS, Azure or GCP as far as the environment shows; name one with --cloud")
			}
		}
		aud := d.Exchange[platform]
		if aud == "" {
			return Entry{}, fmt.Errorf("portcullis at %s does not accept %s identities (no exchange.%s in its config)", s.Server, platform, platform)
		}
		if tokenType, proof, err = cloudProof(ctx, platform, aud); err != nil {
			return Entry{}, err
		}
		method = platform
	}
	e, err := exchange(ctx, d, tokenType, proof)
	if err != nil {
		return Entry{}, err
	}
	e.Server, e.Method = s.Server, method
	return e, nil
}

// login returns the cached login while fresh, else renews it.
func (s Source) login(ctx context.Context) (Entry, error) {
	cache := s.Cache
	if cache == nil {
		var err error
		if cache, err = DefaultCache(); err != nil {
			return Entry{}, err
		}
	}
	if e, ok := cache.Get(s.Server, MethodLogin); ok && e.Fresh(time.Now()) {
		return e, nil
	}
	e, ok, err := Refresh(ctx, Options{Server: s.Server, Cache: cache})
	if !ok {
		return Entry{}, fmt.Errorf("not logged in to %s: run portcullis login", s.Server)
	}
	return e, err
}

// readTokenFile reads a token written by `portcullis agent` (or anything
// else) and its lifetime from its claims. The signature is not checked
// here: the proxy checks it; the claims only schedule the next read.
func readTokenFile(path string) (Entry, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Entry{}, fmt.Errorf("read the token file: %w (is portcullis agent running?)", err)
	}
	tok := strings.TrimSpace(string(raw))
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		return Entry{}, fmt.Errorf("the token file %s does not hold a JWT", path)
	}
	e := Entry{AccessToken: tok, Method: "file"}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return Entry{}, fmt.Errorf("the token in %s has no expiry (exp)", path)
	}
	e.ExpiresAt = exp.Time
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		e.IssuedAt = iat.Time
	} else {
		e.IssuedAt = time.Now()
	}
	e.Username, _ = claims["username"].(string)
	if e.Username == "" {
		e.Username, _ = claims["email"].(string)
	}
	if !time.Now().Before(e.ExpiresAt) {
		return Entry{}, fmt.Errorf("the token in %s expired at %s (is portcullis agent running and renewing it?)", path, e.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return e, nil
}
