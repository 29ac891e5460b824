package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
// end_at_token_expiry a stale token fails at once, and appUser.run (three
// lifetimes and a bit) is enough.
const (
	appTTL     = 6 * time.Second
	outliveRun = appTTL + 34*time.Second
)

// appUser is one workload: the corp-IdP identity its JWT file holds
// (what a Kubernetes projected service-account token would be), the user
// name the exchange gives it and whether its role ends sessions at token
// expiry.
type appUser struct {
	subject, username string
	endAt             bool
	ttl               time.Duration
}

var (
	appOutlive = appUser{"app@example.com", "app@svc", false, appTTL}
	// On end_at_token_expiry a connection's connect time plus its age
	// must fit in the last third of its token's life, less any delay of
	// the renewal. On a machine loaded twentyfold a renewal was seen 4.6 s
	// late and a JVM's TLS handshake takes a second: tokens of 15 s leave
	// a third of 5 s.
	appExpiring = appUser{"app-exp@example.com", "app-exp@svc", true, 15 * time.Second}
	appUsers    = []appUser{appOutlive, appExpiring}
)

func (u appUser) String() string {
	if u.endAt {
		return "end_at_token_expiry"
	}
	return "sessions outlive tokens"
}

// run is how long u's pools run: three lifetimes and a bit, and past the
// proxy's 30 s leeway where only that shows a stale token.
func (u appUser) run() time.Duration {
	if u.endAt {
		return 3*u.ttl + 3*time.Second
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
`, cert, key)
	for _, u := range appUsers {
		role := "reader"
		if u.endAt {
			role = "expiring"
		}
		top += fmt.Sprintf("    - {jwt: {issuer: corp, user: %q}, username: %s, roles: [%s], ttl: %s}\n", u.subject, u.username, role, u.ttl)
	}
	// Pools open connections all the time, each a TLS handshake: under
	// -race on a loaded machine some took more than the default 2 s.
	h := startHarness(t, harnessOpts{topYAML: top, handshake: "15s"})
	a := &appsHarness{harness: h, ca: cert, jwts: map[appUser]string{}}
	for _, u := range appUsers {
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
		// The app's own connector: max lifetime well below a third of the
		// token's life, as the README says (a tenth here: the margin is
		// what a late renewal on a loaded machine eats).
		{"BeforeConnect, end_at_token_expiry", appExpiring, true, appExpiring.ttl / 10},
	}
	type run struct {
		src       *countingSource
		n         int64
		failures  []string
		lifetimes float64
	}
	runs := make([]run, len(tests))
	var wg sync.WaitGroup
	for i, tt := range tests {
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
		db.SetMaxOpenConns(3) // the MariaDB is shared: a small footprint
		db.SetConnMaxLifetime(tt.maxLifetime)
		wg.Add(1)
		go func(r *run, d time.Duration) { // all at once: -parallel would run them two by two
			defer wg.Done()
			start := time.Now()
			r.src = src
			r.n, r.failures = hammer(db, 2, d, readerUser+"@%")
			r.lifetimes = float64(time.Since(start)) / float64(tt.user.ttl)
		}(&runs[i], tt.user.run())
	}
	wg.Wait()
	for i, tt := range tests {
		r := runs[i]
		t.Run(tt.name, func(t *testing.T) {
			t.Logf("%d queries over %.1f token lifetimes (%v each), %d tokens obtained, %d failed", r.n, r.lifetimes, tt.user.ttl, r.src.n.Load(), len(r.failures))
			if len(r.failures) > 0 {
				t.Fatalf("%d of %d queries failed, first ones:\n%s", len(r.failures), r.n, strings.Join(r.failures[:min(len(r.failures), 5)], "\n"))
			}
			if r.lifetimes < 3 || r.src.n.Load() < 3 {
				t.Fatalf("ran %.1f lifetimes with %d tokens: the pool did not live through three renewals", r.lifetimes, r.src.n.Load())
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
		// TestMain looks for every token the tests read in this log too.
		logPath := filepath.Join(dir, "agent.log")
		if err := os.WriteFile(logPath, []byte(ag.log.String()), 0o600); err == nil {
			secretsMu.Lock()
			logFiles = append(logFiles, logPath)
			secretsMu.Unlock()
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

// mariadbLoop is the option-file route: the real mariadb client runs a
// query on the agent's option file every 150 ms for d, each run a new
// connection with whatever token the file holds then.
func (ag *agent) mariadbLoop(d time.Duration) recipeResult {
	res := recipeResult{Client: "mariadb --defaults-extra-file"}
	if out, err := exec.Command("mariadb", "--version").Output(); err == nil {
		res.Client = strings.TrimSpace(string(out)) + " --defaults-extra-file"
	}
	users := map[string]bool{}
	for start := time.Now(); time.Since(start) < d; time.Sleep(150 * time.Millisecond) {
		out, err := ag.mariadb("SELECT CURRENT_USER()")
		if err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("%s %v %s", time.Now().Format("15:04:05.000"), err, out))
		} else {
			users[out] = true
		}
		res.Queries++
	}
	for u := range users {
		res.Users = append(res.Users, u)
	}
	return res
}

func TestAgentWhenTheExchangeFails(t *testing.T) {
	t.Parallel()
	a := startAppsHarness(t)
	ag := a.startAgent(t, appOutlive)
	// The workload's identity stops being accepted: the exchange refuses.
	if err := os.WriteFile(a.jwts[appOutlive], []byte("not-a-jwt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("the files are 0600, the health endpoint and agent check say ok", func(t *testing.T) {
		for _, f := range []string{ag.tokenFile, ag.optionFile} {
			if info, err := os.Stat(f); err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v %v, want mode 0600", f, info, err)
			}
		}
		if code, body := ag.health(t); code != 200 || !strings.Contains(body, "ok: token for "+appOutlive.username) {
			t.Fatalf("health %d %q", code, body)
		}
		if out, err := exec.Command(portcullisBin(t), "agent", "check", "--token-file", ag.tokenFile).CombinedOutput(); err != nil || !strings.Contains(string(out), "ok: token for") {
			t.Fatalf("agent check: %v %s", err, out)
		}
	})
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

// recipeRun is one recipe program's run.
type recipeRun struct {
	name      string
	cmd       []string
	loop      func() recipeResult // instead of cmd: a loop in the test
	agent     *agent
	res       recipeResult
	err       error
	lifetimes float64
	ttl       time.Duration
}

// recipeResult is what each recipe program prints when it ends.
type recipeResult struct {
	Queries  int      `json:"queries"`
	Failures []string `json:"failures"`
	Users    []string `json:"users"`
	Client   string   `json:"client"`
}

// TestRecipesAcrossTokenLifetimes runs the README's recipes, each as its
// real stack (Debian's SQLAlchemy over PyMySQL and mysqlclient, npm's
// mysql2 on Node, Debian's HikariCP over Connector/J, a mariadb
// --defaults-extra-file loop), beside a real agent, on both kinds of role. Each pool also drops its connections
// every couple of seconds (pool_recycle, a max age, a scheduled eviction)
// so that new connections, each needing a valid token, open all the time.
func TestRecipesAcrossTokenLifetimes(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test")
	}
	if out, err := exec.Command("../scripts/ensure-app-clients.sh").CombinedOutput(); err != nil {
		t.Fatalf("scripts/ensure-app-clients.sh: %v\n%s", err, out)
	}
	a := startAppsHarness(t)
	host, port, _ := net.SplitHostPort(a.addr)
	var runs []recipeRun
	hikari, _ := filepath.Glob("/usr/share/java/HikariCP-*.jar") // Debian's HikariCP-2.7.9.jar: the manifest has no version
	hikariVersion := "?"
	if len(hikari) > 0 {
		hikariVersion = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(hikari[0]), "HikariCP-"), ".jar")
	}
	java := strings.Join([]string{"/usr/share/java/HikariCP.jar", "/usr/share/java/mariadb-java-client.jar", "/usr/share/java/slf4j-api.jar", "/usr/share/java/slf4j-nop.jar"}, ":")
	for _, u := range appUsers {
		ag := a.startAgent(t, u)
		// Connections younger than a fifth of the token's life never
		// outlive a token the agent handed out with a third left.
		churn := 2 * time.Second
		if u.endAt {
			churn = u.ttl / 5
		}
		secs := fmt.Sprint(int(u.run().Seconds()))
		recipes := []struct {
			name string
			cmd  []string
		}{
			{"SQLAlchemy+PyMySQL do_connect", []string{"/usr/bin/python3", "apps/python/pool.py", "pymysql", host, port, u.username, ag.tokenFile, ag.optionFile, a.ca, secs, fmt.Sprint(churn.Seconds())}},
			{"SQLAlchemy+mysqlclient creator", []string{"/usr/bin/python3", "apps/python/pool.py", "mysqldb", host, port, u.username, ag.tokenFile, ag.optionFile, a.ca, secs, fmt.Sprint(churn.Seconds())}},
			{"mysql2 pool", []string{"node", "apps/node/pool.js", host, port, u.username, ag.tokenFile, a.ca, secs, fmt.Sprint(churn.Milliseconds())}},
			{"HikariCP+Connector/J", []string{"java", "-Dhikaricp.version=" + hikariVersion, "-cp", java, "apps/java/Pool.java",
				fmt.Sprintf("jdbc:mariadb://%s/?useSsl=true&serverSslCert=%s", a.addr, a.ca), u.username, ag.tokenFile, secs, fmt.Sprint(churn.Milliseconds())}},
		}
		for _, r := range recipes {
			runs = append(runs, recipeRun{name: fmt.Sprintf("%s, %s, tokens of %v", r.name, u, u.ttl), cmd: r.cmd, agent: ag, ttl: u.ttl})
		}
		d := u.run()
		runs = append(runs, recipeRun{name: fmt.Sprintf("mariadb --defaults-extra-file, %s, tokens of %v", u, u.ttl), agent: ag, ttl: u.ttl,
			loop: func() recipeResult { return ag.mariadbLoop(d) }})
	}
	// All at once: the pools are mostly asleep, and -parallel (the number
	// of cores) would otherwise run them two by two.
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func(r *recipeRun) {
			defer wg.Done()
			start := time.Now()
			if r.loop != nil {
				r.res = r.loop()
				r.lifetimes = float64(time.Since(start)) / float64(r.ttl)
				return
			}
			cmd := exec.Command(r.cmd[0], r.cmd[1:]...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			r.lifetimes = float64(time.Since(start)) / float64(r.ttl)
			if err != nil {
				r.err = fmt.Errorf("%s: %v\n%s", r.cmd[0], err, stderr.String())
			} else if err := json.Unmarshal(out, &r.res); err != nil {
				r.err = fmt.Errorf("recipe output %q: %v\n%s", out, err, stderr.String())
			}
		}(&runs[i])
	}
	wg.Wait()
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			res := r.res
			t.Logf("%s: %d queries over %.1f token lifetimes of %v, %d failed", res.Client, res.Queries, r.lifetimes, r.ttl, len(res.Failures))
			if len(res.Failures) > 0 {
				t.Fatalf("%d of %d queries failed, first ones:\n%s", len(res.Failures), res.Queries, strings.Join(res.Failures[:min(5, len(res.Failures))], "\n"))
			}
			if res.Queries == 0 || len(res.Users) != 1 || res.Users[0] != readerUser+"@%" {
				t.Fatalf("ran %d queries as %v", res.Queries, res.Users)
			}
			if r.lifetimes < 3 {
				t.Fatalf("ran %.1f token lifetimes", r.lifetimes)
			}
			if n := strings.Count(r.agent.log.String(), "token files written"); n < 3 {
				t.Fatalf("the agent wrote %d tokens", n)
			}
		})
	}
}

func TestAgentWithACloudIdentity(t *testing.T) {
	t.Parallel()
	c := startCloudHarness(t)
	dir := t.TempDir()
	tokenFile, cnf := filepath.Join(dir, "token"), filepath.Join(dir, "my.cnf")
	// The portal advertises the proxy's address: no --address.
	if _, errOut, err := c.portcullis(t, "agent", "--once", "--cloud", "gcp", "--token-file", tokenFile, "--option-file", cnf); err != nil {
		t.Fatalf("portcullis agent --once --cloud gcp: %v\n%s", err, errOut)
	}
	raw, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	remember(strings.TrimSpace(string(raw)))
	out, err := exec.Command("mariadb", "--defaults-extra-file="+cnf, "--batch", "--skip-column-names", "-e", "SELECT CURRENT_USER()").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != readerUser+"@%" {
		t.Fatalf("mariadb on the agent's option file: %v %s", err, out)
	}
}
