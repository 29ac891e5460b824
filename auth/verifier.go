package auth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/portcullisdb/portcullis/auth/internal/safe"
	"github.com/portcullisdb/portcullis/config"
)

// devIssuerName is the config name the dev issuer is trusted under; it is
// what Identity.Issuer holds for dev tokens.
const devIssuerName = config.DevIssuerName

// Limits and defaults of token checks.
const (
	maxTokenBytes        = 64 << 10         // longer tokens are refused before parsing
	clockLeeway          = 30 * time.Second // allowed clock skew for exp, nbf and iat
	defaultMaxLifetime   = 24 * time.Hour   // an issuer's max_lifetime when it is 0
	defaultUsernameClaim = "email"          // an issuer's username_claim when it is empty
)

// How keys behind a jwks_url are kept fresh. The values bound what a
// stranger can make portcullis do by sending tokens with made-up key ids: at
// most one extra fetch per jwksUnknownKIDEvery, and no Verify call waits
// longer than jwksUnknownKIDWait for it.
const (
	// jwksRefreshInterval is how often the key set is fetched in the background.
	jwksRefreshInterval = time.Hour
	// jwksUnknownKIDEvery is the least time between two fetches caused by a
	// token whose key id is not in the set (key rotation at the IdP).
	jwksUnknownKIDEvery = 5 * time.Minute
	// jwksUnknownKIDWait bounds how long one Verify waits for such a fetch,
	// the rate limiter included. A fetch due later than that is not waited for.
	jwksUnknownKIDWait = 5 * time.Second
	// jwksHTTPTimeout bounds every background fetch.
	jwksHTTPTimeout = 10 * time.Second
	// jwksMaxBodyBytes is the most of a JWKS response that is read.
	jwksMaxBodyBytes = 1 << 20
	// jwksRetryFirst and jwksRetryMax pace the retries after the first fetch
	// of a key set failed: 5s, 10s, 20s, ... then every 5m until one works.
	jwksRetryFirst = 5 * time.Second
	jwksRetryMax   = 5 * time.Minute
)

// allowedAlgs are the only signing algorithms accepted: asymmetric ones, so
// a public key can never be used as an HMAC secret.
var allowedAlgs = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384",
	"EdDSA",
}

// signingUses are the JWK "use" values a verification key may have: "sig",
// or none. Encryption keys never verify a token.
var signingUses = []jwkset.USE{jwkset.UseSig, ""}

const algAllowList = "only asymmetric algorithms (RS*, PS*, ES256, ES384, EdDSA) are accepted"

// Verifier checks bearer tokens against a fixed set of trusted issuers and
// returns the Identity they carry. It is safe for concurrent use. It is
// immutable: a config reload builds a new Verifier.
type Verifier struct {
	byIss  map[string]*issuer // by the exact `iss` value
	parser *jwt.Parser
	cache  *verifiedCache
}

// issuer is one trusted issuer with its keys and claim rules.
type issuer struct {
	name          string // config name, e.g. "corp"
	iss           string
	audiences     []string
	usernameClaim string
	rolesClaim    string
	groupsClaim   string
	maxLifetime   time.Duration
	maxStale      time.Duration // jwks_url: how long cached keys serve while refreshes fail
	validator     *jwt.Validator

	// Keys: kf over store for jwks_file and jwks_url issuers (state is
	// non-nil for jwks_url), or local for an issuer portcullis holds.
	kf    keyfunc.Keyfunc
	store jwkset.Storage
	state *jwksState
	local LocalIssuer
}

// LocalIssuer is an issuer whose keys portcullis holds itself (the dev
// issuer, portcullis' own token issuer). The Verifier asks it for public
// keys directly, with no HTTP, and trusts its tokens under Name.
type LocalIssuer interface {
	Name() string     // what Identity.Issuer holds: "dev", "portcullis"
	Issuer() string   // the exact `iss`
	Audience() string // the `aud` its tokens carry
	// UsernameClaim names the claim that holds the MySQL user name.
	UsernameClaim() string
	// PublicKey returns the key that verifies tokens with this kid, if
	// the issuer publishes one.
	PublicKey(kid string) (crypto.PublicKey, bool)
}

// NewVerifier builds a Verifier for the configured issuers and the local
// issuers (nil entries are skipped). Local issuers' tokens carry roles
// and groups in the claims of those names.
//
// Keys of a jwks_file issuer are read once, here. Keys of a jwks_url issuer
// are fetched here and then kept fresh in the background until ctx ends: every
// hour, and when a token names a key id not in the set (at most once per 5
// minutes). A jwks_url that cannot be fetched now does not fail NewVerifier:
// the problem is logged, the fetch is retried, and until it works Verify
// refuses that issuer's tokens with "signing keys unavailable". Cancel ctx when
// the Verifier is no longer used, to stop those goroutines.
//
// NewVerifier fails, naming every problem at once, when the issuer list is
// inconsistent or a jwks_file cannot be loaded.
func NewVerifier(ctx context.Context, issuers []config.Issuer, locals ...LocalIssuer) (*Verifier, error) {
	locals = slices.DeleteFunc(slices.Clone(locals), func(l LocalIssuer) bool { return l == nil })
	if problems := checkIssuers(issuers, locals); len(problems) > 0 {
		return nil, fmt.Errorf("invalid issuer configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	v := &Verifier{
		cache:  newVerifiedCache(verifiedCacheSize),
		byIss:  make(map[string]*issuer, len(issuers)+1),
		parser: jwt.NewParser(jwt.WithValidMethods(allowedAlgs), jwt.WithoutClaimsValidation()),
	}
	client := &http.Client{
		Timeout:   jwksHTTPTimeout,
		Transport: safe.LimitBodies(http.DefaultTransport, jwksMaxBodyBytes),
	}

	// Fetch key sets concurrently, so several unreachable IdPs cost one
	// timeout at start, not one each.
	built := make([]*issuer, len(issuers))
	errs := make([]error, len(issuers))
	var wg sync.WaitGroup
	for i, c := range issuers {
		wg.Go(func() { built[i], errs[i] = newIssuer(ctx, c, client) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, is := range built {
		v.byIss[is.iss] = is
	}
	for _, l := range locals {
		v.byIss[l.Issuer()] = newIssuerRules(l.Name(), l.Issuer(), []string{l.Audience()},
			l.UsernameClaim(), "roles", "groups", defaultMaxLifetime, l)
	}
	return v, nil
}

// checkIssuers reports every inconsistency in the issuer list, each naming
// the key and the fix.
func checkIssuers(issuers []config.Issuer, locals []LocalIssuer) []string {
	var problems []string
	names := map[string]bool{}
	reserved := map[string]bool{}
	isses := map[string]string{} // iss -> name
	for _, l := range locals {
		names[l.Name()], reserved[l.Name()] = true, true
		isses[l.Issuer()] = l.Name()
	}
	for i, c := range issuers {
		key := fmt.Sprintf("issuers[%d]", i)
		if c.Name != "" {
			key = fmt.Sprintf("issuers[%s]", c.Name)
		}
		switch {
		case c.Name == "":
			problems = append(problems, key+".name: is empty: give every issuer a name")
		case reserved[c.Name]:
			problems = append(problems, fmt.Sprintf("%s.name: %q is reserved for portcullis' own issuer: pick another name", key, c.Name))
		case names[c.Name]:
			problems = append(problems, key+".name: is used twice: issuer names must be unique")
		}
		names[c.Name] = true
		switch other, dup := isses[c.Issuer]; {
		case c.Issuer == "":
			problems = append(problems, key+".issuer: is empty: set it to the exact `iss` of the tokens")
		case dup:
			problems = append(problems, fmt.Sprintf("%s.issuer: %q is also the issuer of %q: merge the two issuers (audiences is a list)", key, c.Issuer, other))
		}
		isses[c.Issuer] = c.Name
		if len(c.Audiences) == 0 || slices.Contains(c.Audiences, "") {
			problems = append(problems, key+".audiences: is empty: list the audiences (aud) portcullis accepts")
		}
		switch {
		case c.JWKSURL == "" && c.JWKSFile == "":
			problems = append(problems, key+": has neither jwks_url nor jwks_file: set one")
		case c.JWKSURL != "" && c.JWKSFile != "":
			problems = append(problems, key+": has both jwks_url and jwks_file: keep one")
		}
		if c.MaxLifetime < 0 {
			problems = append(problems, key+".max_lifetime: is negative: use a positive duration or 0 for 24h")
		}
	}
	return problems
}

// newIssuerRules applies the defaults of one issuer's claim rules.
func newIssuerRules(name, iss string, audiences []string, usernameClaim, rolesClaim, groupsClaim string, maxLifetime time.Duration, local LocalIssuer) *issuer {
	if usernameClaim == "" {
		usernameClaim = defaultUsernameClaim
	}
	if maxLifetime == 0 {
		maxLifetime = defaultMaxLifetime
	}
	return &issuer{
		name:          name,
		iss:           iss,
		audiences:     slices.Clone(audiences),
		usernameClaim: usernameClaim,
		rolesClaim:    rolesClaim,
		groupsClaim:   groupsClaim,
		maxLifetime:   maxLifetime,
		validator: jwt.NewValidator(
			jwt.WithIssuer(iss),
			jwt.WithAudience(audiences...),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(clockLeeway),
		),
		local: local,
	}
}

// newIssuer builds one configured issuer and loads its keys.
func newIssuer(ctx context.Context, c config.Issuer, client *http.Client) (*issuer, error) {
	is := newIssuerRules(c.Name, c.Issuer, c.Audiences, c.UsernameClaim, c.RolesClaim, c.GroupsClaim, c.MaxLifetime, nil)
	is.maxStale = c.JWKSMaxStale
	var err error
	if c.JWKSFile != "" {
		is.kf, err = loadJWKSFile(c.Name, c.JWKSFile)
	} else {
		is.kf, is.state, err = watchJWKSURL(ctx, c.Name, c.JWKSURL, client)
	}
	if err != nil {
		return nil, err
	}
	is.store = is.kf.Storage()
	return is, nil
}

// loadJWKSFile reads a JWK Set from a file, once.
func loadJWKSFile(name, path string) (keyfunc.Keyfunc, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("issuer %s: read jwks_file: %w", name, err)
	}
	// Decode once here only to word the error: the decoder's own errors can
	// quote the file, which may hold key material.
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("issuer %s: jwks_file %s is not a JSON Web Key Set: %s", name, path, jsonProblem(err))
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("issuer %s: jwks_file %s holds no keys", name, path)
	}
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("issuer %s: jwks_file %s: %w", name, path, err)
	}
	return keyfunc.New(keyfunc.Options{Storage: kf.Storage(), UseWhitelist: signingUses})
}

// jsonProblem words a JSON decoding error without quoting the input.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q holds a JSON %s", typ.Field, typ.Value)
	default:
		return "invalid JSON"
	}
}

// jwksState tracks the fetches of one jwks_url. It wraps the storage the
// fetched keys are written to: a fetch that worked replaces all keys.
type jwksState struct {
	jwkset.Storage
	loaded   atomic.Bool            // a fetch has worked at least once
	problem  atomic.Pointer[string] // why the latest fetch failed; nil when it worked
	lastOK   atomic.Int64           // unix nanoseconds of the last fetch that worked
	failures atomic.Int64           // fetches that failed, ever
}

func (s *jwksState) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := s.Storage.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	s.loaded.Store(true)
	s.problem.Store(nil)
	s.lastOK.Store(time.Now().UnixNano())
	return nil
}

// failed records a failed fetch.
func (s *jwksState) failed(err error) {
	p := fetchProblem(err)
	s.problem.Store(&p)
	s.failures.Add(1)
}

// KeySetStatus is the health of one jwks_url issuer's key set.
type KeySetStatus struct {
	Issuer      string
	LastRefresh time.Time // zero: never fetched
	Failures    int64
	Problem     string // why the latest fetch failed; "" when it worked
}

// KeySets reports the key sets fetched from jwks_url, for metrics and
// readiness.
func (v *Verifier) KeySets() []KeySetStatus {
	var out []KeySetStatus
	for _, is := range v.byIss {
		if is.state == nil {
			continue
		}
		st := KeySetStatus{Issuer: is.name, Failures: is.state.failures.Load()}
		if ns := is.state.lastOK.Load(); ns > 0 {
			st.LastRefresh = time.Unix(0, ns)
		}
		if p := is.state.problem.Load(); p != nil {
			st.Problem = *p
		}
		out = append(out, st)
	}
	return out
}

// fetchProblem words why a JWKS fetch failed, for a reason a client sees.
func fetchProblem(err error) string {
	var uerr *url.Error
	switch {
	case errors.Is(err, jwkset.ErrInvalidHTTPStatusCode):
		return "jwks_url answered with an unexpected HTTP status"
	case errors.As(err, &uerr):
		return "jwks_url unreachable"
	default:
		return "jwks_url did not serve a usable JWK Set"
	}
}

// watchJWKSURL sets up the key set behind a jwks_url: a first fetch now,
// hourly refreshes, rate-limited refreshes on unknown key ids, and retries
// while the first fetch has not worked.
func watchJWKSURL(ctx context.Context, name, rawURL string, client *http.Client) (keyfunc.Keyfunc, *jwksState, error) {
	logURL := rawURL
	if u, err := url.Parse(rawURL); err == nil {
		logURL = u.Redacted()
		if u.Scheme == "http" && !safe.IsLoopback(u.Hostname()) {
			slog.Warn("issuer jwks_url uses plain http: anyone on the path can substitute signing keys",
				"issuer", name, "jwks_url", logURL)
		}
	}
	state := &jwksState{Storage: jwkset.NewMemoryStorage()}
	opts := jwkset.HTTPClientStorageOptions{
		Client:                    client,
		Ctx:                       ctx,
		HTTPTimeout:               jwksHTTPTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshErrorHandler: func(ctx context.Context, err error) {
			state.failed(err)
			slog.Warn("fetch issuer signing keys failed", "issuer", name, "jwks_url", logURL, "error", err)
		},
		RefreshInterval: jwksRefreshInterval,
		Storage:         state,
	}
	remote, err := jwkset.NewStorageFromHTTP(rawURL, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer %s: jwks_url %s: %w", name, logURL, err)
	}
	store, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{rawURL: remote},
		RateLimitWaitMax:  jwksUnknownKIDWait,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(jwksUnknownKIDEvery), 1),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("issuer %s: jwks_url %s: %w", name, logURL, err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: store, UseWhitelist: signingUses})
	if err != nil {
		return nil, nil, fmt.Errorf("issuer %s: jwks_url %s: %w", name, logURL, err)
	}
	if !state.loaded.Load() {
		// One-shot fetches into the same storage, until one works.
		once := opts
		once.NoErrorReturnFirstHTTPReq = false
		once.RefreshErrorHandler = nil
		once.RefreshInterval = 0
		go retryJWKS(ctx, name, rawURL, logURL, once, state)
	}
	return kf, state, nil
}

// retryJWKS fetches a key set whose first fetch failed, backing off, until
// a fetch works (by any path) or ctx ends.
func retryJWKS(ctx context.Context, name, rawURL, logURL string, once jwkset.HTTPClientStorageOptions, state *jwksState) {
	delay := jwksRetryFirst
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if state.loaded.Load() {
			return
		}
		if _, err := jwkset.NewStorageFromHTTP(rawURL, once); err != nil {
			state.failed(err)
			delay = min(2*delay, jwksRetryMax)
			slog.Warn("fetch issuer signing keys failed; will retry", "issuer", name, "jwks_url", logURL,
				"retry_in", delay, "error", err)
			timer.Reset(delay)
			continue
		}
		slog.Info("issuer signing keys fetched", "issuer", name, "jwks_url", logURL)
		return
	}
}

// Verify checks token and returns the identity it carries. Every refusal is
// a *DeniedError with a reason a person can act on; it never contains the
// token, its signature or key material. ctx bounds a key set refresh that an
// unknown key id may cause.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	key := sha256.Sum256([]byte(token))
	if id, ok := v.cache.get(key); ok {
		return id, nil
	}
	id, err := v.verify(ctx, token)
	if err == nil {
		v.cache.put(key, id)
	}
	return id, err
}

// verify checks a token the cache does not hold.
func (v *Verifier) verify(ctx context.Context, token string) (Identity, error) {
	switch {
	case token == "":
		return Identity{}, Denied("empty password: pass a token as the password")
	case len(token) > maxTokenBytes:
		return Identity{}, Denied("token too large: %d bytes, the limit is %d", len(token), maxTokenBytes)
	case strings.Count(token, ".") != 2:
		return Identity{}, Denied("malformed token: not a JWT")
	}
	claims := jwt.MapClaims{}
	var is *issuer
	tok, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		var err error
		if is, err = v.issuerOf(claims); err != nil {
			return nil, err
		}
		return is.key(ctx, t)
	})
	if err != nil {
		return Identity{}, parseDenial(tok, is, err)
	}
	if err := is.validator.Validate(claims); err != nil {
		return Identity{}, is.claimsDenial(claims, err)
	}
	return is.identity(claims)
}

// issuerOf picks the trusted issuer by the (not yet verified) `iss`.
func (v *Verifier) issuerOf(claims jwt.MapClaims) (*issuer, error) {
	iss, _ := claims["iss"].(string)
	if iss == "" {
		return nil, Denied(`token has no "iss" claim: cannot tell which issuer signed it`)
	}
	is, ok := v.byIss[iss]
	if !ok {
		return nil, Denied("token issuer %q is not trusted", safe.Printable(iss))
	}
	return is, nil
}

// key returns the key (or key set) that should have signed t.
func (is *issuer) key(ctx context.Context, t *jwt.Token) (any, error) {
	var kid string
	raw, hasKID := t.Header["kid"]
	if hasKID {
		var ok bool
		if kid, ok = raw.(string); !ok {
			return nil, Denied(`malformed token: the "kid" header is not a string`)
		}
	}
	if is.local != nil {
		key, ok := is.local.PublicKey(kid)
		if !ok {
			return nil, Denied("token key id %q is not in issuer %s's key set", safe.Printable(kid), is.name)
		}
		return key, nil
	}
	// Cached keys keep working while the IdP's JWKS is down, but only for
	// jwks_max_stale after the last refresh that worked.
	if is.state != nil && is.maxStale > 0 {
		p, ok := is.state.problem.Load(), is.state.lastOK.Load()
		if p != nil && ok > 0 && time.Since(time.Unix(0, ok)) > is.maxStale {
			return nil, Denied("issuer %s: signing keys are stale: last refreshed %s ago, more than jwks_max_stale %v (%s)",
				is.name, safe.HumanDuration(time.Since(time.Unix(0, ok))), is.maxStale, *p)
		}
	}
	if hasKID {
		// For a jwks_url this refreshes the set when the kid is unknown.
		if _, err := is.store.KeyRead(ctx, kid); err != nil {
			return nil, is.unknownKID(ctx, kid)
		}
	}
	key, err := is.kf.KeyfuncCtx(ctx)(t)
	if err != nil {
		// The key exists; keyfunc refused it for this token (its alg or use).
		return nil, Denied("token key id %q of issuer %s cannot verify %s tokens: the key's alg or use does not allow it",
			safe.Printable(kid), is.name, t.Method.Alg())
	}
	if set, ok := key.(jwt.VerificationKeySet); ok && len(set.Keys) == 0 {
		return nil, is.keysUnavailable()
	}
	return key, nil
}

func (is *issuer) unknownKID(ctx context.Context, kid string) error {
	if all, err := is.store.KeyReadAll(ctx); err == nil && len(all) == 0 {
		return is.keysUnavailable()
	}
	reason := fmt.Sprintf("token key id %q is not in issuer %s's key set", safe.Printable(kid), is.name)
	if is.state != nil {
		if p := is.state.problem.Load(); p != nil {
			reason += fmt.Sprintf(" (the key set could not be refreshed: %s)", *p)
		}
	}
	return &DeniedError{Reason: reason}
}

func (is *issuer) keysUnavailable() error {
	why := "jwks_file holds no usable keys"
	if is.state != nil {
		why = "jwks_url serves no usable keys"
		if p := is.state.problem.Load(); p != nil {
			why = *p
		} else if !is.state.loaded.Load() {
			why = "jwks_url unreachable"
		}
	}
	return Denied("issuer %s: signing keys unavailable (%s)", is.name, why)
}

// parseDenial words a failure to parse a token or check its signature.
func parseDenial(tok *jwt.Token, is *issuer, err error) error {
	var denied *DeniedError
	switch {
	case errors.As(err, &denied):
		return denied
	case tok == nil || errors.Is(err, jwt.ErrTokenMalformed):
		return Denied("malformed token: not a JWT")
	case tok.Method == nil:
		alg, _ := tok.Header["alg"].(string)
		if alg == "" {
			return Denied(`malformed token: no "alg" header: %s`, algAllowList)
		}
		return Denied("token algorithm %q is not allowed: %s", safe.Printable(alg), algAllowList)
	case !slices.Contains(allowedAlgs, tok.Method.Alg()):
		return Denied("token algorithm %s is not allowed: %s", tok.Method.Alg(), algAllowList)
	case is != nil && errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Denied("token signature is invalid for issuer %s", is.name)
	case is != nil:
		return Denied("token signature could not be checked for issuer %s", is.name)
	default:
		return Denied("token could not be verified")
	}
}

// claimsDenial words why the registered claims failed validation. When
// several fail, the one most likely to be the real problem is named.
func (is *issuer) claimsDenial(claims jwt.MapClaims, err error) error {
	now := time.Now()
	exp, expErr := claims.GetExpirationTime()
	nbf, nbfErr := claims.GetNotBefore()
	iat, iatErr := claims.GetIssuedAt()
	aud, audErr := claims.GetAudience()
	switch {
	case expErr != nil:
		return Denied(`token claim "exp" is not a NumericDate`)
	case nbfErr != nil:
		return Denied(`token claim "nbf" is not a NumericDate`)
	case iatErr != nil:
		return Denied(`token claim "iat" is not a NumericDate`)
	case audErr != nil:
		return Denied(`token claim "aud" is not a string or an array of strings`)
	case exp == nil:
		return Denied(`token has no "exp" claim: tokens that never expire are refused`)
	case errors.Is(err, jwt.ErrTokenExpired):
		return Denied("token expired %s ago", safe.HumanDuration(now.Sub(exp.Time)))
	case errors.Is(err, jwt.ErrTokenNotValidYet) && nbf != nil:
		return Denied("token not valid for another %s", safe.HumanDuration(nbf.Sub(now)))
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued) && iat != nil:
		return Denied("token issued %s in the future: check the clock of issuer %s", safe.HumanDuration(iat.Sub(now)), is.name)
	case len(aud) == 0 || len(aud) == 1 && aud[0] == "":
		return Denied(`token has no "aud" claim: it must name one of %v`, is.audiences)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return Denied("token audience %v does not include any of %v", safe.PrintableList(aud), is.audiences)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		iss, _ := claims["iss"].(string)
		return Denied("token issuer %q is not trusted", safe.Printable(iss))
	default:
		return Denied("token claims are not valid for issuer %s", is.name)
	}
}

// identity checks the lifetime and the portcullis claims of a token whose
// signature and registered claims are valid, and fills the Identity.
func (is *issuer) identity(claims jwt.MapClaims) (Identity, error) {
	exp, _ := claims.GetExpirationTime() // present and valid: checked by the validator
	iat, _ := claims.GetIssuedAt()
	nbf, _ := claims.GetNotBefore()
	var start time.Time
	switch {
	case iat != nil:
		start = iat.Time
	case nbf != nil:
		start = nbf.Time
	default:
		return Identity{}, Denied(`token has neither "iat" nor "nbf": its lifetime cannot be checked against the %v maximum for issuer %s`,
			is.maxLifetime, is.name)
	}
	if life := exp.Sub(start); life > is.maxLifetime {
		return Identity{}, Denied("token lifetime %v exceeds the %v maximum for issuer %s", life, is.maxLifetime, is.name)
	}

	id := Identity{Issuer: is.name, IssuerURL: is.iss, ExpiresAt: exp.Time}
	var err error
	if id.Subject, err = claims.GetSubject(); err != nil {
		return Identity{}, Denied(`token claim "sub" is not a string`)
	}
	switch raw, ok := claims[is.usernameClaim]; {
	case !ok || raw == nil:
		return Identity{}, Denied("token has no %q claim: issuer %s names the user with it", is.usernameClaim, is.name)
	default:
		s, isString := raw.(string)
		if !isString {
			return Identity{}, Denied("token claim %q is not a string", is.usernameClaim)
		}
		if s == "" {
			return Identity{}, Denied("token has an empty %q claim: issuer %s names the user with it", is.usernameClaim, is.name)
		}
		id.Username = s
	}
	if id.Groups, err = stringsClaim(claims, is.groupsClaim); err != nil {
		return Identity{}, err
	}
	if id.Roles, err = stringsClaim(claims, is.rolesClaim); err != nil {
		return Identity{}, err
	}
	if raw, ok := claims["jti"]; ok && raw != nil {
		if id.TokenID, ok = raw.(string); !ok {
			return Identity{}, Denied(`token claim "jti" is not a string`)
		}
	}
	return id, nil
}

// stringsClaim reads a claim that holds an array of strings or one string.
// An absent or null claim, or an empty claim name, gives nil.
func stringsClaim(claims jwt.MapClaims, name string) ([]string, error) {
	if name == "" {
		return nil, nil
	}
	switch v := claims[name].(type) {
	case nil:
		return nil, nil
	case string:
		if v == "" {
			return nil, nil
		}
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, Denied("token claim %q is not a string or an array of strings", name)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, Denied("token claim %q is not a string or an array of strings", name)
	}
}
