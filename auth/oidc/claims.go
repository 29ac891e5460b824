package oidc

import (
	"context"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/portcullisdb/portcullis/auth/username"
)

// identity reads who logged in from the ID token's claims. When the ID
// token lacks the user-name claim (many IdPs put profile claims only in
// userinfo), the userinfo endpoint is asked, and its answer is used only
// if it is about the same subject.
func (rp *RP) identity(ctx context.Context, pr *provider, idt *gooidc.IDToken, tok *oauth2.Token) (Identity, error) {
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, refused("the ID token's claims cannot be read: %v", err)
	}
	claimName := rp.cfg.UsernameClaim
	if _, ok := claims[claimName].(string); !ok && pr.p.UserInfoEndpoint() != "" {
		if ui, err := pr.p.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil && ui.Subject == idt.Subject {
			extra := map[string]any{}
			if ui.Claims(&extra) == nil {
				for k, v := range extra {
					if _, set := claims[k]; !set {
						claims[k] = v
					}
				}
			}
		}
	}
	id := Identity{
		Subject:     idt.Subject,
		Email:       str(claims["email"]),
		DisplayName: str(claims["name"]),
		GivenName:   str(claims["given_name"]),
		FamilyName:  str(claims["family_name"]),
		Attributes:  flatten(claims),
	}
	raw := str(claims[claimName])
	if strings.TrimSpace(raw) == "" {
		return Identity{}, refused("the IdP sent no %q claim for connection %s: release it to portcullis (scope email or profile), or set oidc.username_claim",
			claimName, rp.cfg.Name)
	}
	var err error
	if id.Username, err = username.Display(raw); err != nil {
		return Identity{}, refused("the IdP's claim %q cannot be a portcullis user name: %v (fix it at the IdP, or set oidc.username_claim)", claimName, err)
	}
	if id.Email != "" {
		if _, err := username.Normalize(id.Email); err != nil {
			return Identity{}, refused("the IdP's email claim cannot be used: %v (fix the address at the IdP)", err)
		}
	}
	if strings.ContainsAny(id.Username, "/ \t\r\n") {
		return Identity{}, refused("the user name %q from claim %q holds \"/\" or whitespace, which MySQL user names here cannot", id.Username, claimName)
	}
	if claimName == "email" && !rp.cfg.AllowUnverifiedEmail && !truthy(claims["email_verified"]) {
		return Identity{}, refused("the IdP does not say %s is verified (email_verified is not true): verify the address at the IdP, or use another username_claim", id.Username)
	}
	return id, nil
}

// str is v if it is a string.
func str(v any) string {
	s, _ := v.(string)
	return s
}

// truthy accepts true and "true" (some IdPs send booleans as strings).
func truthy(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(b, "true")
	}
	return false
}

// flatten keeps the string and string-list claims.
func flatten(claims map[string]any) map[string][]string {
	out := map[string][]string{}
	for k, v := range claims {
		switch x := v.(type) {
		case string:
			out[k] = []string{x}
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					out[k] = append(out[k], s)
				}
			}
		}
	}
	return out
}
