package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/portcullisdb/portcullis/auth/username"
)

const userCols = `id, user_name, external_id, display_name, given_name, family_name,
	emails, active, role, source, extra, version, created, updated`

func scanUser(row scanner) (User, error) {
	var (
		u                User
		emails           string
		extra            []byte
		created, updated int64
	)
	err := row.Scan(&u.ID, &u.UserName, &u.ExternalID, &u.DisplayName, &u.GivenName, &u.FamilyName,
		&emails, &u.Active, &u.Role, &u.Source, &extra, &u.Version, &created, &updated)
	if err != nil {
		return User{}, err
	}
	if err := json.Unmarshal([]byte(emails), &u.Emails); err != nil {
		return User{}, fmt.Errorf("user %s: decode emails: %w", u.ID, err)
	}
	u.Extra = rawOrNil(extra)
	u.Created, u.Updated = fromMicros(created), fromMicros(updated)
	return u, nil
}

// checkUser validates u and returns it with its user name trimmed (as
// auth/username shows names) and the key the name is unique by.
func checkUser(op string, u User) (User, string, error) {
	if err := checkOptionalKey(op, "id", u.ID); err != nil {
		return User{}, "", err
	}
	key, err := userNameKey(u.UserName)
	if err != nil {
		return User{}, "", fmt.Errorf("%s: %w: %w", op, ErrInvalid, err)
	}
	if err := checkKey(op, "user name", key, maxNameKeyLen); err != nil {
		return User{}, "", err
	}
	u.UserName, _ = username.Display(u.UserName)
	return u, key, nil
}

// userNameKey is the form user names are unique and looked up by: the
// one normalisation of auth/username (trimmed, NFKC, case-folded).
func userNameKey(name string) (string, error) { return username.Normalize(name) }

// CreateUser implements Store.
func (s *DB) CreateUser(ctx context.Context, u User) (User, error) {
	op := fmt.Sprintf("create user %q", u.UserName)
	u, key, err := checkUser(op, u)
	if err != nil {
		return User{}, err
	}
	emails, err := json.Marshal(u.Emails)
	if err != nil {
		return User{}, fmt.Errorf("%s: encode emails: %w", op, err)
	}
	if u.ID == "" {
		u.ID = uuid.NewString()
	}
	now := s.now()
	u.Version, u.Created, u.Updated = 1, now, now
	u.Extra = rawOrNil(u.Extra)
	_, err = s.db.ExecContext(ctx, `INSERT INTO users (id, user_name, user_name_key, external_id,
		display_name, given_name, family_name, emails, active, role, source, extra, version, created, updated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.UserName, key, u.ExternalID, u.DisplayName, u.GivenName, u.FamilyName,
		string(emails), u.Active, u.Role, u.Source, nullBytes(u.Extra), u.Version, micros(u.Created), micros(u.Updated))
	if err != nil {
		return User{}, s.wrap(op, err)
	}
	return u, nil
}

// GetUser implements Store.
func (s *DB) GetUser(ctx context.Context, id string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, "SELECT "+userCols+" FROM users WHERE id = ?", id))
	return u, s.wrap(fmt.Sprintf("get user %q", id), err)
}

// GetUserByName implements Store.
func (s *DB) GetUserByName(ctx context.Context, userName string) (User, error) {
	op := fmt.Sprintf("get user by name %q", userName)
	key, err := userNameKey(userName)
	if err != nil {
		return User{}, fmt.Errorf("%s: %w: %w", op, ErrInvalid, err)
	}
	u, err := scanUser(s.db.QueryRowContext(ctx, "SELECT "+userCols+" FROM users WHERE user_name_key = ?", key))
	return u, s.wrap(op, err)
}

// ListUsers implements Store.
func (s *DB) ListUsers(ctx context.Context, opts ListOptions) ([]User, int, error) {
	const op = "list users"
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&total); err != nil {
		return nil, 0, s.wrap(op, err)
	}
	limit, offset := page(opts)
	rows, err := s.db.QueryContext(ctx, "SELECT "+userCols+" FROM users ORDER BY created, id LIMIT ? OFFSET ?", limit, offset)
	if err != nil {
		return nil, 0, s.wrap(op, err)
	}
	defer rows.Close()
	var users []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, s.wrap(op, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, s.wrap(op, err)
	}
	return users, total, nil
}

// UpdateUser implements Store.
func (s *DB) UpdateUser(ctx context.Context, u User, expectedVersion int64) (User, error) {
	op := fmt.Sprintf("update user %q", u.ID)
	u, key, err := checkUser(op, u)
	if err != nil {
		return User{}, err
	}
	emails, err := json.Marshal(u.Emails)
	if err != nil {
		return User{}, fmt.Errorf("%s: encode emails: %w", op, err)
	}
	var out User
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET user_name = ?, user_name_key = ?, external_id = ?,
			display_name = ?, given_name = ?, family_name = ?, emails = ?, active = ?, role = ?, source = ?,
			extra = ?, version = version + 1, updated = ?
			WHERE id = ? AND (? = 0 OR version = ?)`,
			u.UserName, key, u.ExternalID, u.DisplayName, u.GivenName, u.FamilyName,
			string(emails), u.Active, u.Role, u.Source, nullBytes(u.Extra), micros(s.now()),
			u.ID, expectedVersion, expectedVersion)
		if err != nil {
			return err
		}
		if err := versionCheck(ctx, tx, res, "users", u.ID, expectedVersion); err != nil {
			return err
		}
		out, err = scanUser(tx.QueryRowContext(ctx, "SELECT "+userCols+" FROM users WHERE id = ?", u.ID))
		return err
	})
	if err != nil {
		return User{}, s.wrap(op, err)
	}
	return out, nil
}

// versionCheck explains an optimistic update that matched no row: the
// record is gone (sql.ErrNoRows) or its version moved on.
func versionCheck(ctx context.Context, tx *sql.Tx, res sql.Result, table, id string, expected int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	var current int64
	// table is one of ours, never input.
	if err := tx.QueryRowContext(ctx, "SELECT version FROM "+table+" WHERE id = ?", id).Scan(&current); err != nil {
		return err
	}
	return fmt.Errorf("%w: expected version %d, stored version %d", ErrVersionMismatch, expected, current)
}

// DeleteUser implements Store.
func (s *DB) DeleteUser(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// The groups the user leaves change: new versions (SCIM ETags).
		if _, err := tx.ExecContext(ctx, `UPDATE directory_groups SET version = version + 1, updated = ?
			WHERE id IN (SELECT group_id FROM group_members WHERE user_id = ?)`, micros(s.now()), id); err != nil {
			return err
		}
		return mustAffect(tx.ExecContext(ctx, "DELETE FROM users WHERE id = ?", id))
	})
	return s.wrap(fmt.Sprintf("delete user %q", id), err)
}

// deleted turns a statement that affected no row into sql.ErrNoRows.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}

// rekeyUserNames brings every user's name key to userNameKey, oldest user
// first: keys written by a binary that only lowercased (or by an older
// Unicode table) would otherwise miss lookups, or let a look-alike in.
// A row whose name is now refused (a control character, say) keeps its
// old key, which no lookup produces any more: it can be found by id (SCIM,
// the console) and renamed, not logged in with. Where two old names now
// normalise alike (" alice" beside "alice"), the older user keeps the name
// and the younger keeps its old key, unreachable by name in the same way.
// Each row is its own statement, so a collision skips that row only.
func rekeyUserNames(ctx context.Context, db *sql.DB, d *dialect) error {
	rows, err := db.QueryContext(ctx, "SELECT id, user_name, user_name_key FROM users ORDER BY created, id")
	if err != nil {
		return fmt.Errorf("rekey user names: %w", err)
	}
	type rekey struct{ id, key, old string }
	var todo []rekey
	for rows.Next() {
		var id, name, old string
		if err := rows.Scan(&id, &name, &old); err != nil {
			rows.Close()
			return fmt.Errorf("rekey user names: %w", err)
		}
		if key, err := userNameKey(name); err == nil && key != old && len(key) <= maxNameKeyLen {
			todo = append(todo, rekey{id, key, old})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rekey user names: %w", err)
	}
	for _, r := range todo {
		_, err := db.ExecContext(ctx, "UPDATE users SET user_name_key = ? WHERE id = ? AND user_name_key = ?", r.key, r.id, r.old)
		if err != nil && !errors.Is(d.classify(err), ErrConflict) {
			return fmt.Errorf("rekey user name of user %q: %w", r.id, err)
		}
	}
	return nil
}
