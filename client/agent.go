package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/portcullisdb/portcullis/netaddr"
)

// AgentOptions say what `portcullis agent` writes.
type AgentOptions struct {
	// TokenFile gets the token alone on one line ("" for none).
	TokenFile string
	// OptionFile gets a MySQL option file for `mariadb
	// --defaults-extra-file`, libmariadb's and PyMySQL's read_default_file
	// ("" for none).
	OptionFile string
	// Address is the proxy's host:port written as host and port in the
	// option file; "" leaves them to the client.
	Address string
	// Role makes the option file's user username/role.
	Role string
	// CAFile, when set, makes the option file verify the proxy's
	// certificate against it (ssl-ca, ssl-verify-server-cert).
	CAFile string
	Log    *slog.Logger
}

// Agent keeps a valid token in files for the processes beside it: a
// token file and a MySQL option file, each 0600 and replaced atomically
// (a reader sees the old file or the new one, never half of one). It
// renews the token when a third of its life is left; while renewal fails
// it keeps the current token until it expires, and then removes the
// token file and rewrites the option file without a password, with a
// comment saying since when and why there is no token (a client then
// fails with the proxy's "empty password" refusal, not a stale token).
type Agent struct {
	opt    AgentOptions
	keeper *Keeper

	mu       sync.Mutex
	written  Entry     // the token in the files; zero when none
	noToken  string    // why there is none, when written is zero
	lastExp  time.Time // when the last token written expired(s)
	lastUser string    // its user name, kept in the option file
}

// NewAgent returns an agent writing src's tokens as o says.
func NewAgent(src TokenSource, o AgentOptions) (*Agent, error) {
	if o.TokenFile == "" && o.OptionFile == "" {
		return nil, errors.New("nothing to write: set --token-file, --option-file or both")
	}
	if o.Address != "" {
		if _, _, err := net.SplitHostPort(o.Address); err != nil {
			return nil, fmt.Errorf("--address %q is not host:port: %w", o.Address, err)
		}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Agent{opt: o, keeper: NewKeeper(src, o.Log), noToken: "no token obtained yet"}, nil
}

// Once writes the files with a valid token, or fails.
func (a *Agent) Once(ctx context.Context) error {
	e, err := a.keeper.Renew(ctx)
	if err != nil {
		return err
	}
	return a.write(e)
}

// Run keeps the files fresh until ctx ends. It returns an error only
// when it cannot write them.
func (a *Agent) Run(ctx context.Context) error {
	for {
		e, err := a.keeper.Renew(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil && e.AccessToken != a.current().AccessToken {
			if err := a.write(e); err != nil {
				return err
			}
		} else if err != nil {
			if err := a.expire(err); err != nil {
				return err
			}
		}
		next := a.keeper.Next().Add(10 * time.Millisecond)
		if w := a.current(); w.AccessToken != "" && w.ExpiresAt.Before(next) {
			next = w.ExpiresAt // to say so in the files the moment it expires
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (a *Agent) current() Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.written
}

// write puts e in the files.
func (a *Agent) write(e Entry) error {
	if a.opt.TokenFile != "" {
		if err := writeFileAtomic(a.opt.TokenFile, []byte(e.AccessToken+"\n")); err != nil {
			return fmt.Errorf("write the token file: %w", err)
		}
	}
	if a.opt.OptionFile != "" {
		if err := writeFileAtomic(a.opt.OptionFile, a.optionFile(e, "")); err != nil {
			return fmt.Errorf("write the option file: %w", err)
		}
	}
	a.mu.Lock()
	a.written, a.noToken, a.lastExp, a.lastUser = e, "", e.ExpiresAt, e.Username
	a.mu.Unlock()
	a.opt.Log.Info("token files written", "token_file", a.opt.TokenFile, "option_file", a.opt.OptionFile, "user", e.Username, "expires_at", e.ExpiresAt.UTC())
	return nil
}

// expire takes the token out of the files once it has expired (or when
// there never was one) and says why in the option file.
func (a *Agent) expire(cause error) error {
	a.mu.Lock()
	w, said, exp, user := a.written, a.noToken, a.lastExp, a.lastUser
	a.mu.Unlock()
	if w.AccessToken != "" && time.Now().Before(w.ExpiresAt) {
		return nil // still valid: keep it
	}
	why := "renewal failing: " + oneLine(cause.Error())
	if !exp.IsZero() {
		why = fmt.Sprintf("the token expired at %s and %s", exp.UTC().Format(time.RFC3339), why)
	}
	if w.AccessToken == "" && said == why {
		return nil
	}
	if a.opt.TokenFile != "" {
		if err := os.Remove(a.opt.TokenFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the expired token file: %w", err)
		}
	}
	if a.opt.OptionFile != "" {
		if err := writeFileAtomic(a.opt.OptionFile, a.optionFile(Entry{Username: user}, why)); err != nil {
			return fmt.Errorf("write the option file: %w", err)
		}
	}
	a.mu.Lock()
	a.written, a.noToken = Entry{}, why
	a.mu.Unlock()
	a.opt.Log.Error("no valid token in the files: clients beside this agent cannot connect until a renewal succeeds", "token_file", a.opt.TokenFile, "option_file", a.opt.OptionFile, "reason", why)
	return nil
}

// optionFile is the MySQL option file for e; with why set, it has no
// password and says why. Options every client knows go under [client]
// (PyMySQL reads only that group); MariaDB's own TLS switches go under
// [client-mariadb], which Oracle's mysql client does not read and so
// cannot refuse.
func (a *Agent) optionFile(e Entry, why string) []byte {
	var b strings.Builder
	if why != "" {
		fmt.Fprintf(&b, "# portcullis agent: NO VALID TOKEN since %s: %s.\n# New connections fail until a renewal succeeds; see the agent's log.\n", time.Now().UTC().Format(time.RFC3339), why)
	} else {
		fmt.Fprintf(&b, "# Written by portcullis agent at %s. The token expires at %s and is renewed before.\n",
			time.Now().UTC().Format(time.RFC3339), e.ExpiresAt.UTC().Format(time.RFC3339))
	}
	b.WriteString("[client]\n")
	if e.Username != "" {
		user := e.Username
		if a.opt.Role != "" {
			user += "/" + a.opt.Role
		}
		fmt.Fprintf(&b, "user=%s\n", optValue(user))
	}
	if why == "" {
		fmt.Fprintf(&b, "password=%s\n", optValue(e.AccessToken))
	}
	if host, port, err := net.SplitHostPort(a.opt.Address); err == nil {
		fmt.Fprintf(&b, "host=%s\nport=%s\nprotocol=tcp\n", optValue(host), port)
	}
	if a.opt.CAFile != "" {
		fmt.Fprintf(&b, "ssl-ca=%s\n", optValue(a.opt.CAFile))
	}
	b.WriteString("[client-mariadb]\nssl\n")
	if a.opt.CAFile != "" {
		b.WriteString("ssl-verify-server-cert\n")
	}
	if why != "" {
		// With no password, libmariadb's caching_sha2_password gives up
		// with "Can't connect" (2013); clear-text auth gets the proxy's
		// own 1045 "empty password" instead.
		b.WriteString("default-auth=mysql_clear_password\n")
	}
	return []byte(b.String())
}

// Health answers GET /healthz: 200 while the files hold a valid token,
// 503 with the reason otherwise. Serve it on loopback only (see
// CheckLoopback): it says when the token expires.
func (a *Agent) Health() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		e, why := a.written, a.noToken
		a.mu.Unlock()
		failures, err := a.keeper.Failures()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if e.AccessToken == "" || !time.Now().Before(e.ExpiresAt) {
			w.WriteHeader(http.StatusServiceUnavailable)
			if why == "" {
				why = "the token expired at " + e.ExpiresAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "no valid token: %s\n", why)
			return
		}
		fmt.Fprintf(w, "ok: token for %s valid until %s\n", e.Username, e.ExpiresAt.UTC().Format(time.RFC3339))
		if err != nil {
			fmt.Fprintf(w, "renewal failing (%d in a row): %s\n", failures, oneLine(err.Error()))
		}
	})
	return mux
}

// CheckLoopback refuses a health address that is not a loopback IP.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--health %q is not host:port: %w", addr, err)
	}
	if !netaddr.IsLoopback(host) {
		return fmt.Errorf("--health %q: the health endpoint listens on a loopback address only (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", addr)
	}
	return nil
}

// CheckTokenFile says whether path holds a token that has not expired:
// `portcullis agent check`, for exec probes.
func CheckTokenFile(path string) (Entry, error) { return readTokenFile(path) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// writeFileAtomic replaces path with data, mode 0600, by renaming a
// temporary file in the same folder (made 0700 if missing).
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
