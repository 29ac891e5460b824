package portal

import (
	"net/http"

	"github.com/portcullisdb/portcullis/audit"
)

// SSOOptions configure browser login: OIDC and SAML connections, the
// one-time codes and refresh tokens of portcullis' own sessions.
type SSOOptions struct{}

// mountSSO registers the SSO routes; nil options leave them off.
func (s *Server) mountSSO(o *SSOOptions) {}

// tokenSSO handles the authorization_code and refresh_token grants.
func (s *Server) tokenSSO(w http.ResponseWriter, r *http.Request, ip, grant string) {
	s.fail(w, ip, http.StatusBadRequest, "unsupported_grant_type", "browser login is not configured on this server (sso: in its config)", audit.Event{})
}
