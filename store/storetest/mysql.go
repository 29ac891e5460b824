package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/store"
)

// MySQLDatabase creates a throwaway database <prefix>_<random> on the test
// MariaDB (root on 127.0.0.1:3306, or PORTCULLIS_TEST_MYSQL_DSN without a
// database name), drops it when the test ends, and returns a DSN for it.
// No MariaDB is a failure, not a skip: only -short skips.
func MySQLDatabase(t *testing.T, prefix string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the tests that need MariaDB")
	}
	base := os.Getenv("PORTCULLIS_TEST_MYSQL_DSN")
	if base == "" {
		base = "root@tcp(127.0.0.1:3306)/"
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("PORTCULLIS_TEST_MYSQL_DSN: %v", err)
	}
	root, err := sql.Open("mysql", base)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Addr, err)
	}
	t.Cleanup(func() { root.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := root.PingContext(ctx); err != nil {
		t.Fatalf("these tests need MariaDB on %s as root with an empty password "+
			"(`make mariadb` starts or installs it; `go test -short` skips these tests): %v", cfg.Addr, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b) // generated: safe to splice into DDL
	if _, err := root.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := root.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// OpenOrFail opens a store for a test and closes it when the test ends.
func OpenOrFail(t *testing.T, open func(context.Context) (*store.DB, error)) *store.DB {
	t.Helper()
	s, err := open(t.Context())
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
