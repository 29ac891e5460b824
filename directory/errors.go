package directory

import (
	"errors"
	"fmt"
)

// Error kinds; an *Error unwraps to one of them, and store errors keep
// their store sentinel (store.ErrNotFound, store.ErrConflict,
// store.ErrVersionMismatch) so callers test with errors.Is.
var (
	// ErrInvalid: the value cannot be kept (an unknown role); Reason
	// says what is allowed.
	ErrInvalid = errors.New("invalid")
	// ErrForbidden: the actor may not make this change (another source's
	// user, an administrator grant from a directory attribute).
	ErrForbidden = errors.New("forbidden")
	// ErrDeleted: the user name was deleted from the directory.
	ErrDeleted = errors.New("deleted from the directory")
	// ErrInactive: the user is deactivated.
	ErrInactive = errors.New("deactivated")
)

// Error is a refusal with a reason a person can act on.
type Error struct {
	Kind   error
	Reason string
}

func (e *Error) Error() string { return e.Reason }
func (e *Error) Unwrap() error { return e.Kind }

func refuse(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}
