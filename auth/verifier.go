package auth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth/internal/jwks"
	"github.com/portcullisdb/portcullis/auth/internal/jwtcheck"
	"github.com/portcullisdb/portcullis/auth/internal/safe"
	"github.com/portcullisdb/portcullis/auth/username"
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

// Verifier checks bearer tokens against a fixed set of trusted issuers and
// returns the Identity they carry. It is safe for concurrent use. It is
// immutable: a config reload builds a new Verifier.
type Verifier struct {
	byIss map[string]*verifiedIssuer // by the exact `iss` value
	cache *verifiedCache
}

// userTokenShape bounds the tokens people and apps present as a password.
var userTokenShape = jwtcheck.Shape{MaxBytes: maxTokenBytes, Empty: "empty password: pass a token as the password"}

// verifiedIssuer is one issuer whose tokens we verify, with its keys and
// claim rules; portcullis' own signing side is TokenIssuer.
type verifiedIssuer struct {
	name          string // config name, e.g. "corp"
	iss           string
	audiences     []string
	usernameClaim string
	rolesClaim    string
	groupsClaim   string
	maxLifetime   time.Duration
	check         *jwtcheck.VerifiedIssuer // signature and registered claims

	// Keys: from a jwks_file or jwks_url, or local for an issuer
	// portcullis holds.
	keys  *jwks.Set
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
		cache: newVerifiedCache(verifiedCacheSize),
		byIss: make(map[string]*verifiedIssuer, len(issuers)+1),
	}

	// Fetch key sets concurrently, so several unreachable IdPs cost one
	// timeout at start, not one each.
	built := make([]*verifiedIssuer, len(issuers))
	errs := make([]error, len(issuers))
	var wg sync.WaitGroup
	for i, c := range issuers {
		wg.Go(func() { built[i], errs[i] = newIssuer(ctx, c) })
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
func newIssuerRules(name, iss string, audiences []string, usernameClaim, rolesClaim, groupsClaim string, maxLifetime time.Duration, local LocalIssuer) *verifiedIssuer {
	if usernameClaim == "" {
		usernameClaim = defaultUsernameClaim
	}
	if maxLifetime == 0 {
		maxLifetime = defaultMaxLifetime
	}
	is := &verifiedIssuer{
		name:          name,
		iss:           iss,
		audiences:     slices.Clone(audiences),
		usernameClaim: usernameClaim,
		rolesClaim:    rolesClaim,
		groupsClaim:   groupsClaim,
		maxLifetime:   maxLifetime,
		local:         local,
	}
	is.check = jwtcheck.NewVerifiedIssuer("issuer "+name, []string{iss}, audiences, jwks.Algs, false, is.key)
	return is
}

// newIssuer builds one configured issuer and loads its keys.
func newIssuer(ctx context.Context, c config.Issuer) (*verifiedIssuer, error) {
	is := newIssuerRules(c.Name, c.Issuer, c.Audiences, c.UsernameClaim, c.RolesClaim, c.GroupsClaim, c.MaxLifetime, nil)
	var err error
	if c.JWKSFile != "" {
		is.keys, err = jwks.Load("issuer "+c.Name, c.JWKSFile)
	} else {
		is.keys, err = jwks.Fetch(ctx, "issuer "+c.Name, c.JWKSURL, c.JWKSMaxStale)
	}
	if err != nil {
		return nil, err
	}
	return is, nil
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
		if is.keys == nil || !is.keys.Remote() {
			continue
		}
		st := is.keys.Status()
		out = append(out, KeySetStatus{Issuer: is.name, LastRefresh: st.LastRefresh, Failures: st.Failures, Problem: st.Problem})
	}
	return out
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
	var is *verifiedIssuer
	claims, _, err := jwtcheck.Check(ctx, token, userTokenShape, func(unverified jwt.MapClaims) (*jwtcheck.VerifiedIssuer, error) {
		var err error
		if is, err = v.issuerOf(unverified); err != nil {
			return nil, err
		}
		return is.check, nil
	})
	if err != nil {
		return Identity{}, denial(err)
	}
	return is.identity(claims)
}

// denial makes a refusal of the JWT checker a *DeniedError.
func denial(err error) error {
	var r *jwtcheck.Refusal
	if errors.As(err, &r) {
		return &DeniedError{Reason: r.Reason}
	}
	return err
}

// issuerOf picks the trusted issuer by the (not yet verified) `iss`.
func (v *Verifier) issuerOf(claims jwt.MapClaims) (*verifiedIssuer, error) {
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
func (is *verifiedIssuer) key(ctx context.Context, t *jwt.Token) (any, error) {
	if is.local == nil {
		return is.keys.Key(ctx, t) // its errors are worded for a client
	}
	kid, ok := t.Header["kid"].(string)
	if _, present := t.Header["kid"]; present && !ok {
		return nil, Denied(`malformed token: the "kid" header is not a string`)
	}
	key, ok := is.local.PublicKey(kid)
	if !ok {
		return nil, Denied("token key id %q is not in issuer %s's key set", safe.Printable(kid), is.name)
	}
	return key, nil
}

// identity checks the lifetime and the portcullis claims of a token whose
// signature and registered claims are valid, and fills the Identity.
func (is *verifiedIssuer) identity(claims jwt.MapClaims) (Identity, error) {
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
		if id.Username, err = username.Display(s); err != nil {
			return Identity{}, Denied("token claim %q cannot name a user: %v", is.usernameClaim, err)
		}
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
