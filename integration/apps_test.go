package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
