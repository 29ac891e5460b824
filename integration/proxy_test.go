package integration

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/golang-jwt/jwt/v5"
)

// TestDriversReachRoleAccounts: both ways go-sql-driver sends a password
// (mysql_clear_password, and caching_sha2_password full auth without the
// cleartext flag) land on the role's backend account.
func TestDriversReachRoleAccounts(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	tests := []struct {
		name      string
		user      string
		token     string
		cleartext bool
		want      string
	}{
		{"dev token, cleartext plugin, default role", "alice@example.com", h.mint("alice@example.com", nil, []string{"engineering"}), true, readerUser + "@%"},
		{"dev token, caching_sha2 full auth", "alice@example.com", h.mint("alice@example.com", nil, []string{"engineering"}), false, readerUser + "@%"},
		{"corp token via JWKS URL, group mapping", "bob@corp.test", h.sign(corpClaims("bob@corp.test", "db-writers")), false, writerUser + "@%"},
		{"role picked with identity/role", "carol@corp.test/writer", h.sign(corpClaims("carol@corp.test", "db-readers", "db-writers")), true, writerUser + "@%"},
		{"user name case differs from email", "Alice@Example.com", h.mint("alice@example.com", []string{"reader"}, nil), false, readerUser + "@%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := h.open(tt.user, tt.token, func(c *mysql.Config) { c.AllowCleartextPasswords = tt.cleartext })
			if got := queryString(t, db, "SELECT CURRENT_USER()"); got != tt.want {
				t.Fatalf("CURRENT_USER() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadOnlyRoleWriteFailsWithBackendError(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	db := h.open("alice@example.com", h.mint("alice@example.com", []string{"reader"}, nil))
	_, err := db.Exec("INSERT INTO " + testDB + ".items (name) VALUES ('nope')")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1142 {
		t.Fatalf("write through the reader role: got %v, want the backend's error 1142 (INSERT command denied)", err)
	}
	w := h.open("alice@example.com/writer", h.mint("alice@example.com", []string{"writer"}, nil))
	if _, err := w.Exec("INSERT INTO " + testDB + ".items (name) VALUES ('yes')"); err != nil {
		t.Fatalf("write through the writer role: %v", err)
	}
}

// TestProtocolFeatures: what drivers rely on works as it does direct.
func TestProtocolFeatures(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	token := h.mint("dana@example.com", []string{"writer"}, nil)
	user := "dana@example.com/writer"

	t.Run("default database and collation pass through", func(t *testing.T) {
		db := h.open(user, token, func(c *mysql.Config) { c.DBName = testDB; c.Collation = "utf8mb4_unicode_ci" })
		if got := queryString(t, db, "SELECT DATABASE()"); got != testDB {
			t.Fatalf("DATABASE() = %q", got)
		}
		if got := queryString(t, db, "SELECT @@collation_connection"); got != "utf8mb4_unicode_ci" {
			t.Fatalf("collation = %q", got)
		}
	})
	t.Run("multi-statements and multi-results", func(t *testing.T) {
		db := h.open(user, token, func(c *mysql.Config) { c.MultiStatements = true; c.DBName = testDB })
		rows, err := db.Query("SELECT 1; SELECT 2, 3")
		if err != nil {
			t.Fatal(err)
		}
		sets := 0
		for {
			for rows.Next() {
			}
			sets++
			if !rows.NextResultSet() {
				break
			}
		}
		rows.Close()
		if sets != 2 {
			t.Fatalf("got %d result sets, want 2", sets)
		}
		rows, err = db.Query("CALL two_results()")
		if err != nil {
			t.Fatal(err)
		}
		sets = 0
		for {
			for rows.Next() {
			}
			sets++
			if !rows.NextResultSet() {
				break
			}
		}
		rows.Close()
		if sets < 2 {
			t.Fatalf("CALL gave %d result sets, want 2", sets)
		}
	})
	t.Run("server-side prepared statements", func(t *testing.T) {
		db := h.open(user, token, func(c *mysql.Config) { c.DBName = testDB; c.InterpolateParams = false })
		stmt, err := db.Prepare("SELECT name FROM items WHERE id = ?")
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		var name string
		if err := stmt.QueryRow(1).Scan(&name); err != nil || name != "one" {
			t.Fatalf("prepared select: %q, %v", name, err)
		}
	})
	t.Run("LOAD DATA LOCAL INFILE", func(t *testing.T) {
		if v := queryString(t, root, "SELECT @@local_infile"); v != "1" {
			t.Skip("backend has local_infile off")
		}
		file := filepath.Join(t.TempDir(), "rows.csv")
		var b strings.Builder
		for i := range 3000 { // several packets
			fmt.Fprintf(&b, "%d,row-%d-%s\n", 100000+i, i, strings.Repeat("x", 40))
		}
		os.WriteFile(file, []byte(b.String()), 0o600)
		mysql.RegisterLocalFile(file)
		db := h.open(user, token, func(c *mysql.Config) { c.DBName = testDB })
		db.Exec("CREATE TEMPORARY TABLE t (id INT, name VARCHAR(100))")
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(context.Background(), "CREATE TEMPORARY TABLE loaded (id INT, name VARCHAR(100))"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(context.Background(), fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE loaded FIELDS TERMINATED BY ','", file)); err != nil {
			t.Fatal(err)
		}
		if got := queryString(t, conn, "SELECT COUNT(*) FROM loaded"); got != "3000" {
			t.Fatalf("loaded %s rows, want 3000", got)
		}
	})
	t.Run("8 KB token", func(t *testing.T) {
		var groups []string
		for i := range 400 {
			groups = append(groups, fmt.Sprintf("group-with-a-long-name-%04d", i))
		}
		big := h.mint("erin@example.com", []string{"reader"}, groups)
		if len(big) < 8<<10 {
			t.Fatalf("token is only %d bytes", len(big))
		}
		for _, cleartext := range []bool{true, false} {
			db := h.open("erin@example.com", big, func(c *mysql.Config) { c.AllowCleartextPasswords = cleartext })
			if got := queryString(t, db, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
				t.Fatalf("cleartext=%v: CURRENT_USER() = %q", cleartext, got)
			}
		}
	})
}

// TestBadInput: each refusal is a clear 1045 with a reason, and the proxy
// keeps serving.
func TestBadInput(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	other, _ := rsaKey(t)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustPKIX(t, &corpKey.PublicKey)})
	signWith := func(method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, claims)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		remember(s)
		return s
	}
	claims := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := corpClaims("bob@corp.test", "db-readers")
		mut(c)
		return c
	}
	now := time.Now()
	tests := []struct {
		name  string
		user  string
		token string
		code  uint16
		want  string
	}{
		{"expired", "bob@corp.test", h.sign(claims(func(c jwt.MapClaims) {
			c["exp"] = now.Add(-3 * time.Minute).Unix()
			c["iat"] = now.Add(-time.Hour).Unix()
			c["nbf"] = now.Add(-time.Hour).Unix()
		})), 1045, "expired"},
		{"not yet valid", "bob@corp.test", h.sign(claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() })), 1045, "not valid"},
		{"wrong audience", "bob@corp.test", h.sign(claims(func(c jwt.MapClaims) { c["aud"] = "someone-else" })), 1045, "audience"},
		{"wrong issuer", "bob@corp.test", h.sign(claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test/" })), 1045, "not trusted"},
		{"unknown kid", "bob@corp.test", signWith(jwt.SigningMethodRS256, other, "rotated-away", claims(func(jwt.MapClaims) {})), 1045, "key id"},
		{"alg none", "bob@corp.test", signWith(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, corpKID, claims(func(jwt.MapClaims) {})), 1045, "not allowed"},
		{"HS256 keyed with the public key", "bob@corp.test", signWith(jwt.SigningMethodHS256, pubPEM, corpKID, claims(func(jwt.MapClaims) {})), 1045, "not allowed"},
		{"garbage", "bob@corp.test", "this-is-not-a-token", 1045, "malformed"},
		{"empty password", "bob@corp.test", "", 1045, "empty password"},
		{"1 MB password", "bob@corp.test", strings.Repeat("A", 1<<20), 1045, "too large"},
		{"lifetime over the maximum", "bob@corp.test", h.sign(claims(func(c jwt.MapClaims) { c["exp"] = now.Add(48 * time.Hour).Unix() })), 1045, "lifetime"},
		{"user name does not match the token", "mallory@corp.test", h.sign(corpClaims("bob@corp.test", "db-readers")), 1045, "does not match"},
		{"role the identity lacks", "bob@corp.test/writer", h.sign(corpClaims("bob@corp.test", "db-readers")), 1045, `no role "writer" for bob@corp.test`},
		{"role not configured", "bob@corp.test/root", h.sign(corpClaims("bob@corp.test", "db-readers")), 1045, `no role "root" is configured`},
		{"no role at all", "zed@corp.test", h.sign(corpClaims("zed@corp.test", "marketing")), 1045, "holds no role"},
		{"empty user name", "", h.sign(corpClaims("bob@corp.test", "db-readers")), 1045, "empty user name"},
	}
	for _, tt := range tests {
		for _, cleartext := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/cleartext=%v", tt.name, cleartext), func(t *testing.T) {
				db := h.open(tt.user, tt.token, func(c *mysql.Config) { c.AllowCleartextPasswords = cleartext })
				err := db.Ping()
				var me *mysql.MySQLError
				if !errors.As(err, &me) {
					t.Fatalf("got %v, want a MySQL error %d", err, tt.code)
				}
				if me.Number != tt.code || !strings.Contains(me.Message, tt.want) {
					t.Fatalf("got %d %q, want %d containing %q", me.Number, me.Message, tt.code, tt.want)
				}
				if len(tt.token) > 20 && strings.Contains(me.Message, tt.token[len(tt.token)-20:]) {
					t.Fatal("the error message contains the token")
				}
			})
		}
	}
	t.Run("no TLS", func(t *testing.T) {
		db := h.open("bob@corp.test", h.sign(corpClaims("bob@corp.test", "db-readers")), func(c *mysql.Config) { c.TLS = nil; c.TLSConfig = "false" })
		var me *mysql.MySQLError
		if err := db.Ping(); !errors.As(err, &me) || me.Number != 1045 || !strings.Contains(me.Message, "TLS is required") {
			t.Fatalf("got %v, want 1045 telling to use TLS", err)
		}
	})
	t.Run("still serving", func(t *testing.T) {
		db := h.open("bob@corp.test", h.sign(corpClaims("bob@corp.test", "db-readers")))
		if got := queryString(t, db, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
			t.Fatalf("CURRENT_USER() = %q", got)
		}
	})
	t.Run("every refusal is audited with its reason", func(t *testing.T) {
		denied := 0
		for _, e := range h.auditLines() {
			if e["event"] == "connect" && e["outcome"] == "denied" {
				denied++
				if e["reason"] == "" || e["reason"] == nil {
					t.Fatalf("denied without reason: %v", e)
				}
			}
		}
		if denied < 2*len(tests) {
			t.Fatalf("%d denied connect events, want at least %d", denied, 2*len(tests))
		}
	})
}

// TestKill: KILL QUERY by proxy id from a second connection of the same
// identity, refusal for another identity, and the registry's kill.
func TestKill(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	token := h.mint("fay@example.com", []string{"reader"}, nil)
	db := h.open("fay@example.com", token)
	db.SetMaxOpenConns(1)
	done := make(chan error, 1)
	go func() {
		_, err := db.Exec("SELECT SLEEP(20)")
		done <- err
	}()
	id := waitSession(t, h, "fay@example.com")

	intruder := h.open("gus@example.com", h.mint("gus@example.com", []string{"reader"}, nil))
	var me *mysql.MySQLError
	if _, err := intruder.Exec(fmt.Sprintf("KILL QUERY %d", id)); !errors.As(err, &me) || me.Number != 1095 {
		t.Fatalf("another identity's KILL: got %v, want 1095", err)
	}
	killer := h.open("fay@example.com", token)
	if _, err := killer.Exec(fmt.Sprintf("KILL QUERY %d", id)); err != nil {
		t.Fatalf("KILL QUERY %d: %v", id, err)
	}
	select {
	case err := <-done:
		// MariaDB answers a killed SLEEP with 1 (no error) or error 1317.
		if err != nil && !(errors.As(err, &me) && me.Number == 1317) {
			t.Fatalf("killed query: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("query still running 5s after KILL QUERY")
	}
	if got := queryString(t, db, "SELECT 'still connected'"); got != "still connected" {
		t.Fatal("the session did not survive KILL QUERY")
	}

	if n := h.svc.Proxy.Sessions.KillIdentity("fay@example.com", "killed by test"); n < 2 {
		t.Fatalf("KillIdentity ended %d sessions, want fay's 2", n)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left := 0
		for _, s := range h.svc.Proxy.Sessions.List() {
			if s.Identity == "fay@example.com" {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of fay still registered after KillIdentity", left)
		}
	}
	if got := queryString(t, h.open("gus@example.com", h.mint("gus@example.com", []string{"reader"}, nil)), "SELECT 'other identities unaffected'"); got == "" {
		t.Fatal("another identity could not connect")
	}
}

// waitSession waits for identity's session to be registered and returns its proxy id.
func waitSession(t *testing.T, h *harness, identity string) uint32 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range h.svc.Proxy.Sessions.List() {
			if s.Identity == identity {
				return s.ID
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no session for %s", identity)
	return 0
}

func TestHandshakeTimeoutDropsSilentClients(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	start := time.Now()
	for { // read the greeting, then wait for the close
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("silent client still connected after %v (handshake_timeout is 2s)", d)
	}
}

// TestMaxConnections: max_connections counts authenticated sessions;
// connections still in the handshake have their own budget and take no
// session's place.
func TestMaxConnections(t *testing.T) {
	h := startHarness(t, harnessOpts{extraYAML: "  max_connections: 2"})
	for range 3 { // silent connections: handshake slots only
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(100 * time.Millisecond)
	token := h.mint("hal@example.com", []string{"reader"}, nil)
	for i := range 2 {
		db := h.open("hal@example.com", token)
		db.SetMaxOpenConns(1)
		if err := db.Ping(); err != nil {
			t.Fatalf("session %d of 2 beside 3 silent connections: %v", i+1, err)
		}
	}
	db := h.open("hal@example.com", token)
	var me *mysql.MySQLError
	if err := db.Ping(); !errors.As(err, &me) || me.Number != 1040 || !strings.Contains(me.Message, "proxy.max_connections") {
		t.Fatalf("third session: got %v, want 1040 too many connections", err)
	}
}

// TestBackendDown: a clear 2003 naming the backend while it is down, and
// service again once it is back. The backend path runs through a TCP relay
// the test can cut, in front of the real MariaDB.
func TestBackendDown(t *testing.T) {
	gate := newGate(t, backendAddr)
	h := startHarness(t, harnessOpts{backend: gate.addr()})
	token := h.mint("ivy@example.com", []string{"reader"}, nil)
	ping := func() error {
		db := h.open("ivy@example.com", token)
		return db.Ping()
	}
	if err := ping(); err != nil {
		t.Fatalf("backend up: %v", err)
	}
	gate.close()
	var me *mysql.MySQLError
	if err := ping(); !errors.As(err, &me) || me.Number != 2003 || !strings.Contains(me.Message, gate.addr()) {
		t.Fatalf("backend down: got %v, want 2003 naming %s", err, gate.addr())
	}
	gate.open()
	if err := ping(); err != nil {
		t.Fatalf("backend back: %v", err)
	}
}

// TestShutdownDrains: Shutdown waits for sessions and then closes the rest.
func TestShutdownDrains(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	db := h.open("jon@example.com", h.mint("jon@example.com", []string{"reader"}, nil))
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := h.svc.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 connection(s) still open") {
		t.Fatalf("Shutdown: %v, want a report of 1 open connection", err)
	}
	if _, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		t.Fatal("listener still accepting after Shutdown")
	}
}

// TestAuditTrail: a granted session writes connect and disconnect lines
// with identity, role, backend user and byte counts.
func TestAuditTrail(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	db := h.open("kim@example.com", h.mint("kim@example.com", nil, []string{"engineering"}))
	queryString(t, db, "SELECT 1")
	db.Close()
	var connect, disconnect map[string]any
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && disconnect == nil; time.Sleep(20 * time.Millisecond) {
		for _, e := range h.auditLines() {
			switch e["event"] {
			case "connect":
				connect = e
			case "disconnect":
				disconnect = e
			}
		}
	}
	if connect == nil || disconnect == nil {
		t.Fatal("missing connect or disconnect audit line")
	}
	for k, want := range map[string]any{"outcome": "granted", "identity": "kim@example.com", "issuer": "dev", "role": "reader", "backend_user": readerUser} {
		if connect[k] != want {
			t.Errorf("connect %s = %v, want %v", k, connect[k], want)
		}
	}
	if r, _ := disconnect["reason"].(string); !strings.HasPrefix(r, "client quit") || disconnect["bytes_to_client"] == nil || disconnect["session_id"] != connect["session_id"] {
		t.Errorf("disconnect line: %v", disconnect)
	}
}

// gate is a TCP relay to a real server that the test can cut and restore.
type gate struct {
	t      *testing.T
	target string
	ln     net.Listener
	laddr  string
	mu     sync.Mutex
	conns  []net.Conn
}

func newGate(t *testing.T, target string) *gate {
	g := &gate{t: t, target: target}
	g.open()
	t.Cleanup(g.close)
	return g
}

func (g *gate) addr() string { return g.laddr }

func (g *gate) open() {
	addr := g.laddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		g.t.Fatal(err)
	}
	g.ln, g.laddr = ln, ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", g.target)
			if err != nil {
				c.Close()
				continue
			}
			g.mu.Lock()
			g.conns = append(g.conns, c, b)
			g.mu.Unlock()
			go func() { copyClose(b, c) }()
			go func() { copyClose(c, b) }()
		}
	}()
}

func (g *gate) close() {
	g.ln.Close()
	g.mu.Lock()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
	g.mu.Unlock()
}

func copyClose(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

func mustPKIX(t *testing.T, pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestInsecureNoTLS: the development switch lets a driver pass the token
// without TLS (it is switched to mysql_clear_password, so the driver must
// allow cleartext); the benchmark's comparison row depends on it.
func TestInsecureNoTLS(t *testing.T) {
	h := startHarness(t, harnessOpts{insecureNoTLS: true})
	token := h.mint("nia@example.com", []string{"reader"}, nil)
	db := h.open("nia@example.com", token, func(c *mysql.Config) { c.TLS = nil; c.TLSConfig = "false" })
	if got := queryString(t, db, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
		t.Fatalf("CURRENT_USER() = %q", got)
	}
	strict := h.open("nia@example.com", token, func(c *mysql.Config) { c.TLS = nil; c.TLSConfig = "false"; c.AllowCleartextPasswords = false })
	if err := strict.Ping(); err == nil {
		t.Fatal("a driver that forbids cleartext passwords sent the token without TLS")
	}
}
