package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/store"
	"github.com/portcullisdb/portcullis/store/storetest"
)

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return storetest.OpenOrFail(t, func(ctx context.Context) (*store.DB, error) {
			return store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "portcullis.db"))
		})
	})
}

// TestSQLiteMemoryConformance runs the suite on ":memory:", where the
// store has a single connection: a method that used a second connection
// inside a transaction would deadlock here.
func TestSQLiteMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return storetest.OpenOrFail(t, func(ctx context.Context) (*store.DB, error) { return store.OpenSQLite(ctx, ":memory:") })
	})
}

func TestMySQLConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		dsn := storetest.MySQLDatabase(t, "pcstore")
		return storetest.OpenOrFail(t, func(ctx context.Context) (*store.DB, error) { return store.OpenMySQL(ctx, dsn) })
	})
}

// engine is one engine's way to make a database, open it as a store, and
// reach it raw.
type engine struct {
	name string
	// newDatabase returns an opener for a fresh database and a raw handle
	// on the same database.
	newDatabase func(t *testing.T) (open func(context.Context) (*store.DB, error), raw *sql.DB)
}

var engines = []engine{
	{name: "sqlite", newDatabase: func(t *testing.T) (func(context.Context) (*store.DB, error), *sql.DB) {
		path := filepath.Join(t.TempDir(), "portcullis.db")
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		return func(ctx context.Context) (*store.DB, error) { return store.OpenSQLite(ctx, path) }, raw
	}},
	{name: "mysql", newDatabase: func(t *testing.T) (func(context.Context) (*store.DB, error), *sql.DB) {
		dsn := storetest.MySQLDatabase(t, "pcstore")
		raw, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		return func(ctx context.Context) (*store.DB, error) { return store.OpenMySQL(ctx, dsn) }, raw
	}},
}

func TestMigrations(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			tests := []struct {
				name string
				run  func(t *testing.T, open func(context.Context) (*store.DB, error), raw *sql.DB)
			}{
				{"open twice keeps data and migrates once", testReopen},
				{"newer schema refused", testNewerSchemaRefused},
				{"concurrent first opens", testConcurrentOpen},
				{"user-name keys written by an older binary are rekeyed", testRekeyUserNames},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					open, raw := e.newDatabase(t)
					tt.run(t, open, raw)
				})
			}
		})
	}
}

func testReopen(t *testing.T, open func(context.Context) (*store.DB, error), raw *sql.DB) {
	ctx := t.Context()
	s := storetest.OpenOrFail(t, open)
	u, err := s.CreateUser(ctx, store.User{UserName: "kept@example.com"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	versions := schemaVersions(t, raw)
	s.Close()

	s = storetest.OpenOrFail(t, open)
	if _, err := s.GetUser(ctx, u.ID); err != nil {
		t.Fatalf("user lost on reopen: %v", err)
	}
	if got := schemaVersions(t, raw); strings.Join(got, ",") != strings.Join(versions, ",") {
		t.Fatalf("schema_version changed on reopen: %v then %v", versions, got)
	}
	if len(versions) == 0 || versions[0] != "1" {
		t.Fatalf("schema_version rows: %v, want 1 first", versions)
	}
}

func schemaVersions(t *testing.T, raw *sql.DB) []string {
	t.Helper()
	rows, err := raw.QueryContext(t.Context(), "SELECT version FROM schema_version ORDER BY version")
	if err != nil {
		t.Fatalf("read schema_version: %v", err)
	}
	defer rows.Close()
	var vs []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

func testNewerSchemaRefused(t *testing.T, open func(context.Context) (*store.DB, error), raw *sql.DB) {
	s := storetest.OpenOrFail(t, open)
	s.Close()
	if _, err := raw.ExecContext(t.Context(), "INSERT INTO schema_version (version, applied) VALUES (?, ?)", 9999, time.Now().UnixMicro()); err != nil {
		t.Fatalf("bump schema_version: %v", err)
	}
	s, err := open(t.Context())
	if err == nil {
		s.Close()
		t.Fatal("a database at schema version 9999 was opened")
	}
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("got %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "9999") {
		t.Fatalf("error does not name the database's version: %v", err)
	}
}

func testConcurrentOpen(t *testing.T, open func(context.Context) (*store.DB, error), raw *sql.DB) {
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := open(t.Context())
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
	if vs := schemaVersions(t, raw); len(vs) == 0 || vs[0] != "1" {
		t.Fatalf("schema_version rows after concurrent opens: %v", vs)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		cfg     store.Config
		engine  string // "" means Open must fail
		errText string
	}{
		{name: "default engine is sqlite", cfg: store.Config{Path: filepath.Join(dir, "a.db")}, engine: store.EngineSQLite},
		{name: "sqlite", cfg: store.Config{Engine: "sqlite", Path: filepath.Join(dir, "b.db")}, engine: store.EngineSQLite},
		{name: "sqlite in memory", cfg: store.Config{Path: ":memory:"}, engine: store.EngineSQLite},
		{name: "unknown engine", cfg: store.Config{Engine: "postgres"}, errText: `unknown engine "postgres"`},
		{name: "sqlite without path", cfg: store.Config{}, errText: "no path"},
		{name: "sqlite path with a question mark", cfg: store.Config{Path: filepath.Join(dir, "x?y.db")}, errText: "may not contain"},
		{name: "mysql dsn without database", cfg: store.Config{Engine: "mysql", DSN: "root@tcp(127.0.0.1:3306)/"}, errText: "names no database"},
		{name: "mysql bad dsn", cfg: store.Config{Engine: "mysql", DSN: "not a dsn"}, errText: "parse dsn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(t.Context(), tt.cfg)
			if tt.engine == "" {
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded")
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("error %q does not contain %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if s.Engine() != tt.engine {
				t.Fatalf("engine %q, want %q", s.Engine(), tt.engine)
			}
			if err := s.Ping(t.Context()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		})
	}
}

// TestMySQLMigrationRerun: MySQL commits DDL as it goes, so a migration
// interrupted after its DDL but before its schema_version row must run
// again cleanly.
func TestMySQLMigrationRerun(t *testing.T) {
	i := slices.IndexFunc(engines, func(e engine) bool { return e.name == "mysql" })
	open, raw := engines[i].newDatabase(t)
	s := storetest.OpenOrFail(t, open)
	s.Close()
	if _, err := raw.ExecContext(t.Context(), "DELETE FROM schema_version"); err != nil {
		t.Fatalf("forget migrations: %v", err)
	}
	s = storetest.OpenOrFail(t, open)
	if id, err := s.AppendEvent(t.Context(), store.Event{Kind: store.EventSessionKill}); err != nil || id != 1 {
		t.Fatalf("AppendEvent after a re-run migration: id %d, %v (want 1: the sequence row must not be duplicated)", id, err)
	}
}

// testRekeyUserNames plays a store an older binary wrote, whose keys were
// strings.ToLower of the name: Open brings them to auth/username's form,
// keeping the older user where two names now collide and leaving a name
// the rule refuses unreachable by name.
func testRekeyUserNames(t *testing.T, open func(context.Context) (*store.DB, error), raw *sql.DB) {
	ctx := t.Context()
	s := storetest.OpenOrFail(t, open)
	s.Close()
	rows := []struct{ id, name, oldKey string }{
		{"u1", "alice@example.com", "alice@example.com"},
		{"u2", " alice@example.com", " alice@example.com"}, // the look-alike, created later
		{"u3", "Stra\u00dfe@example.com", "stra\u00dfe@example.com"},
		{"u4", "\u01c5ip@example.com", "\u01c6ip@example.com"}, // title-case dz: NFKC splits it
		{"u5", "bob\x00@example.com", "bob\x00@example.com"},   // refused by the rule now
		{"u6", "ＦＵＬＬ@example.com", "ｆｕｌｌ@example.com"},
	}
	for i, r := range rows {
		_, err := raw.ExecContext(ctx, `INSERT INTO users (id, user_name, user_name_key, external_id, display_name,
			given_name, family_name, emails, active, role, source, version, created, updated)
			VALUES (?, ?, ?, '', '', '', '', '[]', 1, '', 'scim', 1, ?, ?)`, r.id, r.name, r.oldKey, i+1, i+1)
		if err != nil {
			t.Fatalf("insert %s: %v", r.id, err)
		}
	}
	s = storetest.OpenOrFail(t, open)
	tests := []struct{ lookup, wantID string }{
		{"alice@example.com", "u1"},
		{" ALICE@example.com", "u1"},
		{"strasse@example.com", "u3"},
		{"STRASSE@example.com", "u3"},
		{"d\u017eip@example.com", "u4"},
		{"full@example.com", "u6"},
	}
	for _, tt := range tests {
		u, err := s.GetUserByName(ctx, tt.lookup)
		if err != nil || u.ID != tt.wantID {
			t.Errorf("GetUserByName(%q) = %q, %v; want %s", tt.lookup, u.ID, err, tt.wantID)
		}
	}
	keys := map[string]string{}
	q, err := raw.QueryContext(ctx, "SELECT id, user_name_key FROM users")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for q.Next() {
		var id, key string
		if err := q.Scan(&id, &key); err != nil {
			t.Fatal(err)
		}
		keys[id] = key
	}
	if keys["u2"] != " alice@example.com" || keys["u5"] != "bob\x00@example.com" {
		t.Errorf("the younger look-alike and the refused name should keep their old keys: %q", keys)
	}
	if _, err := s.CreateUser(ctx, store.User{UserName: "ALICE@example.com"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a new ALICE after the rekey: %v, want ErrConflict", err)
	}
}
