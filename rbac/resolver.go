package rbac

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/directory"
	"github.com/portcullisdb/portcullis/store"
)

// Grant is the outcome of a successful resolution: the role and the backend
// account the proxy logs in as for it.
type Grant struct {
	Role            string
	Plan            string // config.PlanStatic or config.PlanEphemeral
	BackendUser     string // static: the account; ephemeral: the account that creates session users
	BackendPassword string
	EndAtExpiry     bool // end the session when its token expires
	// AllowDynamicSQL lets PREPARE ... FROM @v and EXECUTE IMMEDIATE take
	// SQL the statement guard cannot read (roles.<role>.allow_dynamic_sql).
	AllowDynamicSQL bool
	// QueryAudit is the role's query audit (roles.<role>.query_audit).
	QueryAudit config.QueryAudit
}

// Directory is the part of the store the resolver reads: the users and
// groups SCIM keeps, and the teams portcullis configures.
type Directory interface {
	GetUserByName(ctx context.Context, userName string) (store.User, error)
	GetTombstone(ctx context.Context, userName string) (store.Tombstone, error)
	GroupsOfUser(ctx context.Context, userID string) ([]store.Group, error)
	ListTeams(ctx context.Context) ([]store.Team, error)
}

// Resolver maps identities to roles. It is immutable; a config reload
// builds a new one.
type Resolver struct {
	roles    map[string]config.Role
	mappings []config.Mapping
	order    []string
	dir      Directory // nil: tokens are the only source of roles
	// speakers are the external issuers, by config name: each speaks
	// only for the directory users of its own source and its linked
	// directory. portcullis' own tokens (and the dev issuer's) are not
	// among them: the portal checked the source at login.
	speakers map[string]directory.Speaker
}

// NewResolver builds a Resolver from a validated config; dir may be nil.
func NewResolver(cfg *config.Config, dir Directory) *Resolver {
	r := &Resolver{roles: cfg.Roles, mappings: cfg.Mappings, order: cfg.DefaultRoleOrder, dir: dir, speakers: map[string]directory.Speaker{}}
	for _, is := range cfg.Issuers {
		r.speakers[is.Name] = directory.Speaker{Kind: store.SourceIssuer, Name: is.Name,
			Directories: []string{is.DirectoryOrDefault()}, Domains: is.UserDomains}
	}
	return r
}

// Roles lists the configured roles id holds, sorted. For a user the
// directory knows, the directory is the source of truth: roles come from
// the teams of the user's groups and the user's role attribute, and token
// claims are ignored, so a change at the IdP applies at once even to
// unexpired tokens. A deactivated user holds nothing and gets a refusal.
func (r *Resolver) Roles(ctx context.Context, id auth.Identity) ([]string, error) {
	if err := r.checkLogin(ctx, id); err != nil {
		return nil, err
	}
	held := map[string]bool{}
	known, err := r.directoryRoles(ctx, id, held)
	if err != nil {
		return nil, err
	}
	if !known {
		r.tokenRoles(id, held)
	}
	out := make([]string, 0, len(held))
	for name := range held {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

// directoryRoles adds the roles the directory grants; known reports
// whether the directory has the user at all.
func (r *Resolver) directoryRoles(ctx context.Context, id auth.Identity, held map[string]bool) (known bool, err error) {
	if r.dir == nil {
		return false, nil
	}
	u, err := r.dir.GetUserByName(ctx, id.Username)
	if errors.Is(err, store.ErrNotFound) {
		// A name the directory deleted stays refused, whatever the
		// token claims, until the directory provisions it again.
		_, terr := r.dir.GetTombstone(ctx, id.Username)
		switch {
		case terr == nil:
			return true, auth.Denied("%s", directory.Deleted(id.Username))
		case !errors.Is(terr, store.ErrNotFound):
			return true, auth.Denied("the user directory is unavailable, so access cannot be checked: try again shortly")
		}
		return false, nil
	}
	if err != nil {
		// Fail closed: without the directory we cannot tell whether the
		// user was offboarded.
		return true, auth.Denied("the user directory is unavailable, so access cannot be checked: try again shortly")
	}
	if sp, external := r.speakers[id.Issuer]; external {
		if err := directory.SpeaksFor(sp, u); err != nil {
			return true, auth.Denied("%s", err)
		}
	}
	if err := directory.CheckToken(u, id.IssuedAt); err != nil {
		return true, auth.Denied("%s", err)
	}
	if !u.Active {
		return true, auth.Denied("%s is deactivated in the directory", id.Username)
	}
	if _, ok := r.roles[u.Role]; ok {
		held[u.Role] = true
	}
	groups, err := r.dir.GroupsOfUser(ctx, u.ID)
	if err != nil {
		return true, auth.Denied("the user directory is unavailable, so access cannot be checked: try again shortly")
	}
	teams, err := r.dir.ListTeams(ctx)
	if err != nil {
		return true, auth.Denied("the user directory is unavailable, so access cannot be checked: try again shortly")
	}
	for _, t := range teams {
		if slices.ContainsFunc(groups, func(g store.Group) bool {
			return slices.ContainsFunc(t.Groups, func(name string) bool { return strings.EqualFold(name, g.DisplayName) })
		}) {
			for _, role := range t.Roles {
				if _, ok := r.roles[role]; ok {
					held[role] = true
				}
			}
		}
	}
	return true, nil
}

// tokenRoles adds the roles the token's claims grant.
func (r *Resolver) tokenRoles(id auth.Identity, held map[string]bool) {
	for _, name := range id.Roles {
		if _, ok := r.roles[name]; ok {
			held[name] = true
		}
	}
	for _, m := range r.mappings {
		if m.Issuer != id.Issuer {
			continue
		}
		if len(m.Groups) > 0 && !slices.ContainsFunc(m.Groups, func(g string) bool { return slices.Contains(id.Groups, g) }) {
			continue
		}
		for _, name := range m.Roles {
			held[name] = true
		}
	}
}

// Resolve picks the role for a connection; requested is the part of the
// MySQL user name after "/", or "". Refusals are *auth.DeniedError.
func (r *Resolver) Resolve(ctx context.Context, id auth.Identity, requested string) (Grant, error) {
	held, err := r.Roles(ctx, id)
	if err != nil {
		return Grant{}, err
	}
	if requested != "" {
		if _, ok := r.roles[requested]; !ok {
			return Grant{}, auth.Denied("no role %q is configured in portcullis", requested)
		}
		if !slices.Contains(held, requested) {
			return Grant{}, auth.Denied("no role %q for %s (holds: %s)", requested, id.Username, list(held))
		}
		return r.grant(requested), nil
	}
	if len(held) == 0 {
		return Grant{}, auth.Denied("%s holds no role: no team, role attribute, claim or mapping of issuer %s grants one", id.Username, id.Issuer)
	}
	for _, name := range r.order {
		if slices.Contains(held, name) {
			return r.grant(name), nil
		}
	}
	if len(held) == 1 {
		return r.grant(held[0]), nil
	}
	return Grant{}, auth.Denied("%s holds several roles (%s): connect as %s/ROLE to pick one", id.Username, list(held), id.Username)
}

func (r *Resolver) grant(role string) Grant {
	c := r.roles[role]
	return Grant{Role: role, Plan: c.Plan, BackendUser: c.BackendUser, BackendPassword: c.BackendPassword.Value(), EndAtExpiry: c.EndAtTokenExpiry, AllowDynamicSQL: c.AllowDynamicSQL, QueryAudit: c.QueryAudit}
}

func list(roles []string) string {
	if len(roles) == 0 {
		return "none"
	}
	return strings.Join(roles, ", ")
}
