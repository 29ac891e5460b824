package integration

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	gosql "github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/proxy/wire"
)

// rawClient is a MySQL client written out packet by packet, so a test can
// do what drivers do not: pipeline several commands and COM_QUIT in one
// write. It speaks plain TCP (the harness runs with insecure_no_tls).
type rawClient struct {
	t    *testing.T
	conn net.Conn
}

const rawCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
	mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_LOCAL_FILES |
	mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA

func dialRaw(t *testing.T, h *harness, user, token string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, _, err := wire.ReadPacket(c, 1<<16); err != nil {
		t.Fatal(err)
	}
	resp := wire.HandshakeResponse{Caps: rawCaps, MaxPacket: 1 << 24, Charset: 45, User: user,
		AuthData: append([]byte(token), 0), DB: testDB, Plugin: mysql.AUTH_CLEAR_PASSWORD}
	if err := wire.WritePacket(c, 1, resp.Encode(false)); err != nil {
		t.Fatal(err)
	}
	p, _, err := wire.ReadPacket(c, 1<<16)
	if err != nil || len(p) == 0 || p[0] != mysql.OK_HEADER {
		code, msg := wire.ParseErrPacket(p)
		t.Fatalf("raw login: %v %d %s", err, code, msg)
	}
	return &rawClient{t: t, conn: c}
}

// packet frames one command (sequence id 0).
func packet(cmd byte, arg string) []byte {
	n := 1 + len(arg)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), 0, cmd}, arg...)
}

// query sends one COM_QUERY and returns the first column of every row,
// or the server's error.
func (r *rawClient) query(q string) ([]string, error) {
	r.t.Helper()
	if _, err := r.conn.Write(packet(mysql.COM_QUERY, q)); err != nil {
		return nil, err
	}
	return r.answer()
}

// answer reads one command's answer: an OK, an ERR, or a result set.
func (r *rawClient) answer() ([]string, error) {
	next := func() []byte {
		p, _, err := wire.ReadPacket(r.conn, 1<<24)
		if err != nil {
			r.t.Fatalf("raw client read: %v", err)
		}
		return p
	}
	p := next()
	switch p[0] {
	case mysql.OK_HEADER:
		return nil, nil
	case mysql.ERR_HEADER:
		code, msg := wire.ParseErrPacket(p)
		return nil, fmt.Errorf("error %d: %s", code, msg)
	}
	for range int(p[0]) { // column definitions
		next()
	}
	next() // EOF
	var rows []string
	for {
		p := next()
		if p[0] == mysql.EOF_HEADER && len(p) < 9 {
			return rows, nil
		}
		v, _, err := wire.FirstColumn(p)
		if err != nil {
			r.t.Fatal(err)
		}
		rows = append(rows, string(v))
	}
}

// TestPoolClosesWhatIsNotIdle: alice pipelines commands and COM_QUIT in
// one write, in several shapes; bob, the next identity of the same kind
// of client on the same pooled account, must get his own answers: never
// alice's backend thread with her answers still queued on it.
func TestPoolClosesWhatIsNotIdle(t *testing.T) {
	account := backendAccount(t, "pcit_pipe", fmt.Sprintf("SELECT, INSERT ON %s.*", testDB))
	h := startHarness(t, harnessOpts{insecureNoTLS: true,
		roles: fmt.Sprintf(`  piped: {backend_user: %s, backend_password: "file:%s.pw", pool: {max_idle: 4}}`, account, account)})
	shapes := []struct {
		name string
		cmds []byte
	}{
		{"results", bytes.Join([][]byte{
			packet(mysql.COM_QUERY, "SELECT 'INJECTED-BY-ALICE'"),
			packet(mysql.COM_QUERY, "SELECT 'INJECTED-BY-ALICE'"),
			packet(mysql.COM_QUERY, "SELECT 'INJECTED-BY-ALICE'"),
		}, nil)},
		// Answers shaped like the old reset's (an OK, then one row naming
		// the database): it took them as its own and pooled the connection
		// with alice's forged row next in line.
		{"answers shaped like a reset", bytes.Join([][]byte{
			packet(mysql.COM_QUERY, "DO 1"),
			packet(mysql.COM_QUERY, "SELECT '"+testDB+"'"),
			packet(mysql.COM_QUERY, "SELECT 'INJECTED-BY-ALICE'"),
		}, nil)},
		{"errors", bytes.Join([][]byte{
			packet(mysql.COM_QUERY, "SELECT * FROM no_such_table"),
			packet(mysql.COM_QUERY, "SELECT 'INJECTED-BY-ALICE'"),
		}, nil)},
		{"a long query still running", packet(mysql.COM_QUERY, "SELECT 'INJECTED-BY-ALICE' FROM (SELECT SLEEP(5)) s")},
		{"LOAD DATA LOCAL mid-way", bytes.Join([][]byte{
			packet(mysql.COM_QUERY, "LOAD DATA LOCAL INFILE '/nonexistent' INTO TABLE items (name)"),
			packet(mysql.COM_QUERY, "SELECT 'INJECTED-BY-ALICE'"),
		}, nil)},
	}
	for i, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			alice := dialRaw(t, h, "alice@example.com/piped", h.mint("alice@example.com", []string{"piped"}, nil))
			if _, err := alice.query("SELECT 1"); err != nil {
				t.Fatal(err)
			}
			if _, err := alice.conn.Write(append(s.cmds, packet(mysql.COM_QUIT, "")...)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // the pool's reset runs as the session ends
			alice.conn.Close()

			bob := dialRaw(t, h, "bob@example.com/piped", h.mint("bob@example.com", []string{"piped"}, nil))
			for k := range 3 {
				want := fmt.Sprintf("bob-%d-%d", i, k)
				got, err := bob.query("SELECT '" + want + "'")
				if err != nil || len(got) != 1 || got[0] != want {
					t.Fatalf("bob's query %d got %q, %v: want %q (alice's answers were left on the pooled connection)", k, got, err, want)
				}
			}
			// bob may get alice's thread: when her answers had all been
			// relayed before her COM_QUIT reached the proxy, nothing was
			// outstanding and the reset's check passes.
			bob.conn.Write(packet(mysql.COM_QUIT, ""))
		})
	}
}

// TestPoolResetClearsWhatMariaDBLeaves: state that COM_RESET_CONNECTION
// does not clear on MariaDB 10.11 (an active role, user-level locks, a
// prepared XA transaction), and state it does (XA ACTIVE, LOCK TABLES),
// checked from the next identity: when it gets the same backend thread
// the state is gone, and a connection the reset could not clean is not
// pooled.
func TestPoolResetClearsWhatMariaDBLeaves(t *testing.T) {
	account := backendAccount(t, "pcit_pool", fmt.Sprintf("SELECT, INSERT, LOCK TABLES ON %s.*", testDB))
	role := "pcit_role_" + randomHex(3)
	for _, q := range []string{
		"CREATE ROLE " + role,
		fmt.Sprintf("GRANT SELECT ON mysql.db TO %s", role),
		fmt.Sprintf("GRANT %s TO '%s'@'%%'", role, account),
	} {
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	other := testDB + ".pool_other_" + randomHex(3)
	if _, err := root.Exec("CREATE TABLE " + other + " (v INT)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec("DROP ROLE IF EXISTS " + role); root.Exec("DROP TABLE IF EXISTS " + other) })
	h := startHarness(t, harnessOpts{roles: fmt.Sprintf(`  pooled: {backend_user: %s, backend_password: "file:%s.pw", pool: {max_idle: 4}}`, account, account)})
	ctx := context.Background()
	session := func(email string) (*gosqlConn, string) {
		db := h.open(email+"/pooled", h.mint(email, []string{"pooled"}, nil), func(c *gosql.Config) { c.DBName = testDB })
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return &gosqlConn{c, db}, queryString(t, c, "SELECT CONNECTION_ID()")
	}
	lock := "pcit_lock_" + randomHex(3)
	xid := "pcit_xa_" + randomHex(3)
	t.Cleanup(func() { root.Exec("XA ROLLBACK '" + xid + "'") })
	cases := []struct {
		name       string
		alice      []string
		check      string // run by the next identity; want "clean"
		mayNotPool bool   // the reset may close instead of pooling
	}{
		{"SET ROLE", []string{"SET ROLE " + role}, "SELECT IF(CURRENT_ROLE() IS NULL, 'clean', CURRENT_ROLE())", false},
		{"GET_LOCK", []string{"SELECT GET_LOCK('" + lock + "', 0)"}, "SELECT IF(IS_FREE_LOCK('" + lock + "'), 'clean', 'held')", false},
		{"LOCK TABLES", []string{"LOCK TABLES items WRITE"}, "SELECT IF(COUNT(*) >= 0, 'clean', '') FROM " + other, false},
		{"XA active", []string{"XA START '" + xid + "a'", "INSERT INTO items (name) VALUES ('xa-active-alice')"},
			"SELECT IF(@@in_transaction = 0 AND (SELECT COUNT(*) FROM items WHERE name = 'xa-active-alice') = 0, 'clean', 'in XA')", true},
		{"XA prepared", []string{"XA START '" + xid + "'", "INSERT INTO items (name) VALUES ('xa-prepared-alice')", "XA END '" + xid + "'", "XA PREPARE '" + xid + "'"},
			"SELECT IF(@@in_transaction = 0, 'clean', 'in XA')", true},
	}
	// A prepared XA transaction outlives its connection by design; what
	// must not happen is that it stays stuck on a pooled thread, where
	// no XA COMMIT or ROLLBACK from another connection reaches it.
	prepared := func(t *testing.T) {
		if _, err := root.Exec("XA ROLLBACK '" + xid + "'"); err != nil {
			t.Errorf("anna's prepared XA transaction cannot be rolled back from another connection: %v", err)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, threadA := session("anna@example.com")
			execAll(t, a.Conn, c.alice...)
			a.close()
			time.Sleep(100 * time.Millisecond)
			b, threadB := session("ben@example.com")
			defer b.close()
			if threadB != threadA && !c.mayNotPool {
				t.Fatalf("ben got backend thread %s, not the pooled %s: the pool was not used", threadB, threadA)
			}
			if got := queryString(t, b.Conn, c.check); got != "clean" {
				t.Errorf("after %v on backend thread %s, ben (thread %s) sees %q", c.alice, threadA, threadB, got)
			}
			if c.name == "XA prepared" {
				prepared(t)
			}
			if c.name == "LOCK TABLES" {
				root.Exec("SET SESSION lock_wait_timeout = 2")
				if _, err := root.Exec(fmt.Sprintf("INSERT INTO %s.items (name) VALUES ('after-lock')", testDB)); err != nil {
					t.Errorf("items still locked after anna's LOCK TABLES: %v", err)
				}
			}
		})
	}
}

// gosqlConn is one driver connection and its pool: closing both sends
// COM_QUIT.
type gosqlConn struct {
	Conn *sql.Conn
	db   *sql.DB
}

func (g *gosqlConn) close() { g.Conn.Close(); g.db.Close() }

// TestProcessKillOwnership: COM_PROCESS_KILL (the old binary command,
// not the KILL statement) reaches only the caller's own sessions too:
// bob's, with alice's backend thread id, gets 1095 and her connection
// lives; alice's own, by her proxy id, ends it.
func TestProcessKillOwnership(t *testing.T) {
	h := startHarness(t, harnessOpts{insecureNoTLS: true})
	aliceToken := h.mint("alice@example.com", []string{"reader"}, nil)
	alice := dialRaw(t, h, "alice@example.com", aliceToken)
	thread, err := alice.query("SELECT CONNECTION_ID()")
	if err != nil {
		t.Fatal(err)
	}
	proxyID := waitSession(t, h, "alice@example.com")
	processKill := func(c *rawClient, id uint64) error {
		if _, err := c.conn.Write(packet(mysql.COM_PROCESS_KILL, string([]byte{byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24)}))); err != nil {
			t.Fatal(err)
		}
		_, err := c.answer()
		return err
	}
	var n uint64
	fmt.Sscan(thread[0], &n)
	bob := dialRaw(t, h, "bob@example.com", h.mint("bob@example.com", []string{"reader"}, nil))
	if err := processKill(bob, n); err == nil || !strings.HasPrefix(err.Error(), "error 1095") {
		t.Fatalf("bob's COM_PROCESS_KILL of alice's thread %d: %v, want 1095", n, err)
	}
	if got, err := alice.query("SELECT 'alive'"); err != nil || got[0] != "alive" {
		t.Fatalf("alice's connection after bob's COM_PROCESS_KILL: %v %v", got, err)
	}
	own := dialRaw(t, h, "alice@example.com", aliceToken)
	if err := processKill(own, uint64(proxyID)); err != nil {
		t.Fatalf("alice's COM_PROCESS_KILL of her own session: %v", err)
	}
	alice.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := alice.conn.Write(packet(mysql.COM_QUERY, "SELECT 1")); err == nil {
		if _, _, err := wire.ReadPacket(alice.conn, 1<<16); err == nil {
			// the proxy may still deliver the kill's error packet
			if _, _, err := wire.ReadPacket(alice.conn, 1<<16); err == nil {
				t.Fatal("alice's connection still answers after her own COM_PROCESS_KILL")
			}
		}
	}
}

// TestPoolKeepsTheDefaultRole: the reset's SET ROLE NONE would leave an
// account with a default role without it; the reset sets it again, so
// the next session on the pooled thread starts as a fresh login does.
func TestPoolKeepsTheDefaultRole(t *testing.T) {
	account := backendAccount(t, "pcit_defrole", fmt.Sprintf("SELECT ON %s.*", testDB))
	role := "pcit_def_" + randomHex(3)
	for _, q := range []string{
		"CREATE ROLE " + role,
		fmt.Sprintf("GRANT %s TO '%s'@'%%'", role, account),
		fmt.Sprintf("SET DEFAULT ROLE %s FOR '%s'@'%%'", role, account),
	} {
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { root.Exec("DROP ROLE IF EXISTS " + role) })
	h := startHarness(t, harnessOpts{roles: fmt.Sprintf(`  defrole: {backend_user: %s, backend_password: "file:%s.pw", pool: {max_idle: 2}}`, account, account)})
	ctx := context.Background()
	open := func(email string) (*gosqlConn, string) {
		db := h.open(email+"/defrole", h.mint(email, []string{"defrole"}, nil))
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return &gosqlConn{c, db}, queryString(t, c, "SELECT CONNECTION_ID()")
	}
	a, threadA := open("anna@example.com")
	if got := queryString(t, a.Conn, "SELECT CURRENT_ROLE()"); got != role {
		t.Fatalf("a fresh login's role is %q, want the default %s", got, role)
	}
	execAll(t, a.Conn, "SET ROLE NONE")
	a.close()
	time.Sleep(100 * time.Millisecond)
	b, threadB := open("ben@example.com")
	defer b.close()
	if threadB != threadA {
		t.Fatalf("ben got thread %s, not the pooled %s", threadB, threadA)
	}
	if got := queryString(t, b.Conn, "SELECT COALESCE(CURRENT_ROLE(), 'none')"); got != role {
		t.Errorf("the pooled connection's role is %q, want the account's default %s", got, role)
	}
}
