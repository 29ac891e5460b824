package cloud

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/internal/jwks"
	"github.com/portcullisdb/portcullis/auth/internal/safe"
)

// Limits of the subject tokens themselves.
const (
	maxJWTBytes = 16 << 10         // platform JWTs are 1-3 KB; longer ones are refused unparsed
	clockLeeway = 30 * time.Second // allowed clock skew for exp, nbf and iat
)

// jwtRules are the checks of one kind of platform JWT.
type jwtRules struct {
	name      string   // "Google", "Entra ID tenant <tid>", "AWS STS"
	issuers   []string // accepted `iss` values
	audience  string
	algs      []string
	keys      *jwks.Set
	parser    *jwt.Parser
	validator *jwt.Validator
}

func newJWTRules(name string, issuers []string, audience string, algs []string, keys *jwks.Set) *jwtRules {
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
		if kid, _ := t.Header["kid"].(string); kid == "" {
			return nil, auth.Denied(`malformed token: no "kid" header: %s tokens name their signing key`, r.name)
		}
		key, err := r.keys.Key(ctx, t)
		if err != nil {
			return nil, &auth.DeniedError{Reason: err.Error()} // worded for a client by package jwks
		}
		return key, nil
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
