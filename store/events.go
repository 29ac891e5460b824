package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// --- events ---

// AppendEvent implements Store. The id comes from the one-row event_seq
// table, bumped in the same transaction as the insert: the bump locks the
// row until commit, so appends commit in id order and a poller that has
// seen id N can never later find an N-1 appear (which an AUTO_INCREMENT
// column under concurrent MySQL transactions allows).
func (s *DB) AppendEvent(ctx context.Context, e Event) (int64, error) {
	op := fmt.Sprintf("append event %q", e.Kind)
	if err := checkKey(op, "kind", e.Kind, maxKeyLen); err != nil {
		return 0, err
	}
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE event_seq SET last_id = last_id + 1 WHERE id = 1"); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT last_id FROM event_seq WHERE id = 1").Scan(&id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO events (id, kind, subject, data, created) VALUES (?, ?, ?, ?, ?)",
			id, e.Kind, e.Subject, nullBytes(e.Data), micros(s.now()))
		return err
	})
	if err != nil {
		return 0, s.wrap(op, err)
	}
	return id, nil
}

// EventsSince implements Store.
func (s *DB) EventsSince(ctx context.Context, afterID int64, limit int) ([]Event, error) {
	op := fmt.Sprintf("events since %d", afterID)
	if limit <= 0 {
		limit = defaultEventLimit
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, kind, subject, data, created FROM events WHERE id > ? ORDER BY id LIMIT ?", afterID, limit)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var events []Event
	for rows.Next() {
		var (
			e       Event
			data    []byte
			created int64
		)
		if err := rows.Scan(&e.ID, &e.Kind, &e.Subject, &data, &created); err != nil {
			return nil, s.wrap(op, err)
		}
		e.Data, e.Created = rawOrNil(data), fromMicros(created)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return events, nil
}

// LatestEventID implements Store.
func (s *DB) LatestEventID(ctx context.Context) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, "SELECT last_id FROM event_seq WHERE id = 1").Scan(&id)
	return id, s.wrap("latest event id", err)
}

// DeleteEventsBefore implements Store.
func (s *DB) DeleteEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	n, err := affected(s.db.ExecContext(ctx, "DELETE FROM events WHERE created < ?", micros(t)))
	return n, s.wrap("delete old events", err)
}

// --- ephemeral backend users ---

// AddEphemeralUser implements Store.
func (s *DB) AddEphemeralUser(ctx context.Context, e EphemeralUser) (EphemeralUser, error) {
	op := fmt.Sprintf("add ephemeral user %q", e.BackendUser)
	if err := checkKey(op, "backend user", e.BackendUser, maxKeyLen); err != nil {
		return EphemeralUser{}, err
	}
	if len(e.Node) > maxKeyLen || len(e.SessionID) > maxKeyLen {
		return EphemeralUser{}, fmt.Errorf("%s: %w: node or session id is longer than %d bytes", op, ErrInvalid, maxKeyLen)
	}
	e.Created = s.now()
	_, err := s.db.ExecContext(ctx, "INSERT INTO ephemeral_users (backend_user, node, session_id, created) VALUES (?, ?, ?, ?)",
		e.BackendUser, e.Node, e.SessionID, micros(e.Created))
	if err != nil {
		return EphemeralUser{}, s.wrap(op, err)
	}
	return e, nil
}

// RemoveEphemeralUser implements Store.
func (s *DB) RemoveEphemeralUser(ctx context.Context, backendUser string) error {
	err := mustAffect(s.db.ExecContext(ctx, "DELETE FROM ephemeral_users WHERE backend_user = ?", backendUser))
	return s.wrap(fmt.Sprintf("remove ephemeral user %q", backendUser), err)
}

// ListEphemeralUsers implements Store.
func (s *DB) ListEphemeralUsers(ctx context.Context) ([]EphemeralUser, error) {
	const op = "list ephemeral users"
	rows, err := s.db.QueryContext(ctx, "SELECT backend_user, node, session_id, created FROM ephemeral_users ORDER BY created, backend_user")
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var users []EphemeralUser
	for rows.Next() {
		var (
			e       EphemeralUser
			created int64
		)
		if err := rows.Scan(&e.BackendUser, &e.Node, &e.SessionID, &created); err != nil {
			return nil, s.wrap(op, err)
		}
		e.Created = fromMicros(created)
		users = append(users, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return users, nil
}
