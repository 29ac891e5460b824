package rbac

import (
	"slices"
	"sort"
	"strings"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
)

// Grant is the outcome of a successful resolution: the role and the backend
// account the proxy logs in as for it.
type Grant struct {
	Role            string
	BackendUser     string
	BackendPassword string
}

// Resolver maps identities to roles. It is immutable; a config reload
// builds a new one.
type Resolver struct {
	roles    map[string]config.Role
	mappings []config.Mapping
	order    []string
}

// NewResolver builds a Resolver from a validated config.
func NewResolver(cfg *config.Config) *Resolver {
	return &Resolver{roles: cfg.Roles, mappings: cfg.Mappings, order: cfg.DefaultRoleOrder}
}

// Roles lists the configured roles id holds, sorted.
func (r *Resolver) Roles(id auth.Identity) []string {
	held := map[string]bool{}
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
	out := make([]string, 0, len(held))
	for name := range held {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Resolve picks the role for a connection; requested is the part of the
// MySQL user name after "/", or "". Refusals are *auth.DeniedError.
func (r *Resolver) Resolve(id auth.Identity, requested string) (Grant, error) {
	held := r.Roles(id)
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
		return Grant{}, auth.Denied("%s holds no role: the token's groups and roles match no mapping of issuer %s", id.Username, id.Issuer)
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
	return Grant{Role: role, BackendUser: c.BackendUser, BackendPassword: c.BackendPassword.Value()}
}

func list(roles []string) string {
	if len(roles) == 0 {
		return "none"
	}
	return strings.Join(roles, ", ")
}
