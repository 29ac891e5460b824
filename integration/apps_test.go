package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/client"
	"github.com/portcullisdb/portcullis/client/mysqltoken"
)

// Apps keep working across token lifetimes: each pool below runs queries
// for several lifetimes of a token that lives appTTL, with zero failures.
//
// The proxy accepts a token up to 30 s past its exp (clock leeway), so a
// pool that never renews fails only after appTTL+30s on a role whose
// sessions outlive their tokens: those runs last outliveRun. With
// end_at_token_expiry a stale token fails at once, and expiringRun (three
// lifetimes and a bit) is enough.
const (
	appTTL      = 6 * time.Second
	outliveRun  = appTTL + 34*time.Second
	expiringRun = 3*appTTL + 3*time.Second
)

// appUser is one workload: the corp-IdP identity its JWT file holds
// (what a Kubernetes projected service-account token would be), the user
// name the exchange gives it and whether its role ends sessions at token
// expiry.
type appUser struct {
	subject, username string
	endAt             bool
}

var (
	appOutlive  = appUser{"app@example.com", "app@svc", false}
	appExpiring = appUser{"app-exp@example.com", "app-exp@svc", true}
)

func (u appUser) String() string {
	if u.endAt {
		return "end_at_token_expiry"
	}
	return "sessions outlive tokens"
}

func (u appUser) run() time.Duration {
	if u.endAt {
		return expiringRun
	}
	return outliveRun
}

// appsHarness is the product with JWT exchange for the apps' identities,
// tokens of appTTL, and a certificate for 127.0.0.1 that clients verify.
type appsHarness struct {
	*harness
	ca   string // the proxy's certificate, which clients trust
	jwts map[appUser]string
}

func startAppsHarness(t *testing.T) *appsHarness {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	top := fmt.Sprintf(`tls: {cert_file: %q, key_file: %q}
exchange:
  jwt_issuers: [corp]
  failures_per_minute: 100000
  rules:
    - {platform: jwt, identity: "corp:%s", username: %s, roles: [reader], ttl: %s}
    - {platform: jwt, identity: "corp:%s", username: %s, roles: [expiring], ttl: %s}
`, cert, key, appOutlive.subject, appOutlive.username, appTTL, appExpiring.subject, appExpiring.username, appTTL)
	a := &appsHarness{harness: startHarness(t, harnessOpts{topYAML: top}), ca: cert, jwts: map[appUser]string{}}
	for _, u := range []appUser{appOutlive, appExpiring} {
		a.jwts[u] = filepath.Join(dir, strings.Split(u.subject, "@")[0]+".jwt")
		a.writeSubject(t, u)
	}
	return a
}

// writeSubject (re)writes u's JWT file with a valid corp-IdP token.
func (a *appsHarness) writeSubject(t *testing.T, u appUser) {
	if err := os.WriteFile(a.jwts[u], []byte(a.sign(corpClaims(u.subject))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsConfig verifies the proxy's certificate.
func (a *appsHarness) tlsConfig(t *testing.T) *tls.Config {
	pem, err := os.ReadFile(a.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// countingSource counts the tokens a pool obtained, to show it renewed.
type countingSource struct {
	client.Source
	n atomic.Int32
}

func (c *countingSource) Token(ctx context.Context) (client.Entry, error) {
	e, err := c.Source.Token(ctx)
	if err == nil {
		c.n.Add(1)
		remember(e.AccessToken)
	}
	return e, err
}

// hammer runs queries on db from workers goroutines for d and returns how
// many ran and the failures.
func hammer(db *sql.DB, workers int, d time.Duration, want string) (int64, []string) {
	var (
		n        atomic.Int64
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	end := time.Now().Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				var got string
				err := db.QueryRow("SELECT CURRENT_USER()").Scan(&got)
				if err == nil && got != want {
					err = fmt.Errorf("CURRENT_USER() = %q, want %q", got, want)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, time.Now().Format("15:04:05.000")+" "+err.Error())
					mu.Unlock()
				}
				n.Add(1)
				time.Sleep(40 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return n.Load(), failures
}

func TestGoPoolAcrossTokenLifetimes(t *testing.T) {
	t.Parallel()
	a := startAppsHarness(t)
	tests := []struct {
		name string
		user appUser
		// beforeConnect uses mysql.BeforeConnect on a connector of the
		// app's own instead of mysqltoken.NewConnector.
		beforeConnect bool
		maxLifetime   time.Duration
	}{
		// A short max lifetime makes the pool open connections all the
		// time, each needing a valid token.
		{"NewConnector, sessions outlive tokens", appOutlive, false, 2 * time.Second},
		// No max lifetime: connections retire with their token.
		{"NewConnector, end_at_token_expiry", appExpiring, false, 0},
		// The app's own connector: max lifetime below a third of the
		// token's life, as the README says.
		{"BeforeConnect, end_at_token_expiry", appExpiring, true, appTTL / 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := &countingSource{Source: client.Source{Server: a.http, JWTFile: a.jwts[tt.user]}}
			tokens := mysqltoken.New(src, mysqltoken.Options{Log: slog.New(slog.DiscardHandler)})
			cfg := mysql.NewConfig()
			cfg.Net, cfg.Addr, cfg.TLS, cfg.Timeout = "tcp", a.addr, a.tlsConfig(t), 5*time.Second
			var db *sql.DB
			if tt.beforeConnect {
				if err := cfg.Apply(mysql.BeforeConnect(tokens.BeforeConnect)); err != nil {
					t.Fatal(err)
				}
				db = openConfig(t, cfg)
			} else {
				conn, err := tokens.NewConnector(cfg)
				if err != nil {
					t.Fatal(err)
				}
				db = sql.OpenDB(conn)
				t.Cleanup(func() { db.Close() })
			}
			db.SetMaxOpenConns(4)
			db.SetConnMaxLifetime(tt.maxLifetime)
			start := time.Now()
			n, failures := hammer(db, 3, tt.user.run(), readerUser+"@%")
			lifetimes := float64(time.Since(start)) / float64(appTTL)
			t.Logf("%d queries over %.1f token lifetimes (%v each), %d tokens obtained, %d failed", n, lifetimes, appTTL, src.n.Load(), len(failures))
			if len(failures) > 0 {
				t.Fatalf("%d of %d queries failed, first ones:\n%s", len(failures), n, strings.Join(failures[:min(len(failures), 5)], "\n"))
			}
			if lifetimes < 3 || src.n.Load() < 3 {
				t.Fatalf("ran %.1f lifetimes with %d tokens: the pool did not live through three renewals", lifetimes, src.n.Load())
			}
		})
	}
}

// agent is a running `portcullis agent` and the files it keeps.
type agent struct {
	cmd                         *exec.Cmd
	tokenFile, optionFile, addr string
	log                         *syncBuffer
}

// startAgent runs the real binary for u, with the proxy's certificate
// verified through the option file and a health endpoint.
func (a *appsHarness) startAgent(t *testing.T, u appUser) *agent {
	dir := t.TempDir()
	ag := &agent{tokenFile: filepath.Join(dir, "run", "token"), optionFile: filepath.Join(dir, "run", "my.cnf"), addr: freeAddr(t), log: &syncBuffer{}}
	ag.cmd = exec.Command(portcullisBin(t), "agent", "--server", a.http, "--jwt-file", a.jwts[u],
		"--token-file", ag.tokenFile, "--option-file", ag.optionFile, "--address", a.addr, "--ca", a.ca, "--health", ag.addr)
	ag.cmd.Stdout, ag.cmd.Stderr = ag.log, ag.log
	if err := ag.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ag.cmd.Process.Signal(syscall.SIGTERM)
		ag.cmd.Wait()
		if t.Failed() {
			t.Logf("agent log:\n%s", ag.log.String())
		}
	})
	waitFor(t, 10*time.Second, "the agent's first token file", func() bool { _, err := os.Stat(ag.tokenFile); return err == nil })
	return ag
}

// health is the agent's /healthz status and body.
func (ag *agent) health(t *testing.T) (int, string) {
	resp, err := http.Get("http://" + ag.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (ag *agent) token(t *testing.T) string {
	raw, err := os.ReadFile(ag.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(raw))
	remember(tok)
	return tok
}

// mariadb runs the real client on the agent's option file, as the
// README says: every setting, the token included, comes from the file.
func (ag *agent) mariadb(q string) (string, error) {
	out, err := exec.Command("mariadb", "--defaults-extra-file="+ag.optionFile, "--batch", "--skip-column-names", "-e", q).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no %s after %v", what, d)
		}
	}
}

// syncBuffer collects a process's output for checks while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAgentKeepsAnOptionFileFresh(t *testing.T) {
	t.Parallel()
	a := startAppsHarness(t)
	ag := a.startAgent(t, appExpiring)
	for _, f := range []string{ag.tokenFile, ag.optionFile} {
		if info, err := os.Stat(f); err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", f, info, err)
		}
	}
	if code, body := ag.health(t); code != 200 || !strings.Contains(body, "ok: token for "+appExpiring.username) {
		t.Fatalf("health %d %q", code, body)
	}
	seen := map[string]bool{}
	var failures []string
	n := 0
	start := time.Now()
	for time.Since(start) < expiringRun {
		seen[ag.token(t)] = true
		out, err := ag.mariadb("SELECT CURRENT_USER()")
		if err != nil || out != readerUser+"@%" {
			failures = append(failures, fmt.Sprintf("%s %v %s", time.Now().Format("15:04:05.000"), err, out))
		}
		n++
		time.Sleep(150 * time.Millisecond)
	}
	t.Logf("%d mariadb runs over %.1f token lifetimes, %d tokens seen, %d failed", n, float64(time.Since(start))/float64(appTTL), len(seen), len(failures))
	if len(failures) > 0 {
		t.Fatalf("%d of %d mariadb runs failed:\n%s", len(failures), n, strings.Join(failures[:min(5, len(failures))], "\n"))
	}
	if len(seen) < 3 {
		t.Fatalf("the agent wrote %d tokens in three lifetimes", len(seen))
	}
	if out, err := exec.Command(portcullisBin(t), "agent", "check", "--token-file", ag.tokenFile).CombinedOutput(); err != nil || !strings.Contains(string(out), "ok: token for") {
		t.Fatalf("agent check: %v %s", err, out)
	}
}

func TestAgentWhenTheExchangeFails(t *testing.T) {
	t.Parallel()
	a := startAppsHarness(t)
	ag := a.startAgent(t, appOutlive)
	// The workload's identity stops being accepted: the exchange refuses.
	if err := os.WriteFile(a.jwts[appOutlive], []byte("not-a-jwt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	held := ag.token(t)
	exp, err := client.CheckTokenFile(ag.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the token is kept until it expires, and the log says why", func(t *testing.T) {
		waitFor(t, appTTL, "log line of the failed renewal", func() bool {
			return strings.Contains(ag.log.String(), "token renewal failed; keeping the current token until it expires")
		})
		// The agent counts the token's life from when it asked for it, by
		// whole seconds of expires_in: up to a second before its exp.
		for time.Until(exp.ExpiresAt) > 1500*time.Millisecond {
			if got := ag.token(t); got != held {
				t.Fatal("the token file changed although renewal fails")
			}
			if code, _ := ag.health(t); code != 200 {
				t.Fatalf("health %d while the token is valid", code)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if out, err := ag.mariadb("SELECT 1"); err != nil {
			t.Fatalf("the kept token no longer works: %v %s", err, out)
		}
	})
	t.Run("then the files say so, health is 503, clients get the proxy's refusal", func(t *testing.T) {
		waitFor(t, 3*time.Second, "removal of the expired token file", func() bool { _, err := os.Stat(ag.tokenFile); return os.IsNotExist(err) })
		cnf, err := os.ReadFile(ag.optionFile)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(cnf), "NO VALID TOKEN") || !strings.Contains(string(cnf), "expired at") || strings.Contains(string(cnf), "password=") {
			t.Fatalf("option file after expiry:\n%s", cnf)
		}
		if code, body := ag.health(t); code != 503 || !strings.Contains(body, "no valid token") {
			t.Fatalf("health %d %q", code, body)
		}
		if out, err := ag.mariadb("SELECT 1"); err == nil || !strings.Contains(out, "1045") {
			t.Fatalf("mariadb on the expired option file: %v %s", err, out)
		}
		if out, err := exec.Command(portcullisBin(t), "agent", "check", "--token-file", ag.tokenFile).CombinedOutput(); err == nil {
			t.Fatalf("agent check passed with no token: %s", out)
		}
		if !strings.Contains(ag.log.String(), "no valid token in the files") {
			t.Fatal("no log line for the expiry")
		}
	})
	t.Run("a renewal that works again restores the files", func(t *testing.T) {
		a.writeSubject(t, appOutlive)
		waitFor(t, 5*time.Second, "token file after recovery", func() bool { _, err := os.Stat(ag.tokenFile); return err == nil })
		if out, err := ag.mariadb("SELECT CURRENT_USER()"); err != nil || out != readerUser+"@%" {
			t.Fatalf("after recovery: %v %s", err, out)
		}
		if code, _ := ag.health(t); code != 200 {
			t.Fatalf("health %d after recovery", code)
		}
		if !strings.Contains(ag.log.String(), "token renewed after failures") {
			t.Fatal("no log line for the recovery")
		}
	})
	t.Run("--once exits 1 with the portal's reason", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.jwt")
		os.WriteFile(bad, []byte("not-a-jwt"), 0o600)
		out, err := exec.Command(portcullisBin(t), "agent", "--once", "--server", a.http, "--jwt-file", bad, "--token-file", filepath.Join(t.TempDir(), "t")).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "portcullis refused the exchange") {
			t.Fatalf("agent --once with a bad JWT: %v\n%s", err, out)
		}
	})
	t.Run("the health endpoint listens on loopback only", func(t *testing.T) {
		out, err := exec.Command(portcullisBin(t), "agent", "--server", a.http, "--jwt-file", a.jwts[appOutlive], "--token-file", filepath.Join(t.TempDir(), "t"), "--health", "0.0.0.0:9").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "loopback address only") {
			t.Fatalf("--health 0.0.0.0: %v %s", err, out)
		}
	})
}
