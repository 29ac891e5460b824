package scim

import (
	"fmt"
	"net/http"
)

// scimType values (RFC 7644 §3.12).
const (
	invalidFilter = "invalidFilter"
	tooMany       = "tooMany"
	uniqueness    = "uniqueness"
	mutability    = "mutability"
	invalidSyntax = "invalidSyntax"
	invalidPath   = "invalidPath"
	noTarget      = "noTarget"
	invalidValue  = "invalidValue"
	invalidVers   = "invalidVers"
)

// scimError is a failure the client sees as a SCIM error response: every
// request that fails leaves through writeError with one of these.
type scimError struct {
	status   int
	scimType string // "" when RFC 7644 defines none for the status
	detail   string
	badToken bool     // 401: a token was sent but is not valid
	allow    []string // 405: the methods allowed
}

func (e *scimError) Error() string {
	if e.scimType == "" {
		return fmt.Sprintf("%d: %s", e.status, e.detail)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.scimType, e.detail)
}

func errorf(status int, scimType, format string, args ...any) *scimError {
	return &scimError{status: status, scimType: scimType, detail: fmt.Sprintf(format, args...)}
}

func badRequest(scimType, format string, args ...any) *scimError {
	return errorf(http.StatusBadRequest, scimType, format, args...)
}

func (e *scimError) body() map[string]any {
	b := map[string]any{
		"schemas": []string{urnError},
		"status":  fmt.Sprint(e.status),
		"detail":  e.detail,
	}
	if e.scimType != "" {
		b["scimType"] = e.scimType
	}
	return b
}
