package client

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultServer is the portal the CLI talks to when nothing else names one:
// the address `make run` and the examples listen on.
const DefaultServer = "http://127.0.0.1:8080"

// EnvServer names the portal for every command, over the remembered one.
const EnvServer = "PORTCULLIS_SERVER"

// Server sources, as `portcullis status` reports them.
const (
	FromFlag    = "--server"
	FromEnv     = "$" + EnvServer
	FromLogin   = "last login"
	FromDefault = "default"
)

// ResolveServer picks the portal a command talks to: the --server flag
// when given, else $PORTCULLIS_SERVER, else the server of the last
// `portcullis login`, else DefaultServer. It returns where the answer
// came from as well. A nil Cache remembers nothing.
func (c *Cache) ResolveServer(flag string) (server, source string) {
	if flag != "" {
		return flag, FromFlag
	}
	if env := os.Getenv(EnvServer); env != "" {
		return env, FromEnv
	}
	if c != nil {
		if last := c.LastServer(); last != "" {
			return last, FromLogin
		}
	}
	return DefaultServer, FromDefault
}

// lastServerPath is the file beside the token cache that holds the URL
// of the last login.
func (c *Cache) lastServerPath() string { return filepath.Join(filepath.Dir(c.Path), "last-server") }

// LastServer is the portal of the last successful login, or "".
func (c *Cache) LastServer() string {
	data, err := os.ReadFile(c.lastServerPath())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// RememberServer records server as the one later commands use when
// neither --server nor $PORTCULLIS_SERVER names one.
func (c *Cache) RememberServer(server string) error {
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
		return fmt.Errorf("remember the server: %w", err)
	}
	if err := os.WriteFile(c.lastServerPath(), []byte(strings.TrimSuffix(server, "/")+"\n"), 0o600); err != nil {
		return fmt.Errorf("remember the server: %w", err)
	}
	return nil
}

// Entries lists the cached entries of server, one per method.
func (c *Cache) Entries(server string) ([]Entry, error) {
	m, err := c.load()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range m {
		if key(e.Server, "") == key(server, "") {
			out = append(out, e)
		}
	}
	return out, nil
}
