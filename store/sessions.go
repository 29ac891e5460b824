package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ProxySession is one live proxied session as its node records it in the
// cluster-wide session registry.
type ProxySession struct {
	ID          int64 // the connection id the client saw (a uint32), unique across the cluster
	Instance    int64 // the recording process (its first id block)
	Node        string
	Identity    string
	Issuer      string
	Role        string
	BackendUser string
	ClientAddr  string
	LoginID     string // the login (or workload exchange) its token came from; "" for tokens without one
	Started     time.Time
}

// AllocateSessionBlock implements Store. The block number comes from the
// one-row session_id_seq table, bumped in one transaction, so two nodes
// never get the same block.
func (s *DB) AllocateSessionBlock(ctx context.Context) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE session_id_seq SET last_block = last_block + 1 WHERE id = 1"); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, "SELECT last_block FROM session_id_seq WHERE id = 1").Scan(&n)
	})
	return n, s.wrap("allocate a block of session ids", err)
}

// HeartbeatNode implements Store.
func (s *DB) HeartbeatNode(ctx context.Context, instance int64, node string) error {
	const op = "record a node heartbeat"
	if err := checkKey(op, "node", node, maxKeyLen); err != nil {
		return err
	}
	now := micros(s.now())
	return s.wrap(op, s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := affected(tx.ExecContext(ctx, "UPDATE proxy_nodes SET heartbeat = ?, node = ? WHERE instance = ?", now, node, instance))
		if err != nil || n > 0 {
			return err
		}
		// MySQL reports 0 rows when the values did not change; the
		// insert then conflicts, which is no error here.
		var exists int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM proxy_nodes WHERE instance = ?", instance).Scan(&exists); err != nil || exists > 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO proxy_nodes (instance, node, heartbeat) VALUES (?, ?, ?)", instance, node, now)
		return err
	}))
}

// RemoveNode implements Store.
func (s *DB) RemoveNode(ctx context.Context, instance int64) error {
	return s.wrap("remove a node from the session registry", s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM proxy_sessions WHERE instance = ?", instance); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM proxy_nodes WHERE instance = ?", instance)
		return err
	}))
}

// PutProxySessions implements Store.
func (s *DB) PutProxySessions(ctx context.Context, sessions ...ProxySession) error {
	if len(sessions) == 0 {
		return nil
	}
	const op = "record live sessions"
	return s.wrap(op, s.inTx(ctx, func(tx *sql.Tx) error {
		for _, p := range sessions {
			if err := checkKey(op, "node", p.Node, maxKeyLen); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM proxy_sessions WHERE id = ?", p.ID); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO proxy_sessions (id, instance, node, identity, issuer, role, backend_user, client_addr, login_id, started)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				p.ID, p.Instance, p.Node, p.Identity, p.Issuer, p.Role, p.BackendUser, p.ClientAddr, p.LoginID, micros(p.Started))
			if err != nil {
				return err
			}
		}
		return nil
	}))
}

// RemoveProxySessions implements Store.
func (s *DB) RemoveProxySessions(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	_, err := s.db.ExecContext(ctx, "DELETE FROM proxy_sessions WHERE id IN ("+placeholders(len(ids))+")", args...)
	return s.wrap("remove ended sessions", err)
}

// ListProxySessions implements Store.
func (s *DB) ListProxySessions(ctx context.Context, aliveSince time.Time) ([]ProxySession, error) {
	const op = "list live sessions"
	rows, err := s.db.QueryContext(ctx, `SELECT p.id, p.instance, p.node, p.identity, p.issuer, p.role, p.backend_user, p.client_addr, p.login_id, p.started
		FROM proxy_sessions p JOIN proxy_nodes n ON n.instance = p.instance
		WHERE n.heartbeat >= ? ORDER BY p.started, p.id`, micros(aliveSince))
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []ProxySession
	for rows.Next() {
		var (
			p       ProxySession
			started int64
		)
		if err := rows.Scan(&p.ID, &p.Instance, &p.Node, &p.Identity, &p.Issuer, &p.Role, &p.BackendUser, &p.ClientAddr, &p.LoginID, &started); err != nil {
			return nil, s.wrap(op, err)
		}
		p.Started = fromMicros(started)
		out = append(out, p)
	}
	return out, s.wrap(op, rows.Err())
}

// SweepNodes implements Store.
func (s *DB) SweepNodes(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if n, err = affected(tx.ExecContext(ctx, "DELETE FROM proxy_nodes WHERE heartbeat < ?", micros(before))); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM proxy_sessions WHERE instance NOT IN (SELECT instance FROM proxy_nodes)")
		return err
	})
	return n, s.wrap(fmt.Sprintf("sweep nodes silent since %s", before.Format(time.RFC3339)), err)
}
