package store

import (
	"context"
	"database/sql"
	"time"
)

// failureRetention is how long failed logins are kept: far longer than
// any budget window.
const failureRetention = time.Hour

// AddLoginFailure implements Store.
func (s *DB) AddLoginFailure(ctx context.Context, key string) error {
	const op = "record a failed login"
	if err := checkKey(op, "key", key, maxNameKeyLen+64); err != nil {
		return err
	}
	now := s.now()
	return s.wrap(op, s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM login_failures WHERE at < ?", micros(now.Add(-failureRetention))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO login_failures (failure_key, at) VALUES (?, ?)", key, micros(now))
		return err
	}))
}

// LoginFailuresSince implements Store.
func (s *DB) LoginFailuresSince(ctx context.Context, key string, since time.Time) (int, time.Time, error) {
	const op = "count failed logins"
	var (
		n      int
		oldest sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*), MIN(at) FROM login_failures WHERE failure_key = ? AND at >= ?",
		key, micros(since)).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, s.wrap(op, err)
	}
	if !oldest.Valid {
		return 0, time.Time{}, nil
	}
	return n, fromMicros(oldest.Int64), nil
}
