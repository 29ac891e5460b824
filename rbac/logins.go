package rbac

import (
	"context"
	"errors"
	"time"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/store"
)

// loginChecker is the part of the store that knows ended logins; the
// resolver uses it when its Directory has it.
type loginChecker interface {
	LoginEnded(ctx context.Context, loginID, userName string, issuedAt time.Time) (store.LoginEnd, error)
}

// LoginEnded implements loginChecker, always from the store: ending a
// login takes effect at the next connection, cache or not.
func (c *DirectoryCache) LoginEnded(ctx context.Context, loginID, userName string, issuedAt time.Time) (store.LoginEnd, error) {
	lc, ok := c.dir.(loginChecker)
	if !ok {
		return store.LoginEnd{}, store.ErrNotFound
	}
	return lc.LoginEnded(ctx, loginID, userName, issuedAt)
}

// checkLogin refuses a token whose login ended (logout, refresh-token or
// code reuse) or whose user's logins an administrator, a disabled IdP
// connection or `portcullis tokens revoke` ended after it was issued.
func (r *Resolver) checkLogin(ctx context.Context, id auth.Identity) error {
	lc, ok := r.dir.(loginChecker)
	if !ok {
		return nil
	}
	e, err := lc.LoginEnded(ctx, id.LoginID, id.Username, id.IssuedAt)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return auth.Denied("the user directory is unavailable, so access cannot be checked: try again shortly")
	case e.LoginID != "":
		return auth.Denied("this token's login was ended (%s): run portcullis login for a new one", e.Reason)
	default:
		return auth.Denied("the logins of %s were ended at %s (%s): log in again for a new token", id.Username, e.At.Format(time.RFC3339), e.Reason)
	}
}
