package integration

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/go-sql-driver/mysql"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/service"
)

const (
	corpIssuer = "https://idp.corp.test/"
	corpKID    = "corp-key-1"
	audience   = "portcullis"
)

// harness is the whole product started in-process on random ports.
type harness struct {
	t       testing.TB
	dir     string
	svc     *service.Service
	addr    string
	dev     *auth.DevIssuer
	corpKey *rsa.PrivateKey
	audit   string
	http    string // the portal's base URL
	ca      string // PEM file of the CA the proxy's certificate is signed by ("" with insecureNoTLS)
}

type harnessOpts struct {
	backend       string // default backendAddr
	insecureNoTLS bool
	extraYAML     string // appended under proxy:
	storeDSN      string // a MySQL store shared by several harnesses; default SQLite in the temp dir
	topYAML       string // appended at the top level (exchange:, admin:, ...)
	failedAuth    int    // failed-login budget per address and per user; default: practically none
	writerPool    string // the writer role's pool: settings, e.g. "{min_idle: 3}"
	pprof         string // listen.pprof; default off
	backendYAML   string // more keys of backend: (e.g. "tls: required"); default tls: disabled
	roles         string // more roles, each a line indented two spaces, appended under roles:
	handshake     string // proxy.handshake_timeout; default 2s

	// beforeStart runs before the service starts, with its directory
	// (audit.log is there).
	beforeStart func(dir string)
}

var corpKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// corpJWKS serves the corp issuer's public keys, as an IdP would.
func corpJWKS(t testing.TB) string {
	jwk, err := jwkset.NewJWKFromKey(corpKey.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: corpKID, ALG: jwkset.AlgRS256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"keys": []any{jwk.Marshal()}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/jwks.json"
}

// sharedKEK is the key-encryption key every harness uses, so harnesses
// sharing a store can read each other's signing keys.
const sharedKEK = "integration-test key-encryption key, 32+ bytes"

func storeYAML(dsn string) string {
	if dsn == "" {
		return ""
	}
	return `store: {engine: mysql, dsn: "${env:PORTCULLIS_TEST_STORE_DSN}"}`
}

func startHarness(t testing.TB, opt harnessOpts) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs MariaDB (skipped with -short)")
	}
	if opt.backend == "" {
		opt.backend = backendAddr
	}
	dir := t.TempDir()
	httpAddr := freeAddr(t) // known before start: it is the issuer URL too
	for u, pw := range passwords {
		if err := os.WriteFile(filepath.Join(dir, u+".pw"), []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yaml := fmt.Sprintf(`
listen: {mysql: "127.0.0.1:0", http: %q, pprof: %q}
backend: {address: %q, dial_timeout: 2s, %s}
proxy:
  handshake_timeout: %s
  failed_auth_per_minute: %d
  failed_auth_per_user_per_minute: %d
%s
dev_issuer: {enabled: true, key_file: dev.pem}
issuers:
  - name: corp
    issuer: %q
    audiences: [%q]
    jwks_url: %q
    username_claim: email
    roles_claim: roles
    groups_claim: groups
roles:
  reader: {backend_user: %s, backend_password: "file:%s.pw"}
  writer: {backend_user: %s, backend_password: "file:%s.pw", pool: %s}
  dba:    {backend_user: nobody_here, backend_password: ""}
  expiring: {backend_user: %s, backend_password: "file:%s.pw", end_at_token_expiry: true}
  temp:   {plan: ephemeral, backend_user: %s, backend_password: "file:%s.pw", grants: ["SELECT ON %s.*"]}
%s
mappings:
  - {issuer: corp, groups: [db-readers], roles: [reader]}
  - {issuer: corp, groups: [db-writers], roles: [writer]}
  - {issuer: dev, groups: [engineering], roles: [reader]}
default_role_order: [reader, writer]
audit: {file: audit.log}
log: {level: debug}
issuer: {url: %q, key_encryption_key: "file:kek"}
%s
%s
`, httpAddr, opt.pprof, opt.backend, cmp.Or(opt.backendYAML, "tls: disabled"), cmp.Or(opt.handshake, "2s"), cmp.Or(opt.failedAuth, 100000), cmp.Or(opt.failedAuth, 100000), opt.extraYAML, corpIssuer, audience, corpJWKS(t), readerUser, readerUser, writerUser, writerUser, cmp.Or(opt.writerPool, "{}"), readerUser, readerUser, adminUser, adminUser, testDB, opt.roles, "http://"+httpAddr, storeYAML(opt.storeDSN), opt.topYAML)
	if err := os.WriteFile(filepath.Join(dir, "kek"), []byte(sharedKEK), 0o600); err != nil {
		t.Fatal(err)
	}
	if opt.beforeStart != nil {
		opt.beforeStart(dir)
	}
	if opt.storeDSN != "" {
		t.Setenv("PORTCULLIS_TEST_STORE_DSN", opt.storeDSN)
	}
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.InitDevKey(filepath.Join(dir, "dev.pem")); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := auth.LoadDevIssuer(cfg.DevIssuer)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "portcullis.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	secretsMu.Lock()
	logFiles = append(logFiles, logPath, cfg.Audit.File)
	secretsMu.Unlock()
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := service.Start(context.Background(), cfg, service.Options{InsecureNoTLS: opt.insecureNoTLS, Log: log, ConfigPath: cfgPath})
	for attempt := 0; err != nil && strings.Contains(err.Error(), "address already in use") && attempt < 5; attempt++ {
		// The reserved port was taken between freeAddr and Start: another.
		next := freeAddr(t)
		yaml = strings.ReplaceAll(yaml, httpAddr, next)
		httpAddr = next
		if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		if cfg, err = config.Load(cfgPath); err != nil {
			t.Fatal(err)
		}
		svc, err = service.Start(context.Background(), cfg, service.Options{InsecureNoTLS: opt.insecureNoTLS, Log: log, ConfigPath: cfgPath})
	}
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, svc: svc, addr: svc.MySQLAddr.String(), dev: dev, corpKey: corpKey, audit: cfg.Audit.File,
		http: "http://" + svc.HTTPAddr.String()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		svc.Shutdown(ctx)
		logFile.Close()
	})
	if svc.Certs != nil {
		h.ca = filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(h.ca, svc.Certs.CAPEM(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// caPool is the harness's CA as a pool for crypto/tls.
func (h *harness) caPool() *x509.CertPool {
	pool := x509.NewCertPool()
	if h.svc.Certs == nil || !pool.AppendCertsFromPEM(h.svc.Certs.CAPEM()) {
		h.t.Fatal("the harness has no CA (insecureNoTLS?)")
	}
	return pool
}

// mint returns a dev-issuer token for email.
func (h *harness) mint(email string, roles, groups []string) string {
	h.t.Helper()
	tok, err := h.dev.Mint(auth.MintRequest{Subject: email, Email: email, Roles: roles, Groups: groups, TTL: 10 * time.Minute})
	if err != nil {
		h.t.Fatal(err)
	}
	remember(tok)
	return tok
}

// corpClaims are valid claims from the corp IdP; tests change them.
func corpClaims(email string, groups ...string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": corpIssuer, "aud": audience, "sub": "sub-" + email, "email": email, "groups": groups,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

// sign signs claims as the corp IdP would (RS256 with its key and kid).
func (h *harness) sign(claims jwt.MapClaims) string {
	h.t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = corpKID
	s, err := tok.SignedString(h.corpKey)
	if err != nil {
		h.t.Fatal(err)
	}
	remember(s)
	return s
}

// clientConfig is a go-sql-driver config for user/token through the proxy
// with verified TLS: the proxy's certificate against the harness's CA and
// the host name.
func (h *harness) clientConfig(user, token string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, token, "tcp", h.addr
	if h.svc.Certs != nil {
		cfg.TLS = &tls.Config{RootCAs: h.caPool(), ServerName: "127.0.0.1"}
	}
	cfg.AllowCleartextPasswords = true
	cfg.Timeout = 5 * time.Second
	return cfg
}

// open returns a *sql.DB through the proxy; mutate adjusts the driver config.
func (h *harness) open(user, token string, mutate ...func(*mysql.Config)) *sql.DB {
	h.t.Helper()
	cfg := h.clientConfig(user, token)
	for _, m := range mutate {
		m(cfg)
	}
	return openConfig(h.t, cfg)
}

func openConfig(t testing.TB, cfg *mysql.Config) *sql.DB {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// queryString runs a one-value query.
func queryString(t testing.TB, db interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, q string, args ...any) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRowContext(context.Background(), q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// auditLines reads the audit log as JSON objects.
func (h *harness) auditLines() []map[string]any {
	h.t.Helper()
	data, err := os.ReadFile(h.audit)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range splitLines(data) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			h.t.Fatalf("audit line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

func splitLines(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, b := range data {
		if b == '\n' {
			if i > start {
				out = append(out, data[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func rsaKey(t testing.TB) (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, nil
}

// freeAddr finds a free loopback port below Linux's ephemeral range
// (32768+), where outgoing connections never take it between this check
// and the bind that follows.
func freeAddr(t testing.TB) string {
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+mathrand.IntN(12000))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port between 20000 and 32000")
	return ""
}
