package cloud

import (
	"context"
	"errors"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/internal/jwks"
	"github.com/portcullisdb/portcullis/auth/internal/jwtcheck"
)

// maxJWTBytes bounds a platform JWT (they are 1-3 KB); longer ones are
// refused unparsed.
const maxJWTBytes = 16 << 10

// platformTokenShape bounds the platform tokens workloads exchange.
var platformTokenShape = jwtcheck.Shape{MaxBytes: maxJWTBytes, Empty: "empty subject token"}

// newPlatformIssuer is the checks of one platform's tokens (Google, an
// Entra ID tenant): the one JWT checker's, with the platform's keys. A
// platform always names its signing key, so "kid" is required.
func newPlatformIssuer(name string, issuers []string, audience string, algs []string, keys *jwks.Set) *jwtcheck.VerifiedIssuer {
	return jwtcheck.NewVerifiedIssuer(name, issuers, []string{audience}, algs, true, keys.Key)
}

// verifyPlatformJWT checks token with the one JWT checker, the issuer
// picked by pick, and returns its verified claims. Every refusal is a
// *auth.DeniedError.
func verifyPlatformJWT(ctx context.Context, token string, pick func(unverified jwt.MapClaims) (*jwtcheck.VerifiedIssuer, error)) (jwt.MapClaims, error) {
	claims, _, err := jwtcheck.Check(ctx, token, platformTokenShape, pick)
	if err != nil {
		var r *jwtcheck.Refusal
		if errors.As(err, &r) {
			return nil, &auth.DeniedError{Reason: r.Reason}
		}
		return nil, err
	}
	return claims, nil
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
