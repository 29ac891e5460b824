package service

import (
	"context"

	"github.com/portcullisdb/portcullis/portal"
	"github.com/portcullisdb/portcullis/rbac"
)

// whoami answers `portcullis status`: the token checked by the proxy's
// live verifier, and the role the proxy's live resolver would give a
// connection that names none.
func (s *Service) whoami(ctx context.Context, token string) (portal.WhoAmI, error) {
	live := s.Proxy.Live()
	id, err := live.Verifier.Verify(ctx, token)
	if err != nil {
		return portal.WhoAmI{}, err
	}
	who := portal.WhoAmI{Username: id.Username, Issuer: id.Issuer, ExpiresAt: id.ExpiresAt, Roles: []string{}}
	if r, ok := live.Roles.(*rbac.Resolver); ok {
		roles, err := r.Roles(ctx, id)
		if err != nil {
			return portal.WhoAmI{}, err
		}
		who.Roles = roles
	}
	if g, err := live.Roles.Resolve(ctx, id, ""); err != nil {
		who.DefaultRoleError = err.Error()
	} else {
		who.DefaultRole = g.Role
	}
	return who, nil
}
