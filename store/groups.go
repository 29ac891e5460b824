package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
)

const groupCols = "g.id, g.display_name, g.external_id, g.extra, g.version, g.created, g.updated, g.connection_name"

// groupsWithMembers reads groups and their members in one statement, so
// a group's version and members always come from the same moment. from is
// a table expression (ours, never input) aliased g; where and its args
// filter it.
func groupsWithMembers(ctx context.Context, q querier, from, where string, args ...any) ([]Group, error) {
	query := "SELECT " + groupCols + ", m.user_id FROM " + from + " g LEFT JOIN group_members m ON m.group_id = g.id"
	if where != "" {
		query += " WHERE " + where
	}
	query += " ORDER BY g.created, g.id, m.user_id"
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var groups []Group
	for rows.Next() {
		var (
			g                Group
			extra            []byte
			created, updated int64
			member           sql.NullString
		)
		if err := rows.Scan(&g.ID, &g.DisplayName, &g.ExternalID, &extra, &g.Version, &created, &updated, &g.Connection, &member); err != nil {
			return nil, err
		}
		if n := len(groups); n == 0 || groups[n-1].ID != g.ID {
			g.Extra = rawOrNil(extra)
			g.Created, g.Updated = fromMicros(created), fromMicros(updated)
			groups = append(groups, g)
		}
		if member.Valid {
			last := &groups[len(groups)-1]
			last.Members = append(last.Members, member.String)
		}
	}
	return groups, rows.Err()
}

// oneGroup is groupsWithMembers for a lookup that must find exactly one.
func oneGroup(ctx context.Context, q querier, where string, args ...any) (Group, error) {
	groups, err := groupsWithMembers(ctx, q, "directory_groups", where, args...)
	if err != nil {
		return Group{}, err
	}
	if len(groups) == 0 {
		return Group{}, sql.ErrNoRows
	}
	return groups[0], nil
}

func checkGroup(op string, g Group) error {
	if err := checkOptionalKey(op, "id", g.ID); err != nil {
		return err
	}
	if err := checkKey(op, "display name", nameKey(g.DisplayName), maxNameKeyLen); err != nil {
		return err
	}
	for _, id := range g.Members {
		if err := checkKey(op, "member id", id, maxKeyLen); err != nil {
			return err
		}
	}
	return nil
}

// insertMembers adds userIDs to a group; an unknown user fails the foreign
// key (ErrNotFound once wrapped).
func insertMembers(ctx context.Context, tx *sql.Tx, groupID string, userIDs []string) error {
	for _, uid := range userIDs {
		if _, err := tx.ExecContext(ctx, "INSERT INTO group_members (group_id, user_id) VALUES (?, ?)", groupID, uid); err != nil {
			return fmt.Errorf("add member %q: %w", uid, err)
		}
	}
	return nil
}

// CreateGroup implements Store.
func (s *DB) CreateGroup(ctx context.Context, g Group) (Group, error) {
	op := fmt.Sprintf("create group %q", g.DisplayName)
	if err := checkGroup(op, g); err != nil {
		return Group{}, err
	}
	if g.ID == "" {
		g.ID = uuid.NewString()
	}
	now := s.now()
	g.Version, g.Created, g.Updated = 1, now, now
	g.Extra = rawOrNil(g.Extra)
	g.Members = uniqueSorted(g.Members)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO directory_groups (id, display_name, display_name_key,
			external_id, extra, version, created, updated, connection_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.DisplayName, nameKey(g.DisplayName), g.ExternalID, nullBytes(g.Extra),
			g.Version, micros(g.Created), micros(g.Updated), g.Connection)
		if err != nil {
			return err
		}
		return insertMembers(ctx, tx, g.ID, g.Members)
	})
	if err != nil {
		return Group{}, s.wrap(op, err)
	}
	return g, nil
}

// GetGroup implements Store.
func (s *DB) GetGroup(ctx context.Context, id string) (Group, error) {
	g, err := oneGroup(ctx, s.db, "g.id = ?", id)
	return g, s.wrap(fmt.Sprintf("get group %q", id), err)
}

// GetGroupByName implements Store.
func (s *DB) GetGroupByName(ctx context.Context, displayName string) (Group, error) {
	g, err := oneGroup(ctx, s.db, "g.display_name_key = ?", nameKey(displayName))
	return g, s.wrap(fmt.Sprintf("get group by name %q", displayName), err)
}

// ListGroups implements Store.
func (s *DB) ListGroups(ctx context.Context, opts ListOptions) ([]Group, int, error) {
	const op = "list groups"
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM directory_groups").Scan(&total); err != nil {
		return nil, 0, s.wrap(op, err)
	}
	limit, offset := page(opts)
	groups, err := groupsWithMembers(ctx, s.db,
		`(SELECT id, display_name, external_id, extra, version, created, updated, connection_name
			FROM directory_groups ORDER BY created, id LIMIT ? OFFSET ?)`, "", limit, offset)
	if err != nil {
		return nil, 0, s.wrap(op, err)
	}
	return groups, total, nil
}

// UpdateGroup implements Store.
func (s *DB) UpdateGroup(ctx context.Context, g Group, expectedVersion int64) (Group, error) {
	op := fmt.Sprintf("update group %q", g.ID)
	if err := checkGroup(op, g); err != nil {
		return Group{}, err
	}
	var out Group
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE directory_groups SET display_name = ?, display_name_key = ?,
			external_id = ?, extra = ?, version = version + 1, updated = ?
			WHERE id = ? AND (? = 0 OR version = ?)`,
			g.DisplayName, nameKey(g.DisplayName), g.ExternalID, nullBytes(g.Extra), micros(s.now()),
			g.ID, expectedVersion, expectedVersion)
		if err != nil {
			return err
		}
		if err := versionCheck(ctx, tx, res, "directory_groups", g.ID, expectedVersion); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM group_members WHERE group_id = ?", g.ID); err != nil {
			return err
		}
		if err := insertMembers(ctx, tx, g.ID, uniqueSorted(g.Members)); err != nil {
			return err
		}
		out, err = oneGroup(ctx, tx, "g.id = ?", g.ID)
		return err
	})
	if err != nil {
		return Group{}, s.wrap(op, err)
	}
	return out, nil
}

// bumpGroup gives a group a new version, locking its row until the
// transaction ends (every change to a member set starts here, so they
// queue), or returns sql.ErrNoRows.
func (s *DB) bumpGroup(ctx context.Context, tx *sql.Tx, groupID string) error {
	return mustAffect(tx.ExecContext(ctx, "UPDATE directory_groups SET version = version + 1, updated = ? WHERE id = ?",
		micros(s.now()), groupID))
}

// AddMembers implements Store.
func (s *DB) AddMembers(ctx context.Context, groupID string, userIDs ...string) error {
	op := fmt.Sprintf("add members to group %q", groupID)
	for _, id := range userIDs {
		if err := checkKey(op, "member id", id, maxKeyLen); err != nil {
			return err
		}
	}
	err := s.inTxMaybe(ctx, func(tx *sql.Tx) error {
		if err := s.bumpGroup(ctx, tx, groupID); err != nil {
			return err
		}
		current, err := memberSet(ctx, tx, groupID)
		if err != nil {
			return err
		}
		var add []string
		for _, id := range uniqueSorted(userIDs) {
			if !current[id] {
				add = append(add, id)
			}
		}
		if len(add) == 0 {
			return errNoChange // keep the version: nothing changed
		}
		return insertMembers(ctx, tx, groupID, add)
	})
	return s.wrap(op, err)
}

func memberSet(ctx context.Context, tx *sql.Tx, groupID string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, "SELECT user_id FROM group_members WHERE group_id = ?", groupID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	set := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		set[id] = true
	}
	return set, rows.Err()
}

// RemoveMembers implements Store.
func (s *DB) RemoveMembers(ctx context.Context, groupID string, userIDs ...string) error {
	ids := uniqueSorted(userIDs)
	err := s.inTxMaybe(ctx, func(tx *sql.Tx) error {
		if err := s.bumpGroup(ctx, tx, groupID); err != nil {
			return err
		}
		if len(ids) == 0 {
			return errNoChange
		}
		args := []any{groupID}
		for _, id := range ids {
			args = append(args, id)
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM group_members WHERE group_id = ? AND user_id IN ("+placeholders(len(ids))+")", args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errNoChange
		}
		return nil
	})
	return s.wrap(fmt.Sprintf("remove members from group %q", groupID), err)
}

// DeleteGroup implements Store.
func (s *DB) DeleteGroup(ctx context.Context, id string) error {
	err := mustAffect(s.db.ExecContext(ctx, "DELETE FROM directory_groups WHERE id = ?", id))
	return s.wrap(fmt.Sprintf("delete group %q", id), err)
}

// GroupsOfUser implements Store.
func (s *DB) GroupsOfUser(ctx context.Context, userID string) ([]Group, error) {
	op := fmt.Sprintf("groups of user %q", userID)
	rows, err := s.db.QueryContext(ctx, `SELECT `+groupCols+` FROM directory_groups g
		JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.display_name_key, g.id`, userID)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var groups []Group
	for rows.Next() {
		var (
			g                Group
			extra            []byte
			created, updated int64
		)
		if err := rows.Scan(&g.ID, &g.DisplayName, &g.ExternalID, &extra, &g.Version, &created, &updated, &g.Connection); err != nil {
			return nil, s.wrap(op, err)
		}
		g.Extra = rawOrNil(extra)
		g.Created, g.Updated = fromMicros(created), fromMicros(updated)
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return groups, nil
}

// --- teams ---

func scanTeam(row scanner) (Team, error) {
	var (
		t                Team
		groups, roles    string
		created, updated int64
	)
	if err := row.Scan(&t.Name, &groups, &roles, &created, &updated); err != nil {
		return Team{}, err
	}
	if err := json.Unmarshal([]byte(groups), &t.Groups); err != nil {
		return Team{}, fmt.Errorf("team %s: decode groups: %w", t.Name, err)
	}
	if err := json.Unmarshal([]byte(roles), &t.Roles); err != nil {
		return Team{}, fmt.Errorf("team %s: decode roles: %w", t.Name, err)
	}
	t.Created, t.Updated = fromMicros(created), fromMicros(updated)
	return t, nil
}

const teamCols = "name, group_names, roles, created, updated"

// PutTeam implements Store.
func (s *DB) PutTeam(ctx context.Context, t Team) (Team, error) {
	op := fmt.Sprintf("put team %q", t.Name)
	if err := checkKey(op, "name", t.Name, maxKeyLen); err != nil {
		return Team{}, err
	}
	groups, err := json.Marshal(t.Groups)
	if err != nil {
		return Team{}, fmt.Errorf("%s: encode groups: %w", op, err)
	}
	roles, err := json.Marshal(t.Roles)
	if err != nil {
		return Team{}, fmt.Errorf("%s: encode roles: %w", op, err)
	}
	now := micros(s.now())
	var out Team
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.d.upsertTeam, t.Name, string(groups), string(roles), now, now); err != nil {
			return err
		}
		out, err = scanTeam(tx.QueryRowContext(ctx, "SELECT "+teamCols+" FROM teams WHERE name = ?", t.Name))
		return err
	})
	if err != nil {
		return Team{}, s.wrap(op, err)
	}
	return out, nil
}

// GetTeam implements Store.
func (s *DB) GetTeam(ctx context.Context, name string) (Team, error) {
	t, err := scanTeam(s.db.QueryRowContext(ctx, "SELECT "+teamCols+" FROM teams WHERE name = ?", name))
	return t, s.wrap(fmt.Sprintf("get team %q", name), err)
}

// ListTeams implements Store.
func (s *DB) ListTeams(ctx context.Context) ([]Team, error) {
	const op = "list teams"
	rows, err := s.db.QueryContext(ctx, "SELECT "+teamCols+" FROM teams ORDER BY name")
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var teams []Team
	for rows.Next() {
		t, err := scanTeam(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		teams = append(teams, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return teams, nil
}

// DeleteTeam implements Store.
func (s *DB) DeleteTeam(ctx context.Context, name string) error {
	err := mustAffect(s.db.ExecContext(ctx, "DELETE FROM teams WHERE name = ?", name))
	return s.wrap(fmt.Sprintf("delete team %q", name), err)
}
