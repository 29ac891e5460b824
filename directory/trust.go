package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/store"
)

// Speaker is an identity source that vouches for users: an SSO
// connection (a login) or an external token issuer (a token). It speaks
// for the users of its own source, for those of the SCIM directories the
// config links to it, and (an SSO connection with local_accounts) for
// local accounts; never, by default, for a local account, and an issuer
// never for one. Domains, when set, bound all of it to user names in
// those domains.
type Speaker struct {
	Kind          string   // store.SourceSSO or store.SourceIssuer
	Name          string   // the connection or issuer
	Directories   []string // SCIM connections whose users it speaks for
	Domains       []string // user-name domains (after "@"); empty: any
	LocalAccounts bool     // SSO only: may speak for local accounts
}

func (sp Speaker) String() string {
	if sp.Kind == store.SourceIssuer {
		return "issuer " + sp.Name
	}
	return "SSO connection " + sp.Name
}

// describe names a user's source for a refusal.
func describe(u store.User) string {
	switch u.Source {
	case store.SourceSCIM:
		return "SCIM connection " + u.SourceName
	case store.SourceSSO:
		return "SSO connection " + u.SourceName
	case store.SourceIssuer:
		return "issuer " + u.SourceName
	case store.SourceLocal:
		if u.Role == AdminRole {
			return "the local accounts (an administrator)"
		}
		return "the local accounts"
	}
	return u.Source + " " + u.SourceName
}

// domainOK reports whether name is in one of domains (any when none).
func domainOK(domains []string, name string) bool {
	if len(domains) == 0 {
		return true
	}
	_, dom, ok := strings.Cut(name, "@")
	return ok && slices.ContainsFunc(domains, func(d string) bool { return strings.EqualFold(d, dom) })
}

// SpeaksFor refuses (ErrForbidden) a speaker vouching for a user of
// another source; the reason names both.
func SpeaksFor(sp Speaker, u store.User) error {
	if !domainOK(sp.Domains, u.UserName) {
		return refuse(ErrForbidden, "%s is outside the user-name domains of %s (%s)", u.UserName, sp, strings.Join(sp.Domains, ", "))
	}
	switch {
	case u.Source == sp.Kind && u.SourceName == sp.Name:
		return nil
	case u.Source == store.SourceSCIM && slices.Contains(sp.Directories, u.SourceName):
		return nil
	case u.Source == store.SourceLocal && sp.Kind == store.SourceSSO && sp.LocalAccounts:
		return nil
	case u.SourceName == "" && (u.Source == store.SourceSCIM || u.Source == store.SourceSSO) && sp.Kind == store.SourceSSO:
		// Recorded before sources were (an upgrade): an SSO connection
		// may log such a person in, and so adopt them; an issuer (a
		// workload's, a pipeline's) may not speak for them.
		return nil
	}
	hint := "link it in the config (directory:, user_domains:) if it should"
	if u.Source == store.SourceLocal {
		hint = "no external issuer or IdP speaks for a local account unless an SSO connection sets local_accounts: true"
	}
	return refuse(ErrForbidden, "%s belongs to %s; %s does not speak for it (%s)", u.UserName, describe(u), sp, hint)
}

// Deleted is the refusal of a name the directory deleted.
func Deleted(name string) error {
	return refuse(ErrDeleted, "%s was deleted from the directory", name)
}

// CheckToken refuses a token for u issued at issuedAt when the user was
// provisioned again after a deletion (tokens from before stay refused).
func CheckToken(u store.User, issuedAt time.Time) error {
	if !u.NotBefore.IsZero() && (issuedAt.IsZero() || issuedAt.Before(u.NotBefore)) {
		return refuse(ErrDeleted, "%s was deleted from the directory and provisioned again at %s: log in again for a new token",
			u.UserName, u.NotBefore.Format(time.RFC3339))
	}
	return nil
}

// Login is what an SSO connection asserts at a login.
type Login struct {
	UserName, DisplayName, GivenName, FamilyName, Email string
	Role                                                string // from role_claim; used only when SetRole
	SetRole                                             bool
	RequireSCIM                                         bool // admit only users a directory provisioned
}

// SSOLogin finds or creates (just in time) the user an SSO login is for,
// refusing a user the connection does not speak for, a deactivated or
// deleted one, and applies the login's role. The role claim neither
// grants nor removes the administrator role.
func (d *Directory) SSOLogin(ctx context.Context, sp Speaker, l Login) (store.User, error) {
	a := Actor{Kind: ActorSSO, Name: sp.Name}
	role := l.Role
	if role == AdminRole || d.CheckRole(a, role) != nil {
		if l.SetRole && role != "" {
			d.log.Warn("directory: role claim names no configured database role; ignored", "connection", sp.Name, "user", l.UserName, "role", role)
		}
		role = ""
	}
	var u store.User
	_, err := d.update(ctx, a, func(t *tx) error {
		var err error
		u, err = t.GetUserByName(ctx, l.UserName)
		if errors.Is(err, store.ErrNotFound) {
			if _, terr := t.GetTombstone(ctx, l.UserName); terr == nil {
				return Deleted(l.UserName)
			} else if !errors.Is(terr, store.ErrNotFound) {
				return terr
			}
			if l.RequireSCIM {
				return refuse(ErrForbidden, "%s is not provisioned in portcullis: connection %s admits only users the directory sync (SCIM) created; ask an administrator to assign you the portcullis application at the IdP",
					l.UserName, sp.Name)
			}
			if !domainOK(sp.Domains, l.UserName) {
				return refuse(ErrForbidden, "%s is outside the user-name domains of %s (%s)", l.UserName, sp, strings.Join(sp.Domains, ", "))
			}
			nu := store.User{UserName: l.UserName, DisplayName: l.DisplayName, GivenName: l.GivenName, FamilyName: l.FamilyName,
				Active: true, Source: store.SourceSSO, SourceName: sp.Name}
			if l.SetRole {
				nu.Role = role
			}
			if l.Email != "" {
				nu.Emails = []store.Email{{Value: l.Email, Primary: true}}
			}
			u, err = t.CreateUser(ctx, nu)
			if err == nil {
				d.log.Info("directory: user created at first SSO login", "connection", sp.Name, "user", u.UserName, "user_id", u.ID, "role", u.Role)
			}
			return err
		}
		if err != nil {
			return err
		}
		if err := SpeaksFor(sp, u); err != nil {
			return err
		}
		if !u.Active {
			return refuse(ErrInactive, "%s is deactivated in portcullis' directory: ask an administrator", u.UserName)
		}
		if !l.SetRole || u.Role == role || u.Role == AdminRole {
			return nil
		}
		old := u
		u.Role = role
		if u, err = t.UpdateUser(ctx, u, old.Version); err != nil {
			return err
		}
		return t.event(ctx, store.EventUserRolesChanged, u, fmt.Sprintf("role from login: %q -> %q", old.Role, role))
	})
	return u, err
}
