package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
)

// --- signing keys ---

const signingKeyCols = "kid, alg, private_key, public_jwk, created, active_until, retire_after"

func scanSigningKey(row scanner) (SigningKey, error) {
	var (
		k                    SigningKey
		created, retireAfter int64
		activeUntil          sql.NullInt64
	)
	if err := row.Scan(&k.KID, &k.Alg, &k.PrivateKey, &k.PublicJWK, &created, &activeUntil, &retireAfter); err != nil {
		return SigningKey{}, err
	}
	k.Created, k.ActiveUntil, k.RetireAfter = fromMicros(created), fromNullMicros(activeUntil), fromMicros(retireAfter)
	return k, nil
}

// AddSigningKey implements Store.
func (s *DB) AddSigningKey(ctx context.Context, k SigningKey) (SigningKey, error) {
	op := fmt.Sprintf("add signing key %q", k.KID)
	if err := checkKey(op, "kid", k.KID, maxKeyLen); err != nil {
		return SigningKey{}, err
	}
	if k.Alg != AlgES256 && k.Alg != AlgRS256 {
		return SigningKey{}, fmt.Errorf("%s: %w: alg %q is not %s or %s", op, ErrInvalid, k.Alg, AlgES256, AlgRS256)
	}
	if len(k.PrivateKey) == 0 || len(k.PublicJWK) == 0 {
		return SigningKey{}, fmt.Errorf("%s: %w: private key and public JWK are required", op, ErrInvalid)
	}
	k.Created = s.now()
	k.ActiveUntil, k.RetireAfter = normTimePtr(k.ActiveUntil), normTime(k.RetireAfter)
	_, err := s.db.ExecContext(ctx, "INSERT INTO signing_keys ("+signingKeyCols+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		k.KID, k.Alg, k.PrivateKey, k.PublicJWK, micros(k.Created), nullMicros(k.ActiveUntil), micros(k.RetireAfter))
	if err != nil {
		return SigningKey{}, s.wrap(op, err)
	}
	return k, nil
}

// ListSigningKeys implements Store.
func (s *DB) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	const op = "list signing keys"
	rows, err := s.db.QueryContext(ctx, "SELECT "+signingKeyCols+" FROM signing_keys ORDER BY created, kid")
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var keys []SigningKey
	for rows.Next() {
		k, err := scanSigningKey(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return keys, nil
}

// RetireSigningKey implements Store.
func (s *DB) RetireSigningKey(ctx context.Context, kid string, activeUntil, retireAfter time.Time) error {
	err := mustAffect(s.db.ExecContext(ctx, "UPDATE signing_keys SET active_until = ?, retire_after = ? WHERE kid = ?",
		micros(activeUntil), micros(retireAfter), kid))
	return s.wrap(fmt.Sprintf("retire signing key %q", kid), err)
}

// DeleteExpiredSigningKeys implements Store.
func (s *DB) DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int64, error) {
	n, err := affected(s.db.ExecContext(ctx,
		"DELETE FROM signing_keys WHERE active_until IS NOT NULL AND retire_after < ?", micros(now)))
	return n, s.wrap("delete expired signing keys", err)
}

// affected returns how many rows a statement touched.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// --- refresh tokens ---

const refreshTokenCols = "id, family_id, user_id, hash, client_data, created, expires_at, used_at, revoked_at"

func scanRefreshToken(row scanner) (RefreshToken, error) {
	var (
		rt                RefreshToken
		clientData        []byte
		created, expires  int64
		usedAt, revokedAt sql.NullInt64
	)
	if err := row.Scan(&rt.ID, &rt.FamilyID, &rt.UserID, &rt.Hash, &clientData, &created, &expires, &usedAt, &revokedAt); err != nil {
		return RefreshToken{}, err
	}
	rt.ClientData = rawOrNil(clientData)
	rt.Created, rt.ExpiresAt = fromMicros(created), fromMicros(expires)
	rt.UsedAt, rt.RevokedAt = fromNullMicros(usedAt), fromNullMicros(revokedAt)
	return rt, nil
}

func checkHash(op string, h []byte) error {
	if len(h) == 0 {
		return fmt.Errorf("%s: %w: hash is empty", op, ErrInvalid)
	}
	if len(h) > maxHashLen {
		return fmt.Errorf("%s: %w: hash is longer than %d bytes", op, ErrInvalid, maxHashLen)
	}
	return nil
}

// CreateRefreshToken implements Store.
func (s *DB) CreateRefreshToken(ctx context.Context, rt RefreshToken) (RefreshToken, error) {
	out, err := insertRefreshToken(ctx, s.db, s.now(), rt)
	if err != nil {
		return RefreshToken{}, s.wrap(fmt.Sprintf("create refresh token for user %q", rt.UserID), err)
	}
	return out, nil
}

// GetRefreshTokenByHash implements Store.
func (s *DB) GetRefreshTokenByHash(ctx context.Context, hash []byte) (RefreshToken, error) {
	rt, err := scanRefreshToken(s.db.QueryRowContext(ctx, "SELECT "+refreshTokenCols+" FROM refresh_tokens WHERE hash = ?", hash))
	return rt, s.wrap("get refresh token by hash", err)
}

// MarkRefreshTokenUsed implements Store. The conditional UPDATE is the
// compare-and-set: the database lets one writer match used_at IS NULL.
func (s *DB) MarkRefreshTokenUsed(ctx context.Context, id string, at time.Time) error {
	op := fmt.Sprintf("mark refresh token %q used", id)
	n, err := affected(s.db.ExecContext(ctx, "UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL", micros(at), id))
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 1 {
		return nil
	}
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1 FROM refresh_tokens WHERE id = ?", id).Scan(&one); err != nil {
		return s.wrap(op, err)
	}
	return fmt.Errorf("%s: %w: already used", op, ErrConflict)
}

// RotateRefreshToken implements Store. The conditional UPDATE decides
// the winner: the database lets one writer match used_at IS NULL, and a
// revocation of the family, which touches this row too, is ordered
// before or after it, never between the use and the insert of next.
func (s *DB) RotateRefreshToken(ctx context.Context, usedID string, at time.Time, next *RefreshToken) (RefreshToken, error) {
	op := fmt.Sprintf("rotate refresh token %q", usedID)
	var out RefreshToken
	err := s.retryDeadlock(ctx, func(tx *sql.Tx) error {
		n, err := affected(tx.ExecContext(ctx, "UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL",
			micros(at), usedID))
		if err != nil {
			return err
		}
		// Read after the UPDATE: on MariaDB this read's snapshot starts
		// here, after any writer the UPDATE waited for.
		used, err := scanRefreshToken(tx.QueryRowContext(ctx, "SELECT "+refreshTokenCols+" FROM refresh_tokens WHERE id = ?", usedID))
		if err != nil {
			return err
		}
		switch {
		case used.RevokedAt != nil:
			return fmt.Errorf("%w: revoked at %s", ErrRevoked, used.RevokedAt.Format(time.RFC3339))
		case n == 0 && used.UsedAt == nil:
			return fmt.Errorf("%w: used by a concurrent request", ErrConflict)
		case n == 0:
			return fmt.Errorf("%w: already used at %s", ErrConflict, used.UsedAt.Format(time.RFC3339))
		}
		var revoked int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = ? AND revoked_at IS NOT NULL",
			used.FamilyID).Scan(&revoked); err != nil {
			return err
		}
		if revoked > 0 {
			return fmt.Errorf("%w: the family %q was revoked", ErrRevoked, used.FamilyID)
		}
		if next == nil {
			return nil
		}
		nt := *next
		nt.FamilyID, nt.UserID = used.FamilyID, used.UserID
		out, err = insertRefreshToken(ctx, tx, s.now(), nt)
		return err
	})
	if err != nil {
		return RefreshToken{}, s.wrap(op, err)
	}
	return out, nil
}

// insertRefreshToken checks and inserts rt (CreateRefreshToken's body,
// shared with the rotations).
func insertRefreshToken(ctx context.Context, q querier, now time.Time, rt RefreshToken) (RefreshToken, error) {
	const op = "new refresh token"
	if err := checkOptionalKey(op, "id", rt.ID); err != nil {
		return RefreshToken{}, err
	}
	if err := checkOptionalKey(op, "family id", rt.FamilyID); err != nil {
		return RefreshToken{}, err
	}
	if err := checkKey(op, "user id", rt.UserID, maxKeyLen); err != nil {
		return RefreshToken{}, err
	}
	if err := checkHash(op, rt.Hash); err != nil {
		return RefreshToken{}, err
	}
	if rt.ID == "" {
		rt.ID = uuid.NewString()
	}
	if rt.FamilyID == "" {
		rt.FamilyID = rt.ID
	}
	rt.Created = now
	rt.ClientData = rawOrNil(rt.ClientData)
	rt.ExpiresAt = normTime(rt.ExpiresAt)
	rt.UsedAt, rt.RevokedAt = normTimePtr(rt.UsedAt), normTimePtr(rt.RevokedAt)
	_, err := q.ExecContext(ctx, "INSERT INTO refresh_tokens ("+refreshTokenCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		rt.ID, rt.FamilyID, rt.UserID, rt.Hash, nullBytes(rt.ClientData), micros(rt.Created), micros(rt.ExpiresAt),
		nullMicros(rt.UsedAt), nullMicros(rt.RevokedAt))
	if err != nil {
		return RefreshToken{}, err
	}
	return rt, nil
}

// RevokeRefreshFamily implements Store. A revocation that loses a
// deadlock to a rotation is retried: it must not be lost.
func (s *DB) RevokeRefreshFamily(ctx context.Context, familyID string, at time.Time) (int64, error) {
	var n int64
	err := s.retryDeadlock(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = affected(tx.ExecContext(ctx,
			"UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL", micros(at), familyID))
		return err
	})
	return n, s.wrap(fmt.Sprintf("revoke refresh token family %q", familyID), err)
}

// RevokeUserRefreshTokens implements Store.
func (s *DB) RevokeUserRefreshTokens(ctx context.Context, userID string, at time.Time) (int64, error) {
	n, err := affected(s.db.ExecContext(ctx,
		"UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", micros(at), userID))
	return n, s.wrap(fmt.Sprintf("revoke refresh tokens of user %q", userID), err)
}

// DeleteExpiredRefreshTokens implements Store.
func (s *DB) DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) (int64, error) {
	n, err := affected(s.db.ExecContext(ctx, "DELETE FROM refresh_tokens WHERE expires_at < ?", micros(now)))
	return n, s.wrap("delete expired refresh tokens", err)
}

// --- auth codes ---

const authCodeCols = "hash, user_id, family_id, data, created, expires_at, used_at"

func scanAuthCode(row scanner) (AuthCode, error) {
	var (
		c                AuthCode
		data             []byte
		created, expires int64
		usedAt           sql.NullInt64
	)
	if err := row.Scan(&c.Hash, &c.UserID, &c.FamilyID, &data, &created, &expires, &usedAt); err != nil {
		return AuthCode{}, err
	}
	c.Data = rawOrNil(data)
	c.Created, c.ExpiresAt, c.UsedAt = fromMicros(created), fromMicros(expires), fromNullMicros(usedAt)
	return c, nil
}

// CreateAuthCode implements Store.
func (s *DB) CreateAuthCode(ctx context.Context, c AuthCode) (AuthCode, error) {
	op := "create auth code"
	if err := checkHash(op, c.Hash); err != nil {
		return AuthCode{}, err
	}
	if err := checkKey(op, "user id", c.UserID, maxKeyLen); err != nil {
		return AuthCode{}, err
	}
	if len(c.FamilyID) > maxKeyLen {
		return AuthCode{}, fmt.Errorf("%s: %w: family id is longer than %d bytes", op, ErrInvalid, maxKeyLen)
	}
	c.Created = s.now()
	c.Data = rawOrNil(c.Data)
	c.ExpiresAt, c.UsedAt = normTime(c.ExpiresAt), normTimePtr(c.UsedAt)
	_, err := s.db.ExecContext(ctx, "INSERT INTO auth_codes ("+authCodeCols+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		c.Hash, c.UserID, c.FamilyID, nullBytes(c.Data), micros(c.Created), micros(c.ExpiresAt), nullMicros(c.UsedAt))
	if err != nil {
		return AuthCode{}, s.wrap(fmt.Sprintf("%s for user %q", op, c.UserID), err)
	}
	return c, nil
}

// ConsumeAuthCode implements Store.
func (s *DB) ConsumeAuthCode(ctx context.Context, hash []byte, now time.Time) (AuthCode, error) {
	const op = "consume auth code"
	var (
		c    AuthCode
		took bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := affected(tx.ExecContext(ctx,
			"UPDATE auth_codes SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ?",
			micros(now), hash, micros(now)))
		if err != nil {
			return err
		}
		took = n == 1
		c, err = scanAuthCode(tx.QueryRowContext(ctx, "SELECT "+authCodeCols+" FROM auth_codes WHERE hash = ?", hash))
		return err
	})
	switch {
	case err != nil:
		return AuthCode{}, s.wrap(op, err)
	case took:
		return c, nil
	case c.UsedAt != nil:
		return c, fmt.Errorf("%s: %w: already used at %s", op, ErrConflict, c.UsedAt.Format(time.RFC3339))
	default:
		return AuthCode{}, fmt.Errorf("%s: %w: expired %s ago", op, ErrNotFound, now.Sub(c.ExpiresAt).Round(time.Second))
	}
}

// RedeemAuthCode implements Store. use sees the code before anything is
// written; the conditional UPDATE then decides the one winner, and the
// first refresh token commits with the use.
func (s *DB) RedeemAuthCode(ctx context.Context, hash []byte, now time.Time, use func(AuthCode) (*RefreshToken, error)) (AuthCode, error) {
	const op = "redeem auth code"
	var c AuthCode
	var useErr error
	err := s.retryDeadlock(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanAuthCode(tx.QueryRowContext(ctx, "SELECT "+authCodeCols+" FROM auth_codes WHERE hash = ?", hash))
		if err != nil {
			return err
		}
		if !now.Before(c.ExpiresAt) {
			return fmt.Errorf("%w: expired %s ago", ErrNotFound, now.Sub(c.ExpiresAt).Round(time.Second))
		}
		first, err := use(c)
		if err != nil {
			useErr = err
			return err
		}
		if c.UsedAt != nil {
			return fmt.Errorf("%w: already used at %s", ErrConflict, c.UsedAt.Format(time.RFC3339))
		}
		n, err := affected(tx.ExecContext(ctx, "UPDATE auth_codes SET used_at = ? WHERE hash = ? AND used_at IS NULL", micros(now), hash))
		if err != nil {
			return err
		}
		if n == 0 {
			// Another caller used it since the read above.
			return fmt.Errorf("%w: used by a concurrent request", ErrConflict)
		}
		c.UsedAt = ptrTime(normTime(now))
		if first == nil {
			return nil
		}
		var revoked int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = ? AND revoked_at IS NOT NULL",
			c.FamilyID).Scan(&revoked); err != nil {
			return err
		}
		if revoked > 0 {
			return fmt.Errorf("%w: the login %q was revoked", ErrRevoked, c.FamilyID)
		}
		rt := *first
		rt.FamilyID, rt.UserID = c.FamilyID, c.UserID
		_, err = insertRefreshToken(ctx, tx, s.now(), rt)
		return err
	})
	switch {
	case useErr != nil:
		return AuthCode{}, useErr
	case errors.Is(err, ErrConflict):
		return c, fmt.Errorf("%s: %w", op, err)
	case err != nil:
		return AuthCode{}, s.wrap(op, err)
	}
	return c, nil
}

func ptrTime(t time.Time) *time.Time { return &t }

// erLockDeadlock is MariaDB's "Deadlock found when trying to get lock".
const erLockDeadlock = 1213

// retryDeadlock runs fn in a transaction, again (a few times) when
// MariaDB picks it as a deadlock's victim: a rotation and a revocation of
// one family lock its rows in different orders, and neither may be lost.
func (s *DB) retryDeadlock(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for range 5 {
		err = s.inTx(ctx, fn)
		var e *mysql.MySQLError
		if !errors.As(err, &e) || e.Number != erLockDeadlock {
			return err
		}
	}
	return err
}

// DeleteExpiredAuthCodes implements Store.
func (s *DB) DeleteExpiredAuthCodes(ctx context.Context, now time.Time) (int64, error) {
	n, err := affected(s.db.ExecContext(ctx, "DELETE FROM auth_codes WHERE expires_at < ?", micros(now)))
	return n, s.wrap("delete expired auth codes", err)
}

// --- SCIM tokens ---

const scimTokenCols = "id, connection_name, hash, created, last_used"

func scanSCIMToken(row scanner) (SCIMToken, error) {
	var (
		t        SCIMToken
		created  int64
		lastUsed sql.NullInt64
	)
	if err := row.Scan(&t.ID, &t.Connection, &t.Hash, &created, &lastUsed); err != nil {
		return SCIMToken{}, err
	}
	t.Created, t.LastUsed = fromMicros(created), fromNullMicros(lastUsed)
	return t, nil
}

// PutSCIMToken implements Store.
func (s *DB) PutSCIMToken(ctx context.Context, t SCIMToken) (SCIMToken, error) {
	op := fmt.Sprintf("put scim token of connection %q", t.Connection)
	if err := checkKey(op, "connection", t.Connection, maxKeyLen); err != nil {
		return SCIMToken{}, err
	}
	if err := checkOptionalKey(op, "id", t.ID); err != nil {
		return SCIMToken{}, err
	}
	if err := checkHash(op, t.Hash); err != nil {
		return SCIMToken{}, err
	}
	if t.ID == "" {
		t.ID = uuid.NewString()
	}
	t.Created = s.now()
	t.LastUsed = normTimePtr(t.LastUsed)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM scim_tokens WHERE connection_name = ?", t.Connection); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO scim_tokens ("+scimTokenCols+") VALUES (?, ?, ?, ?, ?)",
			t.ID, t.Connection, t.Hash, micros(t.Created), nullMicros(t.LastUsed))
		return err
	})
	if err != nil {
		return SCIMToken{}, s.wrap(op, err)
	}
	return t, nil
}

// FindSCIMToken implements Store.
func (s *DB) FindSCIMToken(ctx context.Context, hash []byte) (SCIMToken, error) {
	t, err := scanSCIMToken(s.db.QueryRowContext(ctx, "SELECT "+scimTokenCols+" FROM scim_tokens WHERE hash = ?", hash))
	return t, s.wrap("find scim token", err)
}

// TouchSCIMToken implements Store.
func (s *DB) TouchSCIMToken(ctx context.Context, id string, at time.Time) error {
	err := mustAffect(s.db.ExecContext(ctx, "UPDATE scim_tokens SET last_used = ? WHERE id = ?", micros(at), id))
	return s.wrap(fmt.Sprintf("touch scim token %q", id), err)
}

// DeleteSCIMToken implements Store.
func (s *DB) DeleteSCIMToken(ctx context.Context, connection string) error {
	err := mustAffect(s.db.ExecContext(ctx, "DELETE FROM scim_tokens WHERE connection_name = ?", connection))
	return s.wrap(fmt.Sprintf("delete scim token of connection %q", connection), err)
}

// ListSCIMTokens implements Store.
func (s *DB) ListSCIMTokens(ctx context.Context) ([]SCIMToken, error) {
	const op = "list scim tokens"
	rows, err := s.db.QueryContext(ctx, "SELECT "+scimTokenCols+" FROM scim_tokens ORDER BY connection_name")
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []SCIMToken
	for rows.Next() {
		t, err := scanSCIMToken(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, t)
	}
	return out, s.wrap(op, rows.Err())
}
