package store

import (
	"context"
	"database/sql"
	"fmt"
)

const connectionSettingCols = "connection_name, enabled, enforce_mfa, updated_by, updated"

func scanConnectionSetting(row scanner) (ConnectionSetting, error) {
	var (
		c       ConnectionSetting
		updated int64
	)
	if err := row.Scan(&c.Connection, &c.Enabled, &c.EnforceMFA, &c.UpdatedBy, &updated); err != nil {
		return ConnectionSetting{}, err
	}
	c.Updated = fromMicros(updated)
	return c, nil
}

// PutConnectionSetting implements Store.
func (s *DB) PutConnectionSetting(ctx context.Context, c ConnectionSetting) (ConnectionSetting, error) {
	op := fmt.Sprintf("put setting of connection %q", c.Connection)
	if err := checkKey(op, "connection", c.Connection, maxKeyLen); err != nil {
		return ConnectionSetting{}, err
	}
	if err := checkKey(op, "updated_by", c.UpdatedBy, maxNameKeyLen); err != nil {
		return ConnectionSetting{}, err
	}
	c.Updated = s.now()
	// Delete then insert, in one transaction: the same SQL on both
	// engines, where an upsert differs.
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM connection_settings WHERE connection_name = ?", c.Connection); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO connection_settings ("+connectionSettingCols+") VALUES (?, ?, ?, ?, ?)",
			c.Connection, c.Enabled, c.EnforceMFA, c.UpdatedBy, micros(c.Updated))
		return err
	})
	if err != nil {
		return ConnectionSetting{}, s.wrap(op, err)
	}
	return c, nil
}

// ListConnectionSettings implements Store.
func (s *DB) ListConnectionSettings(ctx context.Context) ([]ConnectionSetting, error) {
	const op = "list connection settings"
	rows, err := s.db.QueryContext(ctx, "SELECT "+connectionSettingCols+" FROM connection_settings ORDER BY connection_name")
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []ConnectionSetting
	for rows.Next() {
		c, err := scanConnectionSetting(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, c)
	}
	return out, s.wrap(op, rows.Err())
}
