package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Entry is one cached token, per portal.
type Entry struct {
	Server      string    `json:"server"`
	AccessToken string    `json:"access_token"`
	Username    string    `json:"username"`
	Method      string    `json:"method"` // aws | azure | gcp | login
	IssuedAt    time.Time `json:"issued_at"`
	ExpiresAt   time.Time `json:"expires_at"`

	// RefreshToken renews a `portcullis login` session (see Refresh).
	RefreshToken string `json:"refresh_token,omitempty"`
	// SessionEnds is when the login's refresh token stops working and
	// `portcullis login` is needed again; zero: not renewable.
	SessionEnds time.Time `json:"session_ends,omitzero"`
	// Connection is the IdP connection the login went through.
	Connection string `json:"connection,omitempty"`
}

// Fresh reports whether more than a third of the token's life is left;
// below that it is refreshed, so a long-running tool never holds a token
// about to expire.
func (e Entry) Fresh(now time.Time) bool {
	life := e.ExpiresAt.Sub(e.IssuedAt)
	return e.AccessToken != "" && e.ExpiresAt.Sub(now) > life/3
}

// Cache is a JSON file of entries, mode 0600 in a 0700 folder.
type Cache struct{ Path string }

// DefaultCache is $XDG_CONFIG_HOME/portcullis/tokens.json (or the OS's
// user config folder).
func DefaultCache() (*Cache, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return nil, fmt.Errorf("token cache: %w", err)
	}
	return &Cache{Path: filepath.Join(dir, "portcullis", "tokens.json")}, nil
}

func (c *Cache) load() (map[string]Entry, error) {
	data, err := os.ReadFile(c.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Entry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read token cache: %w", err)
	}
	m := map[string]Entry{}
	if err := json.Unmarshal(data, &m); err != nil {
		// A damaged cache costs one fresh token, not an error.
		return map[string]Entry{}, nil
	}
	return m, nil
}

// Get returns the entry for server obtained by method; with method "" or
// "auto", the fresh entry of that server that lives longest.
func (c *Cache) Get(server, method string) (Entry, bool) {
	m, err := c.load()
	if err != nil {
		return Entry{}, false
	}
	if method != "" && method != "auto" {
		e, ok := m[key(server, method)]
		return e, ok
	}
	var best Entry
	now := time.Now()
	for _, e := range m {
		if key(e.Server, "") == key(server, "") && e.Fresh(now) && e.ExpiresAt.After(best.ExpiresAt) {
			best = e
		}
	}
	return best, best.AccessToken != ""
}

// Put stores e, replacing the file atomically with mode 0600.
func (c *Cache) Put(e Entry) error {
	m, err := c.load()
	if err != nil {
		return err
	}
	m[key(e.Server, e.Method)] = e
	return c.save(m)
}

// save replaces the file atomically with mode 0600.
func (c *Cache) save(m map[string]Entry) error {
	data, _ := json.MarshalIndent(m, "", "  ")
	if err := writeFileAtomic(c.Path, data); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	return nil
}

func key(server, method string) string { return strings.TrimSuffix(server, "/") + " " + method }
