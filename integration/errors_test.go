package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// errorRow is one row of the README's "Errors you may see" table, as a
// client prints it: the code, then the proxy's message. The README writes
// "1045 ... token expired 3m ago", where "..." stands for what each client
// puts between the code and the message ("(28000): portcullis: " for the
// mariadb CLI).
type errorRow struct {
	code, text string
}

// readmeRow finds the row that starts with cell in the README (the test
// fails when the README no longer has it) and returns it with the README's
// example values replaced by this run's.
func readmeRow(t *testing.T, cell string, replace ...string) errorRow {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "| `"+cell+"`") {
		t.Fatalf("the README's error tables have no row `%s`", cell)
	}
	code, text, _ := strings.Cut(strings.NewReplacer(replace...).Replace(cell), " ")
	return errorRow{code, strings.TrimPrefix(text, "... ")}
}

// check asserts a client's failure shows the row's code and message.
func (r errorRow) check(t *testing.T, c realClient, got string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s connected (%q), want error %s %q", c.name, got, r.code, r.text)
	}
	msg := err.Error()
	codeShown := regexp.MustCompile(`(?i)error ` + r.code + `\b`).MatchString(msg) // sysbench: "FATAL: error 1045: ..."
	if !codeShown || !strings.Contains(msg, r.text) {
		t.Fatalf("%s shows\n  %s\nwant code %s and %q", c.name, msg, r.code, r.text)
	}
}

// errorClients read every error path: the mariadb CLI and mysqlclient are
// libmariadb, the strictest reader of error packets; PyMySQL parses them
// on its own.
var errorClients = []realClient{mariadbClient, mysqlclientClient, pymysqlClient}

// TestErrorsReachClients: each error the proxy sends, before, during and
// after authentication, reaches libmariadb and PyMySQL with the proxy's
// own code and message, word for word as the README's error table has it.
func TestErrorsReachClients(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	token := h.mint("erin@example.com", []string{"reader"}, nil)
	ok := dial{addr: h.addr, user: "erin@example.com", password: token, query: "SELECT CURRENT_USER()", tls: "verify", ca: h.ca}
	expired := corpClaims("erin@example.com", "db-readers")
	expired["iat"], expired["nbf"], expired["exp"] = time.Now().Add(-13*time.Minute).Unix(), time.Now().Add(-13*time.Minute).Unix(), time.Now().Add(-3*time.Minute).Unix()

	claims := func(change func(jwt.MapClaims)) string {
		c := corpClaims("erin@example.com", "db-readers")
		change(c)
		return h.sign(c)
	}
	refusals := []struct {
		name    string
		cell    string
		replace []string // the README's example values -> this run's
		d       func(dial) dial
	}{
		{"no TLS (during the handshake, before the token)", "1045 ... TLS is required to pass a token", nil,
			func(d dial) dial { d.tls = "off"; return d }},
		{"no password (caching_sha2_password sends nothing)", "1045 ... empty password: pass a token as the password", nil,
			func(d dial) dial { d.password = ""; return d }},
		{"an expired token (after the token arrives)", "1045 ... token expired 3m ago", nil,
			func(d dial) dial { d.password = h.sign(jwt.MapClaims(expired)); return d }},
		{"an untrusted issuer", `1045 ... token issuer "X" is not trusted`, []string{`"X"`, `"https://idp.elsewhere.test/"`},
			func(d dial) dial {
				d.password = claims(func(c jwt.MapClaims) { c["iss"] = "https://idp.elsewhere.test/" })
				return d
			}},
		{"another audience", "1045 ... token audience [...] does not include any of [...]", []string{"[...] does not include any of [...]", "[other-service] does not include any of [portcullis]"},
			func(d dial) dial { d.password = claims(func(c jwt.MapClaims) { c["aud"] = "other-service" }); return d }},
		{"another user's name", `1045 ... user name "bob" does not match the token, which is for "alice@..."`,
			[]string{`"bob"`, `"bob@example.com"`, `"alice@..."`, `"erin@example.com"`},
			func(d dial) dial { d.user = "bob@example.com"; return d }},
		{"a role the identity lacks", `1045 ... no role "dba" for alice@example.com (holds: analyst)`,
			[]string{"alice@example.com", "erin@example.com", "analyst", "reader"},
			func(d dial) dial { d.user += "/dba"; return d }},
	}
	for _, c := range errorClients {
		for _, tt := range refusals {
			t.Run(c.name+"/"+tt.name, func(t *testing.T) {
				got, err := c.run(t, tt.d(ok))
				readmeRow(t, tt.cell, tt.replace...).check(t, c, got, err)
			})
		}
	}

	t.Run("backend unreachable (after authentication)", func(t *testing.T) {
		nowhere := freeAddr(t) // nothing listens there
		down := startHarness(t, harnessOpts{backend: nowhere})
		d := ok
		d.addr, d.ca, d.password = down.addr, down.ca, down.mint("erin@example.com", []string{"reader"}, nil)
		row := readmeRow(t, "1429 ... cannot reach backend 127.0.0.1:3306", "127.0.0.1:3306", nowhere)
		for _, c := range errorClients {
			got, err := c.run(t, d)
			row.check(t, c, got, err)
		}
	})

	t.Run("too many connections (instead of the greeting)", func(t *testing.T) {
		full := startHarness(t, harnessOpts{extraYAML: "  max_connections: 1"})
		// One authenticated session fills it (a bare TCP connection would
		// end at the handshake timeout).
		held, err := full.open("erin@example.com", full.mint("erin@example.com", []string{"reader"}, nil)).Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		d := ok
		d.addr, d.ca, d.password = full.addr, full.ca, full.mint("erin@example.com", []string{"reader"}, nil)
		row := readmeRow(t, "1040 too many connections to portcullis")
		for _, c := range errorClients {
			got, err := c.run(t, d)
			row.check(t, c, got, err)
		}
	})

	t.Run("killed during a query (after authentication)", func(t *testing.T) {
		row := readmeRow(t, "1927 ... connection was killed: alice@example.com was deactivated in the directory",
			"alice@example.com was deactivated in the directory", "ended by the test")
		for _, c := range errorClients {
			got, err := whileRunning(t, h, c, ok, func() { h.svc.Proxy.Sessions.KillIdentity(ok.user, "ended by the test") })
			row.check(t, c, got, err)
		}
	})

	t.Run("killed while idle: the next statement reads why (mariadb CLI)", func(t *testing.T) {
		path, err := exec.LookPath("mariadb")
		if err != nil {
			missing(t, "the mariadb client (Debian mariadb-client)")
		}
		cnf := filepath.Join(t.TempDir(), "client.cnf")
		writeFile(t, cnf, []byte("[client]\npassword="+token+"\n"))
		host, port, _ := net.SplitHostPort(h.addr)
		cmd := exec.Command(path, "--defaults-extra-file="+cnf, "-h", host, "-P", port, "-u", ok.user, "--ssl-ca="+h.ca, "--ssl-verify-server-cert")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitSession(t, h, ok.user) // connected, waiting for its input
		h.svc.Proxy.Sessions.KillIdentity(ok.user, "ended by the test")
		time.Sleep(200 * time.Millisecond)
		io.WriteString(stdin, "SELECT 1;\n")
		stdin.Close()
		cmd.Wait()
		readmeRow(t, "1927 ... connection was killed: alice@example.com was deactivated in the directory",
			"alice@example.com was deactivated in the directory", "ended by the test").check(t, mariadbClient, "", errors.New(out.String()))
	})

	t.Run("killed by KILL <id> from another session (the backend closes it without a word)", func(t *testing.T) {
		for _, c := range errorClients {
			var id uint32
			got, err := whileRunning(t, h, c, ok, func() {
				for _, s := range h.svc.Proxy.Sessions.List() { // the newest: the victim, not a killer still closing
					if s.Identity == ok.user {
						id = s.ID
					}
				}
				killer := h.open(ok.user, token)
				defer killer.Close()
				if _, err := killer.Exec(fmt.Sprintf("KILL %d", id)); err != nil {
					t.Errorf("KILL %d: %v", id, err)
				}
			})
			readmeRow(t, "1927 ... connection was killed: alice@example.com was deactivated in the directory",
				"alice@example.com was deactivated in the directory", fmt.Sprintf("KILL %d from another session of %s", id, ok.user)).check(t, c, got, err)
		}
	})

	t.Run("the backend goes away during a query", func(t *testing.T) {
		gate := newGate(t, backendAddr)
		g := startHarness(t, harnessOpts{backend: gate.addr()})
		d := ok
		d.addr, d.ca, d.password = g.addr, g.ca, g.mint("erin@example.com", []string{"reader"}, nil)
		row := readmeRow(t, "1158 ... lost the connection to the backend 127.0.0.1:3306: reconnect", "127.0.0.1:3306", gate.addr())
		for _, c := range errorClients {
			got, err := whileRunning(t, g, c, d, gate.close)
			row.check(t, c, got, err)
			gate.open()
		}
	})
}

// whileRunning runs SELECT SLEEP(20) with client c and calls act once the
// query is on its way; it returns what the client then shows.
func whileRunning(t *testing.T, h *harness, c realClient, d dial, act func()) (string, error) {
	t.Helper()
	d.query = "SELECT SLEEP(20)"
	var (
		got  string
		err  error
		done sync.WaitGroup
	)
	done.Add(1)
	go func() { defer done.Done(); got, err = c.run(t, d) }()
	waitSession(t, h, d.user)
	time.Sleep(300 * time.Millisecond) // let the query reach the backend
	act()
	done.Wait()
	return got, err
}
