package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// WhoAmI is the portal's view of a token: who it is for and the role the
// next connection without identity/role gets.
type WhoAmI struct {
	Username         string    `json:"username"`
	Issuer           string    `json:"issuer"`
	ExpiresAt        time.Time `json:"expires_at"`
	Roles            []string  `json:"roles"`
	DefaultRole      string    `json:"default_role,omitempty"`
	DefaultRoleError string    `json:"default_role_error,omitempty"`
}

// AskWhoAmI asks the portal at server what it makes of the token e.
func AskWhoAmI(ctx context.Context, server string, e Entry) (WhoAmI, error) {
	var who WhoAmI
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+"/v1/whoami", nil)
	if err != nil {
		return who, fmt.Errorf("server %q: %w", server, err)
	}
	req.Header.Set("Authorization", "Bearer "+e.AccessToken)
	resp, err := httpClient.Do(req)
	if err != nil {
		return who, fmt.Errorf("reach portcullis at %s: %w", server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return who, fmt.Errorf("portcullis at %s is too old to answer /v1/whoami", server)
	}
	if resp.StatusCode != http.StatusOK {
		var body struct {
			Description string `json:"error_description"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
		return who, fmt.Errorf("portcullis at %s refused the token (%s): %s", server, resp.Status, body.Description)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&who); err != nil {
		return who, fmt.Errorf("portcullis at %s sent a bad whoami answer: %w", server, err)
	}
	return who, nil
}
