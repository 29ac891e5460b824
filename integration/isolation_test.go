package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// backendAccount creates a backend account for one test, with grants on
// testDB, and returns its name; its password is in passwords (and so in
// the harness's <name>.pw file). It is dropped when the test ends.
func backendAccount(t *testing.T, prefix string, grants ...string) string {
	t.Helper()
	user := prefix + "_" + randomHex(3)
	pw := randomHex(16)
	passwords[user] = pw
	remember(pw)
	stmts := []string{fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, pw)}
	for _, g := range grants {
		stmts = append(stmts, fmt.Sprintf("GRANT %s TO '%s'@'%%'", g, user))
	}
	for _, s := range stmts {
		if _, err := root.Exec(s); err != nil {
			t.Fatalf("%s: %v", strings.Replace(s, pw, "***", 1), err)
		}
	}
	t.Cleanup(func() {
		root.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user))
		delete(passwords, user)
	})
	return user
}

// authString is the account's stored password hash, as root sees it.
func authString(t *testing.T, user string) string {
	t.Helper()
	var s string
	if err := root.QueryRow("SELECT authentication_string FROM mysql.user WHERE user = ?", user).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGuardKeepsTheAccount: on a shared (static) role account, every
// account statement form is refused with 1227 before it reaches MariaDB,
// and afterwards the account's password is what it was and still logs in.
// The account can change its own password and create routines, so
// without the guard each form would succeed.
func TestGuardKeepsTheAccount(t *testing.T) {
	user := backendAccount(t, "pcit_guard",
		fmt.Sprintf("SELECT, INSERT, UPDATE, CREATE ROUTINE, ALTER ROUTINE, EXECUTE ON %s.*", testDB))
	h := startHarness(t, harnessOpts{roles: fmt.Sprintf(`  guarded: {backend_user: %s, backend_password: "file:%s.pw", pool: {max_idle: -1}}`, user, user)})
	before := authString(t, user)
	ctx := context.Background()
	db := h.open("gina@example.com/guarded", h.mint("gina@example.com", []string{"guarded"}, nil), func(c *mysql.Config) {
		c.MultiStatements = true
		c.DBName = testDB
	})
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Cleanup(func() { root.Exec(fmt.Sprintf("DROP PROCEDURE IF EXISTS %s.pw", testDB)) })

	pw := "PASSWORD('owned-by-gina')"
	refused := []struct{ name, sql string }{
		{"plain", "SET PASSWORD = " + pw},
		{"for the current user", "SET PASSWORD FOR CURRENT_USER() = " + pw},
		{"a later item of a SET list", "SET @a = 1, PASSWORD = " + pw},
		{"alter user", "ALTER USER CURRENT_USER() IDENTIFIED BY 'owned-by-gina'"},
		{"multi-statement", "SELECT 1; SET PASSWORD = " + pw},
		{"executable comment", "/*! SET PASSWORD = " + pw + " */"},
		{"versioned executable comment", "/*!50000 SET PASSWORD = " + pw + " */"},
		{"mariadb executable comment", "/*M! SET PASSWORD = " + pw + " */"},
		{"mariadb versioned comment", "SELECT 1 /*M!100100 ; SET PASSWORD = " + pw + " */"},
		{"prepare from a string", "PREPARE s FROM 'SET PASSWORD = PASSWORD(''owned-by-gina'')'"},
		{"execute immediate", "EXECUTE IMMEDIATE 'SET PASSWORD = PASSWORD(''owned-by-gina'')'"},
		{"execute immediate from a variable", "SET @q = 'SET PASSWORD = PASSWORD(''owned-by-gina'')'; EXECUTE IMMEDIATE @q"},
		{"prepare from a variable", "SET @q = 'SET PASSWORD = PASSWORD(''owned-by-gina'')'; PREPARE s FROM @q; EXECUTE s"},
		{"procedure body", "CREATE PROCEDURE pw() SET PASSWORD = " + pw + "; CALL pw()"},
		{"procedure begin body", "CREATE PROCEDURE pw() BEGIN SELECT 1; SET PASSWORD = " + pw + "; END; CALL pw()"},
		{"anonymous compound statement", "BEGIN NOT ATOMIC SET PASSWORD = " + pw + "; END"},
		{"grant", fmt.Sprintf("GRANT SELECT ON %s.* TO CURRENT_USER()", testDB)},
		{"create user", "CREATE USER gina_own IDENTIFIED BY 'x'"},
	}
	for _, c := range refused {
		_, err := conn.ExecContext(ctx, c.sql)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1227 || !strings.Contains(me.Message, "portcullis") {
			t.Errorf("%s: %q got %v, want portcullis's 1227", c.name, c.sql, err)
		}
	}
	// With NO_BACKSLASH_ESCAPES, 'a\' ends the string: the rest is code.
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT 'a\'; SET PASSWORD = `+pw+`; -- '`); err == nil {
		t.Error("a SET PASSWORD after a backslash-ended string passed under NO_BACKSLASH_ESCAPES")
	}
	// COM_STMT_PREPARE.
	if _, err := conn.PrepareContext(ctx, "SET PASSWORD = "+pw); err == nil {
		t.Error("COM_STMT_PREPARE of SET PASSWORD passed")
	}

	// Ordinary statements that look alike pass.
	for _, q := range []string{
		"UPDATE items SET name = 'x' WHERE id < 0",
		"SELECT 'SET PASSWORD = x; GRANT'",
		"PREPARE s FROM 'SELECT 1'",
		"EXECUTE IMMEDIATE 'SELECT 1'",
		"SET ROLE NONE",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}

	if after := authString(t, user); after != before {
		root.Exec(fmt.Sprintf("ALTER USER '%s'@'%%' IDENTIFIED BY '%s'", user, passwords[user]))
		t.Fatal("the shared account's password changed through the proxy")
	}
	var n int
	root.QueryRow("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = 'pw'", testDB).Scan(&n)
	if n != 0 {
		t.Error("a procedure with SET PASSWORD in its body was created")
	}
	direct := mysql.NewConfig()
	direct.User, direct.Passwd, direct.Net, direct.Addr = user, passwords[user], "tcp", backendAddr
	if err := openConfig(t, direct).Ping(); err != nil {
		t.Fatalf("the account no longer logs in with its password: %v", err)
	}
}

// TestKillOnlyOwnSessions: alice and bob share the reader account. bob's
// KILL of alice's running query, by her backend thread id (what
// CONNECTION_ID() shows) or by her proxy id, in every form, gets 1095
// and her query keeps running; KILL USER of the shared account is refused
// too. alice's own KILL QUERY by backend thread id ends it.
func TestKillOnlyOwnSessions(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	ctx := context.Background()
	aliceToken := h.mint("alice@example.com", []string{"reader"}, nil)
	alice := h.open("alice@example.com", aliceToken)
	alice.SetMaxOpenConns(1)
	conn, err := alice.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	thread := queryString(t, conn, "SELECT CONNECTION_ID()")
	proxyID := waitSession(t, h, "alice@example.com")
	done := make(chan error, 1)
	go func() {
		_, err := conn.ExecContext(ctx, "SELECT SLEEP(30)")
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)

	bob := h.open("bob@example.com", h.mint("bob@example.com", []string{"reader"}, nil))
	for _, q := range []string{
		"KILL QUERY " + thread,
		"KILL " + thread,
		"KILL CONNECTION " + thread,
		"KILL HARD QUERY " + thread,
		fmt.Sprintf("KILL QUERY %d", proxyID),
		fmt.Sprintf("KILL %d", proxyID),
		"KILL USER " + readerUser,
		"KILL QUERY ID 1",
		"/*!50000 KILL QUERY " + thread + " */",
	} {
		var me *mysql.MySQLError
		if _, err := bob.Exec(q); !errors.As(err, &me) || me.Number != 1095 {
			t.Errorf("bob: %s: got %v, want 1095", q, err)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("alice's query ended after bob's KILLs: %v", err)
	case <-time.After(300 * time.Millisecond):
	}

	own := h.open("alice@example.com", aliceToken)
	if _, err := own.Exec("KILL QUERY " + thread); err != nil {
		t.Fatalf("alice's KILL QUERY of her own backend thread: %v", err)
	}
	select {
	case err := <-done:
		var me *mysql.MySQLError
		if err != nil && !(errors.As(err, &me) && me.Number == 1317) {
			t.Fatalf("killed query: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("alice's query still running 5s after her own KILL QUERY")
	}
}

// execAll runs each statement on c, failing the test on an error.
func execAll(t *testing.T, c *sql.Conn, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := c.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
