package jwtcheck

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth/internal/jwks"
	"github.com/portcullisdb/portcullis/auth/internal/safe"
)

// Leeway is the clock skew allowed for exp, nbf and iat.
const Leeway = 30 * time.Second

// Refusal is a token refused, with a reason fit for the client.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

// Refuse returns a *Refusal with a formatted reason.
func Refuse(format string, args ...any) error {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// VerifiedIssuer is one issuer whose tokens we verify (never one we sign
// as), with what its tokens must carry.
type VerifiedIssuer struct {
	// Name says the issuer in reasons: "issuer corp", "Google",
	// "Entra ID tenant <tid>".
	Name      string
	Issuers   []string // the accepted `iss` values
	Audiences []string // `aud` must hold one of them
	Algs      []string // the algorithms its tokens may be signed with; a subset of jwks.Algs
	// RequireKID refuses tokens without a "kid" header (platforms always
	// name their key; an IdP's token without one is tried against every
	// key of its set).
	RequireKID bool
	// Key returns the key (or jwt.VerificationKeySet) that should have
	// signed t; its errors are worded for a client.
	Key func(ctx context.Context, t *jwt.Token) (any, error)

	validator *jwt.Validator
}

// NewVerifiedIssuer builds an issuer's checks. Algorithms outside
// jwks.Algs are dropped: no issuer ever gets a symmetric algorithm.
func NewVerifiedIssuer(name string, issuers, audiences, algs []string, requireKID bool, key func(context.Context, *jwt.Token) (any, error)) *VerifiedIssuer {
	algs = slices.DeleteFunc(slices.Clone(algs), func(a string) bool { return !slices.Contains(jwks.Algs, a) })
	return &VerifiedIssuer{
		Name: name, Issuers: slices.Clone(issuers), Audiences: slices.Clone(audiences), Algs: algs,
		RequireKID: requireKID, Key: key,
		validator: jwt.NewValidator(
			jwt.WithAudience(audiences...),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(Leeway),
		),
	}
}

// Shape is how a caller's tokens are bounded and what an empty one means.
type Shape struct {
	MaxBytes int    // longer tokens are refused unparsed
	Empty    string // the reason for an empty token
}

// Check verifies token: pick chooses the trusted issuer from the claims
// (not yet verified), and the rest is checked against it. It returns the
// verified claims and the issuer. Every error is a *Refusal.
func Check(ctx context.Context, token string, shape Shape, pick func(unverified jwt.MapClaims) (*VerifiedIssuer, error)) (jwt.MapClaims, *VerifiedIssuer, error) {
	switch {
	case token == "":
		return nil, nil, &Refusal{Reason: shape.Empty}
	case len(token) > shape.MaxBytes:
		return nil, nil, Refuse("token too large: %d bytes, the limit is %d", len(token), shape.MaxBytes)
	case strings.Count(token, ".") != 2:
		return nil, nil, Refuse("malformed token: not a JWT")
	}
	// One parse: the header and claims are decoded before the key is
	// looked up, so crit, the issuer and its algorithms are checked in
	// the key function. A token the parser refuses before (no alg, an
	// unknown or symmetric one) is worded in refused.
	claims := jwt.MapClaims{}
	var is *VerifiedIssuer
	tok, err := parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if err := checkHeader(t); err != nil {
			return nil, err
		}
		picked, err := pick(claims)
		if err != nil {
			return nil, refusal(err)
		}
		is = picked
		if err := is.checkAlg(t); err != nil {
			return nil, err
		}
		key, err := is.Key(ctx, t)
		if err != nil {
			return nil, refusal(err)
		}
		return key, nil
	})
	if err != nil {
		return nil, is, refused(tok, claims, is, err, pick)
	}
	iss, _ := claims["iss"].(string)
	if !slices.Contains(is.Issuers, iss) {
		if iss == "" {
			return nil, is, Refuse(`token has no "iss" claim: %s tokens name their issuer`, is.Name)
		}
		return nil, is, Refuse("token issuer %q is not trusted for %s: it must be %s", safe.Printable(iss), is.Name, strings.Join(is.Issuers, " or "))
	}
	if err := is.validator.Validate(claims); err != nil {
		return nil, is, is.claimsDenial(claims, err)
	}
	return claims, is, nil
}

// parser checks signatures for every issuer: asymmetric algorithms only
// (each issuer narrows them in checkAlg); the claims are validated after,
// by the issuer's validator.
var parser = jwt.NewParser(jwt.WithValidMethods(jwks.Algs), jwt.WithoutClaimsValidation())

// checkHeader refuses a header naming critical extensions: none is
// understood here (RFC 7515 §4.1.11).
func checkHeader(t *jwt.Token) error {
	if crit, ok := t.Header["crit"]; ok {
		return Refuse(`token header has "crit" %v: no critical extension is understood here, so the token is refused (RFC 7515 section 4.1.11)`,
			safe.PrintableList(critNames(crit)))
	}
	return nil
}

// checkAlg refuses an algorithm the issuer does not sign with, and a
// token without "kid" where the issuer always names its key.
func (is *VerifiedIssuer) checkAlg(t *jwt.Token) error {
	alg, _ := t.Header["alg"].(string)
	switch {
	case alg == "":
		return Refuse(`malformed token: no "alg" header: %s`, is.algList())
	case t.Method == nil || !slices.Contains(is.Algs, alg) || t.Method.Alg() != alg:
		return Refuse("token algorithm %q is not allowed for %s tokens: %s", safe.Printable(alg), is.Name, is.algList())
	}
	if _, present := t.Header["kid"]; is.RequireKID && !present {
		return Refuse(`malformed token: no "kid" header: %s tokens name their signing key`, is.Name)
	}
	return nil
}

// refused words a failed parse. When the parser refused the token before
// the key function ran (its alg), the header and claims are decoded all
// the same, so the refusal names the issuer and its algorithms.
func refused(tok *jwt.Token, claims jwt.MapClaims, is *VerifiedIssuer, err error, pick func(jwt.MapClaims) (*VerifiedIssuer, error)) error {
	var r *Refusal
	switch {
	case errors.As(err, &r):
		return r
	case tok == nil || errors.Is(err, jwt.ErrTokenMalformed):
		return Refuse("malformed token: not a JWT")
	}
	if is == nil { // the key function never ran
		if err := checkHeader(tok); err != nil {
			return err
		}
		picked, perr := pick(claims)
		if perr != nil {
			return refusal(perr)
		}
		if aerr := picked.checkAlg(tok); aerr != nil {
			return aerr
		}
		is = picked
	}
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		return Refuse("token signature is invalid for %s", is.Name)
	}
	return Refuse("token signature could not be checked for %s", is.Name)
}

// critNames reads a crit header for a reason.
func critNames(v any) []string {
	list, ok := v.([]any)
	if !ok {
		return []string{fmt.Sprintf("%T", v)}
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// refusal keeps a *Refusal and words any other error as one: the key
// lookups' errors are written for a client.
func refusal(err error) error {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	return &Refusal{Reason: err.Error()}
}

func (is *VerifiedIssuer) algList() string {
	if len(is.Algs) == len(jwks.Algs) {
		return jwks.AlgList
	}
	return "only " + strings.Join(is.Algs, ", ")
}

// claimsDenial words why the registered claims failed validation. When
// several fail, the one most likely to be the real problem is named.
func (is *VerifiedIssuer) claimsDenial(claims jwt.MapClaims, err error) error {
	now := time.Now()
	exp, expErr := claims.GetExpirationTime()
	nbf, nbfErr := claims.GetNotBefore()
	iat, iatErr := claims.GetIssuedAt()
	aud, audErr := claims.GetAudience()
	switch {
	case expErr != nil:
		return Refuse(`token claim "exp" is not a NumericDate`)
	case nbfErr != nil:
		return Refuse(`token claim "nbf" is not a NumericDate`)
	case iatErr != nil:
		return Refuse(`token claim "iat" is not a NumericDate`)
	case audErr != nil:
		return Refuse(`token claim "aud" is not a string or an array of strings`)
	case exp == nil:
		return Refuse(`token has no "exp" claim: tokens that never expire are refused`)
	case errors.Is(err, jwt.ErrTokenExpired):
		return Refuse("token expired %s ago (%s): get a fresh one", safe.HumanDuration(now.Sub(exp.Time)), is.Name)
	case errors.Is(err, jwt.ErrTokenNotValidYet) && nbf != nil:
		return Refuse("token not valid for another %s (%s)", safe.HumanDuration(nbf.Sub(now)), is.Name)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued) && iat != nil:
		return Refuse("token issued %s in the future: check the clocks of this host and of %s", safe.HumanDuration(iat.Sub(now)), is.Name)
	case len(aud) == 0 || len(aud) == 1 && aud[0] == "":
		return Refuse(`token has no "aud" claim: request it for one of %v`, is.Audiences)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return Refuse("token audience %v does not include any of %v: request the token for one of them (a token minted for another service is refused)",
			safe.PrintableList(aud), is.Audiences)
	default:
		return Refuse("token claims are not valid for %s", is.Name)
	}
}
