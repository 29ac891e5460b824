package integration

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	dto "github.com/prometheus/client_model/go"

	"github.com/portcullisdb/portcullis/metrics"
)

// TestPooledConnectionsLeakNothing: one identity leaves user variables, a
// temporary table, a session variable, an open transaction and a prepared
// statement on a pooled backend connection; the next session, another
// identity's, gets the same backend connection and sees none of it.
func TestPooledConnectionsLeakNothing(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	ctx := context.Background()
	session := func(email string) (*sql.Conn, func()) {
		db := h.open(email+"/writer", h.mint(email, []string{"writer"}, nil), func(c *mysql.Config) { c.DBName = testDB; c.Collation = "utf8mb4_unicode_ci" })
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c, func() { c.Close(); db.Close() } // db.Close sends COM_QUIT
	}
	a, quitA := session("anna@example.com")
	var threadA int64
	a.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&threadA)
	for _, q := range []string{
		"SET @secret = 'anna-only'",
		"CREATE TEMPORARY TABLE scratch (v VARCHAR(20))",
		"INSERT INTO scratch VALUES ('anna-only')",
		"SET SESSION sql_mode = 'ANSI_QUOTES'",
		"SET NAMES latin1",
		"START TRANSACTION",
		"INSERT INTO items (name) VALUES ('uncommitted-anna')",
		"PREPARE anna_stmt FROM 'SELECT 1'",
	} {
		if _, err := a.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	quitA()

	b, quitB := session("ben@example.com")
	var threadB int64
	b.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&threadB)
	if threadB != threadA {
		t.Fatalf("the second session got backend thread %d, not the pooled %d: the pool was not used", threadB, threadA)
	}
	checks := []struct{ name, query, want string }{
		{"user variable", "SELECT COALESCE(@secret, 'none')", "none"},
		{"session variable", "SELECT @@SESSION.sql_mode = @@GLOBAL.sql_mode", "1"},
		{"open transaction rolled back", "SELECT COUNT(*) FROM items WHERE name = 'uncommitted-anna'", "0"},
		{"not in a transaction", "SELECT @@in_transaction", "0"},
		{"the client's own collation", "SELECT @@collation_connection", "utf8mb4_unicode_ci"},
		{"the requested database", "SELECT DATABASE()", testDB},
	}
	for _, c := range checks {
		if got := queryString(t, b, c.query); got != c.want {
			t.Errorf("%s leaked: %s = %q, want %q", c.name, c.query, got, c.want)
		}
	}
	if _, err := b.ExecContext(ctx, "SELECT * FROM scratch"); err == nil {
		t.Error("temporary table leaked: SELECT FROM scratch worked")
	}
	if _, err := b.ExecContext(ctx, "EXECUTE anna_stmt"); err == nil {
		t.Error("prepared statement leaked: EXECUTE anna_stmt worked")
	}

	// A session that asks for a database gets a pooled connection left
	// on another one, switched with COM_INIT_DB.
	if _, err := b.ExecContext(ctx, "USE information_schema"); err != nil {
		t.Fatal(err)
	}
	quitB()
	withDB, quitD := session("dora@example.com")
	defer quitD()
	var threadD int64
	withDB.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&threadD)
	if threadD != threadB {
		t.Errorf("dora got backend thread %d, not the pooled %d (switched to her database)", threadD, threadB)
	}
	if got := queryString(t, withDB, "SELECT DATABASE()"); got != testDB {
		t.Errorf("the requested database: got %q, want %q", got, testDB)
	}

	// The default database survives COM_RESET_CONNECTION, and no command
	// leaves one: a session that asked for none must not inherit the one
	// the last session of the same kind of client chose with USE.
	noDB := func(email string) *sql.DB {
		return h.open(email+"/writer", h.mint(email, []string{"writer"}, nil), func(c *mysql.Config) { c.Collation = "utf8mb4_unicode_ci" })
	}
	carl := noDB("carl@example.com")
	if _, err := carl.ExecContext(ctx, "USE information_schema"); err != nil {
		t.Fatal(err)
	}
	carl.Close() // COM_QUIT: the connection goes back to the pool
	erin := noDB("erin@example.com")
	defer erin.Close()
	if got := queryString(t, erin, "SELECT COALESCE(DATABASE(), 'none')"); got != "none" {
		t.Errorf("a session that asked for no database got %q, left by the last one", got)
	}
}

// TestPoolMinIdle: after the first session of a kind of client, the pool
// opens connections ahead of demand up to min_idle, so the next sessions
// skip the backend's login even when they come at once.
func TestPoolMinIdle(t *testing.T) {
	h := startHarness(t, harnessOpts{writerPool: "{min_idle: 3, max_idle: 4}"})
	backendConns := func() int {
		var n int
		if err := root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", writerUser).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := backendConns(); n != 0 {
		t.Fatalf("%d backend connections before any client: want 0 (min_idle fills per kind of client, after its first)", n)
	}
	first := h.open("fay@example.com/writer", h.mint("fay@example.com", []string{"writer"}, nil))
	defer first.Close()
	first.SetMaxIdleConns(1)
	var thread int64
	if err := first.QueryRow("SELECT CONNECTION_ID()").Scan(&thread); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for backendConns() < 4 { // the session's own and three warm ones
		if time.Now().After(deadline) {
			t.Fatalf("%d backend connections 5s after the first session: want 4 (1 in use + min_idle 3)", backendConns())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := backendConns(); n != 4 {
		t.Fatalf("the pool kept filling: %d backend connections, want 4", n)
	}
	// The next sessions take warm connections: no backend login on
	// their path (the dial metric counts only logins a client waits for).
	before := dialsOnClientPath(t)
	for _, who := range []string{"gus", "hal", "ida"} {
		db := h.open(who+"@example.com/writer", h.mint(who+"@example.com", []string{"writer"}, nil))
		defer db.Close()
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
	}
	if n := dialsOnClientPath(t) - before; n != 0 {
		t.Errorf("%d of 3 sessions waited for a backend login; want 0 with min_idle 3", n)
	}
}

// dialsOnClientPath is how many backend logins a connecting client has
// waited for, in this process.
func dialsOnClientPath(t *testing.T) uint64 {
	var m dto.Metric
	if err := metrics.BackendDialSeconds.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
