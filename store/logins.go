package store

import (
	"context"
	"database/sql"
	"time"
)

// LoginEnd records that a login ended (LoginID set: its access tokens
// are refused), or that every token of UserName issued before At is
// (LoginID empty: an administrator ended the person's logins, their IdP
// connection was disabled, a workload identity's tokens were revoked).
type LoginEnd struct {
	LoginID  string
	UserName string
	Reason   string
	At       time.Time // set by the store
}

// loginEndRetention is how long an ended login is kept: far longer than
// any access token lives (issuer.max_token_ttl).
const loginEndRetention = 31 * 24 * time.Hour

func loginEndKey(loginID, userName string) string {
	if loginID != "" {
		return "login:" + loginID
	}
	return "user:" + nameKey(userName)
}

// PutLoginEnd implements Store.
func (s *DB) PutLoginEnd(ctx context.Context, e LoginEnd) (LoginEnd, error) {
	const op = "record an ended login"
	if err := checkKey(op, "user name", e.UserName, maxNameKeyLen); err != nil {
		return LoginEnd{}, err
	}
	if err := checkOptionalKey(op, "login id", e.LoginID); err != nil {
		return LoginEnd{}, err
	}
	e.At = s.now()
	key := loginEndKey(e.LoginID, e.UserName)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM logins_ended WHERE ended_key = ? OR at < ?", key, micros(e.At.Add(-loginEndRetention))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO logins_ended (ended_key, user_name, reason, at) VALUES (?, ?, ?, ?)", key, e.UserName, e.Reason, micros(e.At))
		return err
	})
	return e, s.wrap(op, err)
}

// LoginEnded implements Store.
func (s *DB) LoginEnded(ctx context.Context, loginID, userName string, issuedAt time.Time) (LoginEnd, error) {
	const op = "check for an ended login"
	keys := []any{loginEndKey("", userName)}
	q := "SELECT ended_key, user_name, reason, at FROM logins_ended WHERE ended_key = ?"
	if loginID != "" {
		q += " OR ended_key = ?"
		keys = append(keys, loginEndKey(loginID, ""))
	}
	rows, err := s.db.QueryContext(ctx, q, keys...)
	if err != nil {
		return LoginEnd{}, s.wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			key string
			e   LoginEnd
			at  int64
		)
		if err := rows.Scan(&key, &e.UserName, &e.Reason, &at); err != nil {
			return LoginEnd{}, s.wrap(op, err)
		}
		e.At = fromMicros(at)
		if key != keys[0] {
			e.LoginID = loginID
			return e, nil
		}
		// A cutoff: tokens issued before it (iat has whole seconds, so a
		// token of the same second counts as before).
		if issuedAt.IsZero() || !issuedAt.After(e.At.Truncate(time.Second).Add(time.Second-1)) {
			return e, nil
		}
	}
	if err := rows.Err(); err != nil {
		return LoginEnd{}, s.wrap(op, err)
	}
	return LoginEnd{}, s.wrap(op, sql.ErrNoRows)
}
