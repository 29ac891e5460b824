package cloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/internal/safe"
)

// How the platform key sets (Google, Entra ID, AWS STS) are kept fresh. The
// values bound what a stranger can make portcullis do by sending tokens with
// made-up key ids: at most one extra fetch per jwksUnknownKIDEvery, and no
// Verify waits longer than jwksUnknownKIDWait for it. They match the
// issuers of package auth.
const (
	jwksRefreshInterval = time.Hour
	jwksUnknownKIDEvery = 5 * time.Minute
	jwksUnknownKIDWait  = 5 * time.Second
	jwksHTTPTimeout     = 10 * time.Second
	jwksMaxBodyBytes    = 1 << 20
)

// Limits of the subject tokens themselves.
const (
	maxJWTBytes = 16 << 10         // platform JWTs are 1-3 KB; longer ones are refused unparsed
	clockLeeway = 30 * time.Second // allowed clock skew for exp, nbf and iat
)

// signingUses are the JWK "use" values a verification key may have.
var signingUses = []jwkset.USE{jwkset.UseSig, ""}

// remoteKeys is the key set behind one JWKS URL, fetched now and kept fresh
// in the background until the constructor's context ends.
type remoteKeys struct {
	name    string // for reasons and logs: "Google", "Entra ID tenant 1234..."
	kf      keyfunc.Keyfunc
	store   jwkset.Storage
	loaded  atomic.Bool            // a fetch has worked at least once
	problem atomic.Pointer[string] // why the latest fetch failed; nil when it worked
}

// trackingStorage records in keys whether fetches into it work.
type trackingStorage struct {
	jwkset.Storage
	keys *remoteKeys
}

func (s trackingStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := s.Storage.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	s.keys.loaded.Store(true)
	s.keys.problem.Store(nil)
	return nil
}

// newRemoteKeys fetches the key set at rawURL and keeps it fresh: every
// hour, and when a token names a key id not in the set (at most once per 5
// minutes; the first time at once, so a set whose first fetch failed is
// fetched again by the first token that needs it). A failed first fetch does
// not fail: it is logged, and tokens are refused with "signing keys
// unavailable" until a fetch works.
func newRemoteKeys(ctx context.Context, name, rawURL string) (*remoteKeys, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%s: jwks url %q is not an absolute http(s) URL", name, rawURL)
	}
	logURL := u.Redacted()
	if u.Scheme == "http" && !safe.IsLoopback(u.Hostname()) {
		slog.Warn("cloud jwks url uses plain http: anyone on the path can substitute signing keys",
			"platform", name, "jwks_url", logURL)
	}
	rk := &remoteKeys{name: name}
	client := &http.Client{
		Timeout:   jwksHTTPTimeout,
		Transport: safe.LimitBodies(http.DefaultTransport, jwksMaxBodyBytes),
	}
	remote, err := jwkset.NewStorageFromHTTP(rawURL, jwkset.HTTPClientStorageOptions{
		Client:                    client,
		Ctx:                       ctx,
		HTTPTimeout:               jwksHTTPTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshErrorHandler: func(ctx context.Context, err error) {
			p := fetchProblem(err)
			rk.problem.Store(&p)
			slog.Warn("fetch cloud signing keys failed", "platform", name, "jwks_url", logURL, "error", err)
		},
		RefreshInterval: jwksRefreshInterval,
		Storage:         trackingStorage{Storage: jwkset.NewMemoryStorage(), keys: rk},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: jwks url %s: %w", name, logURL, err)
	}
	rk.store, err = jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{rawURL: remote},
		RateLimitWaitMax:  jwksUnknownKIDWait,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(jwksUnknownKIDEvery), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: jwks url %s: %w", name, logURL, err)
	}
	rk.kf, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: rk.store, UseWhitelist: signingUses})
	if err != nil {
		return nil, fmt.Errorf("%s: jwks url %s: %w", name, logURL, err)
	}
	return rk, nil
}

// key returns the key that should have signed t.
func (rk *remoteKeys) key(ctx context.Context, t *jwt.Token) (any, error) {
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, auth.Denied(`malformed token: no "kid" header: %s tokens name their signing key`, rk.name)
	}
	// This refreshes the set when the kid is unknown (rate-limited).
	if _, err := rk.store.KeyRead(ctx, kid); err != nil {
		if all, err := rk.store.KeyReadAll(ctx); err == nil && len(all) == 0 {
			return nil, rk.unavailable()
		}
		reason := fmt.Sprintf("token key id %q is not in %s's key set", safe.Printable(kid), rk.name)
		if p := rk.problem.Load(); p != nil {
			reason += fmt.Sprintf(" (the key set could not be refreshed: %s)", *p)
		}
		return nil, &auth.DeniedError{Reason: reason}
	}
	key, err := rk.kf.KeyfuncCtx(ctx)(t)
	if err != nil {
		return nil, auth.Denied("token key id %q of %s cannot verify %s tokens: the key's alg or use does not allow it",
			safe.Printable(kid), rk.name, t.Method.Alg())
	}
	return key, nil
}

func (rk *remoteKeys) unavailable() error {
	why := "the jwks url serves no usable keys"
	if p := rk.problem.Load(); p != nil {
		why = *p
	} else if !rk.loaded.Load() {
		why = "the jwks url is unreachable"
	}
	return auth.Denied("%s: signing keys unavailable (%s)", rk.name, why)
}

// fetchProblem words why a JWKS fetch failed, for a reason a client sees.
func fetchProblem(err error) string {
	var uerr *url.Error
	switch {
	case errors.Is(err, jwkset.ErrInvalidHTTPStatusCode):
		return "the jwks url answered with an unexpected HTTP status"
	case errors.As(err, &uerr):
		return "the jwks url is unreachable"
	default:
		return "the jwks url did not serve a usable JWK Set"
	}
}

// jwtRules are the checks of one kind of platform JWT.
type jwtRules struct {
	name      string   // "Google", "Entra ID tenant <tid>", "AWS STS"
	issuers   []string // accepted `iss` values
	audience  string
	algs      []string
	keys      *remoteKeys
	parser    *jwt.Parser
	validator *jwt.Validator
}

func newJWTRules(name string, issuers []string, audience string, algs []string, keys *remoteKeys) *jwtRules {
	return &jwtRules{
		name:     name,
		issuers:  issuers,
		audience: audience,
		algs:     algs,
		keys:     keys,
		parser:   jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithoutClaimsValidation()),
		validator: jwt.NewValidator(
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(clockLeeway),
		),
	}
}

// verify checks the signature and the registered claims of token, and
// returns its claims. Every refusal is a *auth.DeniedError.
func (r *jwtRules) verify(ctx context.Context, token string) (jwt.MapClaims, error) {
	if err := jwtShape(token); err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{}
	tok, err := r.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return r.keys.key(ctx, t)
	})
	if err != nil {
		return nil, r.parseDenial(tok, err)
	}
	iss, _ := claims["iss"].(string)
	if !slices.Contains(r.issuers, iss) {
		if iss == "" {
			return nil, auth.Denied(`token has no "iss" claim: %s tokens name their issuer`, r.name)
		}
		return nil, auth.Denied("token issuer %q is not %s (%s)", safe.Printable(iss), r.name, strings.Join(r.issuers, " or "))
	}
	if err := r.validator.Validate(claims); err != nil {
		return nil, r.claimsDenial(claims, err)
	}
	return claims, nil
}

// jwtShape refuses what is not a JWT of a sane size, before any parsing.
func jwtShape(token string) error {
	switch {
	case token == "":
		return auth.Denied("empty subject token")
	case len(token) > maxJWTBytes:
		return auth.Denied("subject token too large: %d bytes, the limit is %d", len(token), maxJWTBytes)
	case strings.Count(token, ".") != 2:
		return auth.Denied("malformed subject token: not a JWT")
	}
	return nil
}

func (r *jwtRules) algList() string { return strings.Join(r.algs, ", ") }

// parseDenial words a failure to parse a token or check its signature.
func (r *jwtRules) parseDenial(tok *jwt.Token, err error) error {
	var denied *auth.DeniedError
	switch {
	case errors.As(err, &denied):
		return denied
	case tok == nil || errors.Is(err, jwt.ErrTokenMalformed):
		return auth.Denied("malformed subject token: not a JWT")
	case tok.Method == nil || !slices.Contains(r.algs, tok.Method.Alg()):
		alg, _ := tok.Header["alg"].(string)
		return auth.Denied("token algorithm %q is not allowed for %s tokens: only %s", safe.Printable(alg), r.name, r.algList())
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return auth.Denied("token signature is invalid for %s", r.name)
	default:
		return auth.Denied("token signature could not be checked for %s", r.name)
	}
}

// claimsDenial words why the registered claims failed validation.
func (r *jwtRules) claimsDenial(claims jwt.MapClaims, err error) error {
	now := time.Now()
	exp, expErr := claims.GetExpirationTime()
	nbf, nbfErr := claims.GetNotBefore()
	iat, iatErr := claims.GetIssuedAt()
	aud, audErr := claims.GetAudience()
	switch {
	case expErr != nil:
		return auth.Denied(`token claim "exp" is not a NumericDate`)
	case nbfErr != nil:
		return auth.Denied(`token claim "nbf" is not a NumericDate`)
	case iatErr != nil:
		return auth.Denied(`token claim "iat" is not a NumericDate`)
	case audErr != nil:
		return auth.Denied(`token claim "aud" is not a string or an array of strings`)
	case exp == nil:
		return auth.Denied(`token has no "exp" claim: tokens that never expire are refused`)
	case errors.Is(err, jwt.ErrTokenExpired):
		return auth.Denied("%s token expired %s ago: fetch a fresh one", r.name, safe.HumanDuration(now.Sub(exp.Time)))
	case errors.Is(err, jwt.ErrTokenNotValidYet) && nbf != nil:
		return auth.Denied("%s token not valid for another %s", r.name, safe.HumanDuration(nbf.Sub(now)))
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued) && iat != nil:
		return auth.Denied("%s token issued %s in the future: check the clocks", r.name, safe.HumanDuration(iat.Sub(now)))
	case len(aud) == 0 || len(aud) == 1 && aud[0] == "":
		return auth.Denied(`token has no "aud" claim: request it for audience %q`, r.audience)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return auth.Denied("token audience %v is not %q: request the token for audience %q (a token minted for another service is refused)",
			safe.PrintableList(aud), r.audience, r.audience)
	default:
		return auth.Denied("token claims are not valid for %s", r.name)
	}
}

// stringClaim reads an optional string claim; a claim of another type is
// refused.
func stringClaim(claims jwt.MapClaims, name string) (string, error) {
	switch v := claims[name].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", auth.Denied("token claim %q is not a string", name)
	}
}
