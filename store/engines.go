package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is what differs between the engines; the SQL itself is shared.
type dialect struct {
	name string
	// classify maps a constraint violation to ErrConflict or ErrNotFound
	// and returns nil for any other error.
	classify func(error) error
	// upsertTeam inserts or replaces a team keeping its created time;
	// arguments: name, group_names, roles, created, updated.
	upsertTeam string
	// lockMigrations serialises Open's migrations across processes; nil
	// when the engine's transactions already do.
	lockMigrations func(ctx context.Context, db *sql.DB) (unlock func(), err error)
	// alreadyApplied reports a DDL error that means the statement's
	// change is already there (a column added by an interrupted run of
	// the same migration); nil: none is.
	alreadyApplied func(error) bool
	// busyAtOpen reports an error of the first connection that a retry
	// gets past (SQLite switching a new file to WAL while another process
	// opens it answers SQLITE_BUSY without waiting); nil: none does.
	busyAtOpen func(error) bool
}

// sqliteBusyTimeout is how long (ms) a SQLite writer waits for another.
const sqliteBusyTimeout = 10000

// OpenSQLite opens (creating it if needed) the SQLite database at path and
// migrates it. The file is in WAL mode with foreign keys on; every
// transaction takes the write lock at BEGIN, so transactions queue (up to
// a 10s busy timeout) instead of failing on a lock upgrade. ":memory:"
// gives a private in-memory database on a single connection.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open sqlite store: no path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite store %q: the path may not contain '?' or '#'", path)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout))
	q.Add("_pragma", "foreign_keys(1)")
	if path != ":memory:" {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	q.Set("_txlock", "immediate")
	if path != ":memory:" {
		// The file holds hashed tokens and encrypted keys: create it
		// private. SQLite gives its -wal and -shm files the same mode.
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
		}
		f.Close()
	}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if path == ":memory:" {
		// Each connection would get its own empty database.
		db.SetMaxOpenConns(1)
	}
	s, err := open(ctx, db, sqliteDialect)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return s, nil
}

var sqliteDialect = &dialect{
	name: EngineSQLite,
	classify: func(err error) error {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return nil
		}
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return ErrConflict
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return ErrNotFound
		}
		return nil
	},
	upsertTeam: `INSERT INTO teams (name, group_names, roles, created, updated) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET group_names = excluded.group_names, roles = excluded.roles, updated = excluded.updated`,
	busyAtOpen: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
	},
}

// OpenMySQL opens the MySQL or MariaDB database dsn names (a go-sql-driver
// DSN: user:password@tcp(host:3306)/dbname) and migrates it. The database
// must exist; the store creates its tables. Several portcullis nodes may
// share it: Open serialises their migrations with a named lock.
func OpenMySQL(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("open mysql store: parse dsn: %w", err)
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("open mysql store %s: the dsn names no database (…/dbname)", cfg.Addr)
	}
	// Rows affected counts matched rows, as in SQLite.
	cfg.ClientFoundRows = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open mysql store %s/%s: %w", cfg.Addr, cfg.DBName, err)
	}
	db := sql.OpenDB(connector)
	db.SetConnMaxLifetime(3 * time.Minute)
	db.SetMaxIdleConns(10)
	s, err := open(ctx, db, mysqlDialect)
	if err != nil {
		return nil, fmt.Errorf("open mysql store %s/%s: %w", cfg.Addr, cfg.DBName, err)
	}
	return s, nil
}

// MySQL error numbers the store maps.
const (
	erDupEntry            = 1062
	erDupEntryWithKeyName = 1586
	erNoReferencedRow     = 1216
	erNoReferencedRow2    = 1452
	erDupFieldName        = 1060 // ALTER TABLE ADD COLUMN of a column that exists
)

var mysqlDialect = &dialect{
	name: EngineMySQL,
	classify: func(err error) error {
		var e *mysql.MySQLError
		if !errors.As(err, &e) {
			return nil
		}
		switch e.Number {
		case erDupEntry, erDupEntryWithKeyName:
			return ErrConflict
		case erNoReferencedRow, erNoReferencedRow2:
			return ErrNotFound
		}
		return nil
	},
	upsertTeam: `INSERT INTO teams (name, group_names, roles, created, updated) VALUES (?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE group_names = VALUES(group_names), roles = VALUES(roles), updated = VALUES(updated)`,
	lockMigrations: mysqlMigrationLock,
	// MySQL commits DDL at once: a migration interrupted after its ALTER
	// runs it again, and MySQL 8 has no ADD COLUMN IF NOT EXISTS.
	alreadyApplied: func(err error) bool {
		var e *mysql.MySQLError
		return errors.As(err, &e) && e.Number == erDupFieldName
	},
}

// mysqlMigrationLockWait is how long (s) Open waits for another node's
// migrations.
const mysqlMigrationLockWait = 60

// mysqlMigrationLock takes a named lock for this database (lock names are
// server-wide and at most 64 characters, hence the digest), held by one
// connection until unlock: MySQL commits DDL implicitly, so transactions
// alone cannot keep two nodes from migrating at once.
func mysqlMigrationLock(ctx context.Context, db *sql.DB) (func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var got sql.NullInt64
	err = conn.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT('portcullis.migrate.', MD5(DATABASE())), ?)", mysqlMigrationLockWait).Scan(&got)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	if got.Int64 != 1 {
		conn.Close()
		return nil, fmt.Errorf("take migration lock: another node held it for %ds", mysqlMigrationLockWait)
	}
	return func() {
		// Closing a sql.Conn returns it to the pool, lock and all: release
		// the lock, and if that fails drop the connection, which does.
		_, err := conn.ExecContext(context.Background(), "SELECT RELEASE_LOCK(CONCAT('portcullis.migrate.', MD5(DATABASE())))")
		if err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}
