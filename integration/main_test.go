package integration

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// backendAddr is the real MariaDB the tests run against.
const backendAddr = "127.0.0.1:3306"

// Backend role accounts the tests create, with narrow grants on testDB.
// The suffix is per test process, so two runs sharing one MariaDB (two
// developers, CI and a developer) do not reset each other's accounts.
var (
	runID      = randomHex(3)
	testDB     = "pcit_" + runID
	readerUser = "pcit_reader_" + runID
	writerUser = "pcit_writer_" + runID
	adminUser  = "pcit_admin_" + runID // creates per-session users for the ephemeral role
)

var (
	root      *sql.DB
	passwords = map[string]string{} // backend account -> password

	// secrets collects every token and password the tests create; TestMain
	// fails the run if any of them shows up in a log or audit file.
	secretsMu sync.Mutex
	secrets   []string
	logFiles  []string
)

func remember(secret string) {
	secretsMu.Lock()
	secrets = append(secrets, secret)
	secretsMu.Unlock()
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test here is end to end: with -short none of them runs,
		// decided once, before any test could reach a nil database or
		// harness (a t.Skip inside a helper comes too late for a test that
		// touched the backend first).
		fmt.Println("integration: skipped (-short runs the unit tests only)")
		os.Exit(0)
	}
	if err := setupBackend(); err != nil {
		fmt.Fprintf(os.Stderr, "integration tests need MariaDB on %s as root with an empty password (run `make test`, which starts or installs it; `go test -short` skips these tests): %v\n", backendAddr, err)
		os.Exit(1)
	}
	code := m.Run()
	teardownBackend()
	if leaked := findLeaks(); leaked != "" {
		fmt.Fprintln(os.Stderr, "FAIL: a secret appeared in a log:", leaked)
		code = 1
	}
	os.Exit(code)
}

func setupBackend() error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "tcp", backendAddr
	cfg.MultiStatements = true
	var err error
	if root, err = sql.Open("mysql", cfg.FormatDSN()); err != nil {
		return err
	}
	if err := root.Ping(); err != nil {
		return err
	}
	for _, u := range []string{readerUser, writerUser, adminUser} {
		pw := randomHex(16)
		passwords[u] = pw
		remember(pw)
	}
	return provisionBackend(root)
}

// provisionBackend creates the test database and the role accounts, with
// the passwords setupBackend chose, on a server (the shared one, or a
// test's private one).
func provisionBackend(db *sql.DB) error {
	stmts := []string{
		"DROP DATABASE IF EXISTS " + testDB,
		"CREATE DATABASE " + testDB,
		"CREATE TABLE " + testDB + ".items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100))",
		"INSERT INTO " + testDB + ".items (name) VALUES ('one'), ('two')",
		"CREATE PROCEDURE " + testDB + ".two_results() BEGIN SELECT 1 AS a; SELECT 2 AS b; END",
	}
	for _, u := range []string{readerUser, writerUser, adminUser} {
		stmts = append(stmts,
			fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", u),
			fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", u, passwords[u]))
	}
	stmts = append(stmts,
		fmt.Sprintf("GRANT SELECT, EXECUTE ON %s.* TO '%s'@'%%'", testDB, readerUser),
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON %s.* TO '%s'@'%%'", testDB, writerUser),
		fmt.Sprintf("GRANT CREATE USER ON *.* TO '%s'@'%%'", adminUser),
		fmt.Sprintf("GRANT SELECT ON %s.* TO '%s'@'%%' WITH GRANT OPTION", testDB, adminUser))
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func teardownBackend() {
	for _, u := range []string{readerUser, writerUser, adminUser} {
		root.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", u))
	}
	root.Exec("DROP DATABASE IF EXISTS " + testDB)
}

// findLeaks looks for every remembered secret, and the signature part of
// every token, in every log and audit file the harnesses wrote.
func findLeaks() string {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	var needles []string
	for _, s := range secrets {
		needles = append(needles, s)
		if parts := strings.Split(s, "."); len(parts) == 3 && len(parts[2]) > 16 {
			needles = append(needles, parts[2])
		}
	}
	for _, f := range logFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, n := range needles {
			if len(n) >= 8 && bytes.Contains(data, []byte(n)) {
				return fmt.Sprintf("%s contains a secret starting %q", filepath.Base(f), n[:4])
			}
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
