package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/portcullisdb/portcullis/config"
)

// Config describes one OIDC connection.
type Config struct {
	Name         string // the connection's name, for messages
	Issuer       string
	ClientID     string
	ClientSecret string // "" for a public client
	RedirectURL  string // the portal's callback for this connection
	Scopes       []string
	// AuthParams are extra authorization request parameters for IdPs
	// with their own rules (Google's access_type=offline, Entra's
	// domain_hint). A "prompt" here replaces the default; an empty value
	// leaves the parameter out. The parameters the RP owns (config.ReservedAuthParams)
	// are refused by New (config.ReservedAuthParams).
	AuthParams map[string]string
	// UsernameClaim holds the user name (e.g. email). When it is
	// "email", email_verified must be true unless AllowUnverifiedEmail.
	UsernameClaim        string
	AllowUnverifiedEmail bool
	HTTPClient           *http.Client // nil: a client with a 15s timeout
}

// RP is the relying party of one connection. Discovery happens at New
// and, if the IdP was unreachable then, again at each use until it works.
type RP struct {
	cfg   Config
	mu    sync.Mutex
	ready *provider // nil until discovery has worked
}

// provider is what discovery yields.
type provider struct {
	p        *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
	oauth    oauth2.Config
}

// Identity is who the IdP says logged in.
type Identity struct {
	Subject     string
	Username    string
	Email       string
	DisplayName string
	GivenName   string
	FamilyName  string
	// Attributes holds every string and string-list claim, for the
	// role claim.
	Attributes map[string][]string
}

// Login is the outcome of a code exchange.
type Login struct {
	Identity Identity
	// RefreshToken is the IdP's, "" when it gave none (no
	// offline_access): the caller must never log it.
	RefreshToken string
}

// Error is a refused login or refresh, with a reason a person can act on
// and that never holds a token.
type Error struct {
	Reason string
	// Transient marks an IdP that could not be reached or failed: the
	// refresh may work later, and the session should not be revoked.
	Transient bool
}

func (e *Error) Error() string { return e.Reason }

func refused(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// discoveryTimeout bounds the discovery request.
const discoveryTimeout = 10 * time.Second

// New builds the RP and tries discovery. An unreachable IdP is not an
// error (the RP retries at first use); a discovery document that names
// another issuer is.
func New(ctx context.Context, cfg Config) (*RP, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("oidc: issuer, client id and redirect URL are required")
	}
	for k := range cfg.AuthParams {
		if slices.Contains(config.ReservedAuthParams, k) {
			return nil, fmt.Errorf("oidc: auth_params may not set %s: portcullis sets it for every login", k)
		}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	rp := &RP{cfg: cfg}
	_, err := rp.provider(ctx)
	var mismatch *gooidc.IssuerMismatchError
	if errors.As(err, &mismatch) {
		return nil, fmt.Errorf("sso connection %s: the IdP's discovery document names issuer %q, not %q: set oidc.issuer to the exact value", cfg.Name, mismatch.Discovered, mismatch.Provided)
	}
	return rp, nil // unreachable: Ready reports it, and each use retries
}

// Ready reports whether discovery has worked.
func (rp *RP) Ready() bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.ready != nil
}

// provider returns the discovered provider, discovering it if needed.
func (rp *RP) provider(ctx context.Context) (*provider, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.ready != nil {
		return rp.ready, nil
	}
	dctx, cancel := context.WithTimeout(gooidc.ClientContext(ctx, rp.cfg.HTTPClient), discoveryTimeout)
	defer cancel()
	p, err := gooidc.NewProvider(dctx, rp.cfg.Issuer)
	if err != nil {
		var mismatch *gooidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, err
		}
		return nil, &Error{Transient: true, Reason: fmt.Sprintf("the IdP of connection %s (%s) cannot be reached for discovery: try again shortly", rp.cfg.Name, rp.cfg.Issuer)}
	}
	rp.ready = &provider{
		p: p,
		// Never SkipClientIDCheck: an ID token minted for another client
		// of the same IdP must not log anyone in here.
		verifier: p.Verifier(&gooidc.Config{ClientID: rp.cfg.ClientID}),
		oauth: oauth2.Config{
			ClientID: rp.cfg.ClientID, ClientSecret: rp.cfg.ClientSecret,
			Endpoint: p.Endpoint(), RedirectURL: rp.cfg.RedirectURL, Scopes: rp.cfg.Scopes,
		},
	}
	return rp.ready, nil
}

// AuthURL is where the browser goes to log in: the authorization request
// with state, nonce and the S256 challenge of verifier.
func (rp *RP) AuthURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	pr, err := rp.provider(ctx)
	if err != nil {
		return "", err
	}
	return pr.oauth.AuthCodeURL(state, rp.authParams(nonce, verifier)...), nil
}

// authParams are the options of one authorization request. OIDC Core §11:
// an OP must ignore offline_access unless prompt contains consent, and
// certified OPs do, so asking for offline_access asks for consent too,
// unless auth_params says otherwise.
func (rp *RP) authParams(nonce, verifier string) []oauth2.AuthCodeOption {
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if _, set := rp.cfg.AuthParams["prompt"]; !set && slices.Contains(rp.cfg.Scopes, gooidc.ScopeOfflineAccess) {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	keys := slices.Sorted(maps.Keys(rp.cfg.AuthParams))
	for _, k := range keys {
		if v := rp.cfg.AuthParams[k]; v != "" {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	return opts
}

// Exchange redeems the authorization code with the PKCE verifier,
// verifies the ID token and its nonce, and returns who logged in.
func (rp *RP) Exchange(ctx context.Context, code, verifier, nonce string) (Login, error) {
	pr, err := rp.provider(ctx)
	if err != nil {
		return Login{}, err
	}
	ctx = gooidc.ClientContext(ctx, rp.cfg.HTTPClient)
	tok, err := pr.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Login{}, rp.tokenEndpointError("redeem the authorization code", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Login{}, refused("the IdP of connection %s returned no ID token: is openid among oidc.scopes?", rp.cfg.Name)
	}
	idt, err := rp.verify(ctx, pr, raw)
	if err != nil {
		return Login{}, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Login{}, refused("the ID token's nonce does not match this login (a replayed or injected response): start the login again")
	}
	if idt.AccessTokenHash != "" && idt.VerifyAccessToken(tok.AccessToken) != nil {
		return Login{}, refused("the ID token's at_hash does not match the access token it came with (a substituted token): start the login again")
	}
	id, err := rp.identity(ctx, pr, idt, tok)
	if err != nil {
		return Login{}, err
	}
	return Login{Identity: id, RefreshToken: tok.RefreshToken}, nil
}

// Refresh renews the session at the IdP with its refresh token and
// returns the refresh token to keep (the IdP may rotate it). A user
// disabled or signed out at the IdP fails here. subject is the user the
// session belongs to: a refreshed ID token for anyone else is refused.
func (rp *RP) Refresh(ctx context.Context, refreshToken, subject string) (string, error) {
	pr, err := rp.provider(ctx)
	if err != nil {
		return "", err
	}
	ctx = gooidc.ClientContext(ctx, rp.cfg.HTTPClient)
	tok, err := pr.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return "", rp.tokenEndpointError("renew the session", err)
	}
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		idt, err := rp.verify(ctx, pr, raw)
		if err != nil {
			return "", err
		}
		if idt.Subject != subject {
			return "", refused("the IdP renewed the session for another subject: sign in again")
		}
	}
	if tok.RefreshToken != "" {
		return tok.RefreshToken, nil
	}
	return refreshToken, nil
}

// tokenEndpointError words a failed token request. An answer with an
// error code is a refusal; no answer, or a 5xx, is transient.
func (rp *RP) tokenEndpointError(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
		reason := fmt.Sprintf("the IdP of connection %s refused to %s", rp.cfg.Name, what)
		if re.ErrorCode != "" {
			reason += " (" + re.ErrorCode + ")"
		}
		return &Error{Reason: reason}
	}
	return &Error{Transient: true, Reason: fmt.Sprintf("the IdP of connection %s could not %s: it is unreachable or failing, try again shortly", rp.cfg.Name, what)}
}

// verify checks an ID token's signature, issuer, audience, authorized
// party and expiry.
func (rp *RP) verify(ctx context.Context, pr *provider, raw string) (*gooidc.IDToken, error) {
	idt, err := pr.verifier.Verify(ctx, raw)
	var expired *gooidc.TokenExpiredError
	switch {
	case errors.As(err, &expired):
		return nil, refused("the IdP's ID token expired %s ago: check the clocks of portcullis and the IdP, then log in again",
			time.Since(expired.Expiry).Round(time.Second))
	case err != nil:
		return nil, refused("the IdP's ID token is not valid for connection %s: %s", rp.cfg.Name, verifyReason(err.Error()))
	}
	if len(idt.Audience) > 1 {
		var azp struct {
			AZP string `json:"azp"`
		}
		if err := idt.Claims(&azp); err != nil || azp.AZP != rp.cfg.ClientID {
			return nil, refused("the ID token names several audiences and its authorized party (azp) is not client %q", rp.cfg.ClientID)
		}
	}
	return idt, nil
}

// verifyReason trims go-oidc's prefix; its messages hold no token.
func verifyReason(msg string) string {
	if len(msg) > 6 && msg[:6] == "oidc: " {
		return msg[6:]
	}
	return msg
}
