package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// DB is the Store over a SQL database: SQLite or MySQL/MariaDB, told apart
// by a small dialect. Make one with Open, OpenSQLite or OpenMySQL; it is
// safe for concurrent use.
type DB struct {
	db   querier // the pool, or inside Update the transaction
	pool *sql.DB
	tx   *sql.Tx // set inside Update: every method then runs in it
	d    *dialect
	now  func() time.Time
}

var _ Store = (*DB)(nil)

// Column limits the store checks before the database does, so both
// engines refuse the same values.
const (
	maxKeyLen     = 255  // ids, team names, key ids, connection and node names
	maxNameKeyLen = 1024 // user-name keys and lowercased group display names
	maxHashLen    = 64
)

// defaultEventLimit is EventsSince's page size when the caller gives none.
const defaultEventLimit = 1000

// open pings db, migrates it and wraps it; it closes db on failure.
func open(ctx context.Context, db *sql.DB, d *dialect) (*DB, error) {
	for try := 1; ; try++ {
		err := db.PingContext(ctx)
		if err == nil {
			break
		}
		if d.busyAtOpen == nil || !d.busyAtOpen(err) || try == 50 || ctx.Err() != nil {
			db.Close()
			return nil, fmt.Errorf("ping: %w", err)
		}
		time.Sleep(time.Duration(try) * 10 * time.Millisecond)
	}
	if err := migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, err
	}
	return &DB{db: db, pool: db, d: d, now: func() time.Time { return normTime(time.Now()) }}, nil
}

// Engine is EngineSQLite or EngineMySQL.
func (s *DB) Engine() string { return s.d.name }

// Ping checks the database answers.
func (s *DB) Ping(ctx context.Context) error {
	if err := s.pool.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s store: %w", s.d.name, err)
	}
	return nil
}

// Close closes the database.
func (s *DB) Close() error { return s.pool.Close() }

// --- helpers ---

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// wrap gives err the operation's context and, for no rows or a constraint
// violation, the matching sentinel.
func (s *DB) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if sentinel := s.d.classify(err); sentinel != nil {
		return fmt.Errorf("%s: %w: %w", op, sentinel, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// inTx runs fn in a transaction, committing if it returns nil. Inside
// Update it runs fn under a savepoint of Update's transaction: a method
// that fails (or reports errNoChange) undoes only its own writes, and the
// whole commits or rolls back with Update.
func (s *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.tx != nil {
		if _, err := s.tx.ExecContext(ctx, "SAVEPOINT portcullis_step"); err != nil {
			return err
		}
		if err := fn(s.tx); err != nil {
			if _, rerr := s.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT portcullis_step"); rerr != nil {
				return errors.Join(err, rerr)
			}
			return err
		}
		_, err := s.tx.ExecContext(ctx, "RELEASE SAVEPOINT portcullis_step")
		return err
	}
	tx, err := s.pool.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Update runs fn in one transaction: every Store method called on the tx
// it is given runs in that transaction, and everything commits when fn
// returns nil, or nothing does. It is how a directory change and the
// events it implies commit together (the outbox the proxy nodes poll).
// fn must not call methods of s itself, only of tx.
func (s *DB) Update(ctx context.Context, fn func(tx Store) error) error {
	if s.tx != nil {
		return fn(s) // already inside one: fn joins it
	}
	tx, err := s.pool.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback()
	if err := fn(&DB{db: tx, pool: s.pool, tx: tx, d: s.d, now: s.now}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.wrap("commit", err)
	}
	return nil
}

// errNoChange makes inTx roll back and report success.
var errNoChange = errors.New("no change")

func (s *DB) inTxMaybe(ctx context.Context, fn func(tx *sql.Tx) error) error {
	err := s.inTx(ctx, fn)
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}

func checkKey(op, field, v string, max int) error {
	if v == "" {
		return fmt.Errorf("%s: %w: %s is empty", op, ErrInvalid, field)
	}
	if len(v) > max {
		return fmt.Errorf("%s: %w: %s is longer than %d bytes", op, ErrInvalid, field, max)
	}
	return nil
}

// checkOptionalKey accepts "" (the store fills it in).
func checkOptionalKey(op, field, v string) error {
	if v == "" {
		return nil
	}
	return checkKey(op, field, v, maxKeyLen)
}

// nameKey is the lowercased form group display names are unique by (user
// names have their own rule: userNameKey).
func nameKey(name string) string { return strings.ToLower(name) }

func normTime(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func normTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := normTime(*t)
	return &n
}

// nullMicros is a nullable time argument.
func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// nullBytes stores empty as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// rawOrNil reads NULL (or empty) back as nil.
func rawOrNil(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// page turns ListOptions into LIMIT and OFFSET arguments.
func page(o ListOptions) (limit, offset int64) {
	limit = math.MaxInt64
	if o.Limit > 0 {
		limit = int64(o.Limit)
	}
	return limit, int64(max(o.Offset, 0))
}

// placeholders is "?, ?, ?" for n arguments.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// uniqueSorted returns ids without duplicates, sorted; nil for none.
func uniqueSorted(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(ids))
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
