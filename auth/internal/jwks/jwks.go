// Package jwks holds the JSON Web Key Sets that auth and auth/cloud check
// token signatures with: a set read once from a file, or a set fetched from
// a URL and kept fresh in the background. Every error Set.Key returns is a
// reason fit to show a client: it names the key set and what is wrong, never
// key material or the token.
package jwks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/portcullisdb/portcullis/auth/internal/safe"
	"github.com/portcullisdb/portcullis/netaddr"
)

// How a remote set is kept fresh. The values bound what a stranger can make
// portcullis do by sending tokens with made-up key ids: at most one extra
// fetch per unknownKIDEvery, and no Key call waits longer than
// unknownKIDWait for it.
const (
	// refreshInterval is how often a set is fetched in the background.
	refreshInterval = time.Hour
	// unknownKIDEvery is the least time between two fetches caused by a
	// token whose key id is not in the set (key rotation at the IdP). The
	// first such fetch is at once, so a set whose first fetch failed is
	// fetched again by the first token that needs it.
	unknownKIDEvery = 5 * time.Minute
	// unknownKIDWait bounds how long one Key call waits for such a fetch,
	// the rate limiter included. A fetch due later than that is not waited for.
	unknownKIDWait = 5 * time.Second
	// httpTimeout bounds every fetch.
	httpTimeout = 10 * time.Second
	// maxBodyBytes is the most of a JWKS response that is read; a larger
	// one is refused rather than cut, which would only garble it.
	maxBodyBytes = 1 << 20
	// The first fetch of a set, and the fetches after any failed one, run
	// in the background, each bounded by retryTimeout, paced retryFirst,
	// then doubling up to retryMax (1s, 2s, 4s, 4s, ...), until one works.
	// So start-up never waits on a JWKS, and keys are back within about
	// retryMax+retryTimeout of the JWKS answering again.
	retryFirst   = time.Second
	retryMax     = 4 * time.Second
	retryTimeout = 3 * time.Second
)

// Algs are the only token algorithms a key of a Set verifies: asymmetric
// ones, so a public key can never be used as an HMAC secret.
var Algs = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384",
	"EdDSA",
}

// AlgList says Algs to a person.
const AlgList = "only asymmetric algorithms (RS*, PS*, ES256, ES384, EdDSA) are accepted"

// signingUses are the JWK "use" values a verification key may have: "sig",
// or none. Encryption keys never verify a token.
var signingUses = []jwkset.USE{jwkset.UseSig, ""}

// errDeferred is what the gate answers jwkset's first, synchronous fetch.
var errDeferred = errors.New("first fetch deferred to the background")

// gate holds back the one fetch jwkset makes while a set is being built,
// so that building it never waits on the network: the background retry
// makes the first real fetch.
type gate struct {
	open atomic.Bool
	rt   http.RoundTripper
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	if !g.open.Load() {
		return nil, errDeferred
	}
	return g.rt.RoundTrip(r)
}

// Set is one key set. It is safe for concurrent use.
type Set struct {
	name     string // in reasons and logs: "issuer corp", "Google"
	kf       keyfunc.Keyfunc
	store    jwkset.Storage // for a remote set, reading an unknown kid refreshes it
	remote   bool
	maxStale time.Duration

	// Health of a remote set.
	loaded   atomic.Bool            // a fetch has worked at least once
	problem  atomic.Pointer[string] // why the latest fetch failed; nil when it worked
	lastOK   atomic.Int64           // unix nanoseconds of the last fetch that worked
	failures atomic.Int64           // fetches that failed, ever
	retrying atomic.Bool            // a background retry loop runs
	retryFn  func()                 // starts one; set by Fetch
	first    chan struct{}          // closed once the first fetch has been tried
	tried    sync.Once
}

// Load reads the key set in the file at path, once. name says whose keys
// they are, in errors and reasons ("issuer corp").
func Load(name, path string) (*Set, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: read jwks_file: %w", name, err)
	}
	// Decode once here only to word the error: the decoder's own errors can
	// quote the file, which may hold key material.
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("%s: jwks_file %s is not a JSON Web Key Set: %s", name, path, cmp.Or(jsonProblem(err), "invalid JSON"))
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%s: jwks_file %s holds no keys", name, path)
	}
	static, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: jwks_file %s: %w", name, path, err)
	}
	s := &Set{name: name, store: static.Storage()}
	if s.kf, err = keyfunc.New(keyfunc.Options{Storage: s.store, UseWhitelist: signingUses}); err != nil {
		return nil, fmt.Errorf("%s: jwks_file %s: %w", name, path, err)
	}
	return s, nil
}

// Fetch starts fetching the key set at rawURL in the background, without
// waiting for it, and keeps it fresh until ctx ends: every hour, and when a
// token names a key id not in the set (at most once per 5 minutes). A fetch
// that fails is retried in the background (see retryFirst); until one
// works, Key waits a few seconds for the first and then refuses tokens
// with "signing keys unavailable". With maxStale > 0, keys stop
// verifying once fetches have failed for longer than that since the last
// one that worked. Fetch fails only when rawURL is not an http(s) URL.
func Fetch(ctx context.Context, name, rawURL string, maxStale time.Duration) (*Set, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%s: jwks_url %q is not an absolute http(s) URL", name, rawURL)
	}
	logURL := logSafeURL(u)
	if u.Scheme == "http" && !netaddr.IsLoopback(u.Hostname()) {
		slog.Warn("jwks_url uses plain http: anyone on the path can substitute signing keys",
			"key_set", name, "jwks_url", logURL)
	}
	s := &Set{name: name, remote: true, maxStale: maxStale, first: make(chan struct{})}
	g := &gate{rt: capBodies{http.DefaultTransport}}
	opts := jwkset.HTTPClientStorageOptions{
		// Bounded in time and in size.
		Client:                    &http.Client{Timeout: httpTimeout, Transport: g},
		Ctx:                       ctx,
		HTTPTimeout:               httpTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshErrorHandler: func(ctx context.Context, err error) {
			if errors.Is(err, errDeferred) {
				return
			}
			s.failed(err)
			slog.Warn("fetch signing keys failed; will retry", "key_set", name, "jwks_url", logURL, "error", fetchProblem(err))
			s.retryFn()
		},
		RefreshInterval: refreshInterval,
		Storage:         tracking{Storage: jwkset.NewMemoryStorage(), set: s},
	}
	// One-shot fetches into the same storage, until one works.
	once := opts
	once.NoErrorReturnFirstHTTPReq = false
	once.RefreshErrorHandler = nil
	once.RefreshInterval = 0
	once.HTTPTimeout = retryTimeout
	s.retryFn = func() {
		if s.retrying.CompareAndSwap(false, true) {
			go s.retry(ctx, rawURL, logURL, once)
		}
	}
	remote, err := jwkset.NewStorageFromHTTP(rawURL, opts) // its first fetch is held back
	g.open.Store(true)
	if err != nil {
		return nil, fmt.Errorf("%s: jwks_url %s: %w", name, logURL, err)
	}
	s.store, err = jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{rawURL: remote},
		RateLimitWaitMax:  unknownKIDWait,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(unknownKIDEvery), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: jwks_url %s: %w", name, logURL, err)
	}
	if s.kf, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: s.store, UseWhitelist: signingUses}); err != nil {
		return nil, fmt.Errorf("%s: jwks_url %s: %w", name, logURL, err)
	}
	s.retryFn() // the first fetch
	return s, nil
}

// retry fetches the set until a fetch works or ctx ends: at once, then
// backing off from retryFirst to retryMax. It logs the first failure and
// then one line a minute, not every try.
func (s *Set) retry(ctx context.Context, rawURL, logURL string, once jwkset.HTTPClientStorageOptions) {
	defer s.retrying.Store(false)
	var delay time.Duration
	var logged time.Time
	for {
		_, err := jwkset.NewStorageFromHTTP(rawURL, once)
		if err == nil {
			s.tried.Do(func() { close(s.first) })
			slog.Info("signing keys fetched", "key_set", s.name, "jwks_url", logURL)
			return
		}
		if ctx.Err() == nil {
			s.failed(err) // before waiters wake, so they see why
		}
		s.tried.Do(func() { close(s.first) })
		if ctx.Err() == nil {
			delay = min(max(2*delay, retryFirst), retryMax)
			if time.Since(logged) > time.Minute {
				logged = time.Now()
				slog.Warn("fetch signing keys failed; retrying in the background", "key_set", s.name, "jwks_url", logURL,
					"failures", s.failures.Load(), "retry_every", retryMax, "error", fetchProblem(err))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// tracking records in set that a fetch into it worked: a fetch that works
// replaces all keys.
type tracking struct {
	jwkset.Storage
	set *Set
}

func (t tracking) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := t.Storage.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	t.set.loaded.Store(true)
	t.set.problem.Store(nil)
	t.set.lastOK.Store(time.Now().UnixNano())
	return nil
}

// failed records a failed fetch.
func (s *Set) failed(err error) {
	p := fetchProblem(err)
	s.problem.Store(&p)
	s.failures.Add(1)
}

// Status is the health of a remote set.
type Status struct {
	LastRefresh time.Time // zero: never fetched
	Failures    int64
	Problem     string // why the latest fetch failed; "" when it worked
}

// Remote reports whether the set is fetched from a URL.
func (s *Set) Remote() bool { return s.remote }

// Status reports the health of a remote set, for metrics and readiness.
func (s *Set) Status() Status {
	st := Status{Failures: s.failures.Load()}
	if ns := s.lastOK.Load(); ns > 0 {
		st.LastRefresh = time.Unix(0, ns)
	}
	if p := s.problem.Load(); p != nil {
		st.Problem = *p
	}
	return st
}

// Key returns the key (or, for a token without "kid", the keys) that should
// have signed t. A kid not in a remote set refreshes it, rate-limited, and
// waits at most a few seconds for that. Every error is a reason fit for a
// client.
func (s *Set) Key(ctx context.Context, t *jwt.Token) (any, error) {
	if t.Method == nil || !slices.Contains(Algs, t.Method.Alg()) {
		// The caller's parser refuses these first; this keeps a public
		// key from ever becoming an HMAC secret if it did not.
		alg, _ := t.Header["alg"].(string)
		return nil, fmt.Errorf("token algorithm %q is not allowed: %s", safe.Printable(alg), AlgList)
	}
	raw, hasKID := t.Header["kid"]
	kid, isString := raw.(string)
	if hasKID && !isString {
		return nil, errors.New(`malformed token: the "kid" header is not a string`)
	}
	if s.remote && !s.loaded.Load() {
		// A token that comes before the first fetch has been tried waits
		// for it, a few seconds at most.
		select {
		case <-s.first:
		case <-ctx.Done():
		case <-time.After(unknownKIDWait):
		}
		if !s.loaded.Load() { // the background retry fetches it; no refresh here
			return nil, s.unavailable()
		}
	}
	if err := s.stale(); err != nil {
		return nil, err
	}
	if hasKID {
		if _, err := s.store.KeyRead(ctx, kid); err != nil {
			return nil, s.unknownKID(ctx, kid)
		}
	}
	key, err := s.kf.KeyfuncCtx(ctx)(t)
	if err != nil {
		// The key exists; keyfunc refused it for this token (its alg or use).
		return nil, fmt.Errorf("token key id %q of %s cannot verify %s tokens: the key's alg or use does not allow it",
			safe.Printable(kid), s.name, t.Method.Alg())
	}
	if set, ok := key.(jwt.VerificationKeySet); ok && len(set.Keys) == 0 {
		return nil, s.unavailable()
	}
	return key, nil
}

// stale refuses cached keys once fetches have failed for longer than
// maxStale since the last one that worked: they keep working through an
// IdP's outage, but not forever.
func (s *Set) stale() error {
	if s.maxStale <= 0 {
		return nil
	}
	p, ok := s.problem.Load(), s.lastOK.Load()
	if p == nil || ok == 0 {
		return nil
	}
	if age := time.Since(time.Unix(0, ok)); age > s.maxStale {
		return fmt.Errorf("%s: signing keys are stale: last refreshed %s ago, more than jwks_max_stale %v (%s)",
			s.name, safe.HumanDuration(age), s.maxStale, *p)
	}
	return nil
}

func (s *Set) unknownKID(ctx context.Context, kid string) error {
	if all, err := s.store.KeyReadAll(ctx); err == nil && len(all) == 0 {
		return s.unavailable()
	}
	reason := fmt.Sprintf("token key id %q is not in %s's key set", safe.Printable(kid), s.name)
	if p := s.problem.Load(); p != nil {
		reason += fmt.Sprintf(" (the key set could not be refreshed: %s)", *p)
	}
	return errors.New(reason)
}

func (s *Set) unavailable() error {
	why := "jwks_file holds no usable keys"
	if s.remote {
		why = "jwks_url serves no usable keys"
		if p := s.problem.Load(); p != nil {
			why = *p
		} else if !s.loaded.Load() {
			why = "jwks_url is unreachable"
		}
	}
	return fmt.Errorf("%s: signing keys unavailable (%s)", s.name, why)
}

// fetchProblem words why a fetch failed, for a reason a client sees: never
// the response itself, which may hold anything.
func fetchProblem(err error) string {
	var tooLarge *http.MaxBytesError
	var uerr *url.Error
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Sprintf("jwks_url served more than %d MiB: no key set is that large", tooLarge.Limit>>20)
	case errors.Is(err, jwkset.ErrInvalidHTTPStatusCode):
		return "jwks_url answered with an unexpected HTTP status"
	case errors.As(err, &uerr):
		return "jwks_url is unreachable: " + safe.NetCause(err)
	}
	if p := jsonProblem(err); p != "" {
		return "jwks_url did not serve a JSON Web Key Set: " + p
	}
	return "jwks_url did not serve a usable JSON Web Key Set"
}

// jsonProblem words a JSON decoding error without quoting the input; ""
// when err is not one.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q holds a JSON %s", typ.Field, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	case errors.Is(err, io.EOF):
		return "the response is empty"
	}
	return ""
}

// capBodies makes reading a response body past maxBodyBytes fail with an
// *http.MaxBytesError.
type capBodies struct{ rt http.RoundTripper }

func (c capBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = http.MaxBytesReader(nil, resp.Body, maxBodyBytes)
	return resp, nil
}

// logSafeURL is u for a log line: no password and no query (which may hold
// a key), marked when one was dropped.
func logSafeURL(u *url.URL) string {
	c := *u
	dropped := c.RawQuery != "" || c.Fragment != ""
	c.RawQuery, c.Fragment, c.ForceQuery = "", "", false
	if dropped {
		return c.Redacted() + "?..."
	}
	return c.Redacted()
}
