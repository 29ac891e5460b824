package portal

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WhoAmI is what GET /v1/whoami tells the holder of a token about it:
// the identity the proxy sees and the role its next connection gets.
type WhoAmI struct {
	Username  string    `json:"username"`
	Issuer    string    `json:"issuer"`
	ExpiresAt time.Time `json:"expires_at"`
	// Roles are the roles the identity holds now (directory or claims).
	Roles []string `json:"roles"`
	// DefaultRole is the role a connection without identity/role gets;
	// empty with DefaultRoleError saying why (several roles, none).
	DefaultRole      string `json:"default_role,omitempty"`
	DefaultRoleError string `json:"default_role_error,omitempty"`
}

// WhoAmIFunc verifies token as the proxy would and resolves its roles;
// a refusal is an error with a message for the token's holder.
type WhoAmIFunc func(ctx context.Context, token string) (WhoAmI, error)

// mountWhoAmI serves GET /v1/whoami (Authorization: Bearer <token>) for
// `portcullis status`. Refused tokens count against the address's
// failure budget, as at the token endpoint.
func (s *Server) mountWhoAmI(f WhoAmIFunc) {
	if f == nil {
		return
	}
	s.mux.HandleFunc("GET /v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		ip := clientIP(r)
		if wait, ok := s.limiter.Allow(ip); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			oauthError(w, http.StatusTooManyRequests, "slow_down", "too many refused requests from this address: retry later")
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			s.limiter.Failed(ip)
			oauthError(w, http.StatusUnauthorized, "invalid_token", "send the access token as Authorization: Bearer <token>")
			return
		}
		who, err := f(r.Context(), token)
		if err != nil {
			s.limiter.Failed(ip)
			oauthError(w, http.StatusUnauthorized, "invalid_token", err.Error())
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, who)
	})
}
