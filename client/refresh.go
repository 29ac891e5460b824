package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Refresh renews the cached `portcullis login` token of o.Server with its
// refresh token (rotated: the new one replaces it in the cache). It
// returns ok=false when there is no login to renew. While the old access
// token still has a minute left, a portal or IdP that cannot be reached
// costs nothing: the old token is returned.
func Refresh(ctx context.Context, o Options) (e Entry, ok bool, err error) {
	cached, found := o.Cache.Get(o.Server, MethodLogin)
	if !found || cached.RefreshToken == "" {
		return Entry{}, false, nil
	}
	stillValid := time.Until(cached.ExpiresAt) > time.Minute
	d, err := Discover(ctx, o.Server)
	if err != nil {
		if stillValid {
			return cached, true, nil
		}
		return Entry{}, true, err
	}
	tr, err := postToken(ctx, d.TokenEndpoint, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cached.RefreshToken}})
	var te *TokenError
	switch {
	case errors.As(err, &te) && te.Code == "invalid_grant":
		// The login is over (expired, revoked, user disabled at the
		// IdP): forget the refresh token, keep nothing that cannot work.
		o.Cache.Delete(o.Server, MethodLogin)
		return Entry{}, true, fmt.Errorf("your login to %s ended: %s; run portcullis login", o.Server, te.Description)
	case err != nil && stillValid:
		return cached, true, nil
	case err != nil:
		return Entry{}, true, fmt.Errorf("renew your login to %s: %w", o.Server, err)
	}
	e = tr.entry(o.Server)
	if e.Connection == "" {
		e.Connection = cached.Connection
	}
	if e.SessionEnds.IsZero() && e.RefreshToken != "" {
		e.SessionEnds = cached.SessionEnds
	}
	if err := o.Cache.Put(e); err != nil {
		return Entry{}, true, err
	}
	return e, true, nil
}

// Logout revokes the cached login of server at the portal (its refresh
// token and every token rotated from it) and forgets it. Access tokens
// already issued stay valid until they expire (minutes).
func Logout(ctx context.Context, server string, cache *Cache) (Entry, bool, error) {
	e, found := cache.Get(server, MethodLogin)
	if !found {
		return Entry{}, false, nil
	}
	if e.RefreshToken != "" {
		form := url.Values{"token": {e.RefreshToken}, "token_type_hint": {"refresh_token"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(server, "/")+"/v1/revoke", strings.NewReader(form.Encode()))
		if err != nil {
			return e, true, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := httpClient.Do(req)
		if err != nil {
			return e, true, fmt.Errorf("reach portcullis at %s to sign out: %w (the login is still cached; retry)", server, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return e, true, fmt.Errorf("portcullis at %s answered %s to the sign-out (the login is still cached; retry)", server, resp.Status)
		}
	}
	return e, true, cache.Delete(server, MethodLogin)
}

// Delete forgets the entry of server obtained by method.
func (c *Cache) Delete(server, method string) error {
	m, err := c.load()
	if err != nil {
		return err
	}
	if _, ok := m[key(server, method)]; !ok {
		return nil
	}
	delete(m, key(server, method))
	return c.save(m)
}
