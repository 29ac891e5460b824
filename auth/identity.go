package auth

import (
	"fmt"
	"time"
)

// Identity is who a verified token says the caller is.
type Identity struct {
	Issuer    string    // the config name of the issuer that vouched, e.g. "corp"
	IssuerURL string    // the token's `iss`
	Subject   string    // `sub`
	Username  string    // the username claim, trimmed and checked by auth/username; the MySQL user name must match it (username.Equal)
	Groups    []string  // from the issuer's groups_claim
	Roles     []string  // from the issuer's roles_claim
	ExpiresAt time.Time // `exp`
	TokenID   string    // `jti`, when present
}

// DeniedError is a refusal with a reason a person can act on. It never
// carries the token or any key material. The proxy turns it into MySQL
// error 1045.
type DeniedError struct {
	Reason string
}

func (e *DeniedError) Error() string { return e.Reason }

// Denied returns a *DeniedError with a formatted reason.
func Denied(format string, args ...any) error {
	return &DeniedError{Reason: fmt.Sprintf(format, args...)}
}
