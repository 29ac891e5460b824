package integration

import (
	"context"
	"database/sql"
	"testing"

	"github.com/go-sql-driver/mysql"
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
	defer quitB()
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
}
