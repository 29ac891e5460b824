package rbac

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/username"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/store"
)

// Plan per_user: each person gets a persistent backend account of their
// own, so MariaDB itself keeps people apart (each sees only their own
// process list rows and can kill only their own threads). The role's
// backend_user is the managing account: it creates the account at first
// connect with the role's grants or backend_role, locks it and ends its
// connections when the person is deprovisioned, and drops it after
// per_user.drop_after.
//
// The password is never stored: it is derived (HKDF-SHA256) from the
// key-encryption key every node already shares, the account name and
// the rotation period, so every node computes the same one, nobody but
// portcullis can, and it changes every per_user.password_rotation. A
// login that fails (a new account, a new period, a locked account of a
// person allowed again) makes the managing account create or update the
// account, and the login is tried once more.

// personalPrefix starts every per_user account name.
const personalPrefix = "pu_"

// lockedRecord marks, in the store's records of backend users portcullis
// made (EphemeralRecords), a personal account locked at deprovisioning:
// its Created is the lock time, so any node's Sweep can drop it once
// per_user.drop_after has passed, a restart in between or not.
const lockedRecord = "per_user-locked:"

// PersonalName is the backend account of identity in role: "pu_", a
// readable part of the identity, "_" and 12 hex digits of a hash of the
// identity's normal form (auth/username) and role, 32 characters at most (MySQL 8's limit; MariaDB
// allows 80). Two identities that read alike still differ in the hash.
func PersonalName(identity, role string) string {
	if n, err := username.Normalize(identity); err == nil {
		identity = n // one person, one account, however the name is spelt
	}
	identity = strings.ToLower(identity)
	sum := sha256.Sum256([]byte(identity + "\x00" + role))
	tail := "_" + hex.EncodeToString(sum[:6])
	var b strings.Builder
	last := byte('_')
	for _, r := range identity {
		c := byte('_')
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			c = byte(r)
		}
		if c == '_' && last == '_' {
			continue
		}
		b.WriteByte(c)
		last = c
	}
	readable := strings.TrimRight(b.String(), "_")
	if max := maxUserName - len(personalPrefix) - len(tail); len(readable) > max {
		readable = strings.TrimRight(readable[:max], "_")
	}
	return personalPrefix + readable + tail
}

// UsePasswordKey sets the key per_user passwords derive from (the
// key-encryption key); without it per_user roles are refused.
func (p *Provisioner) UsePasswordKey(key []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kek = key
}

// PersonalCredentials returns identity's account in role g and its
// password for the current rotation period.
func (p *Provisioner) PersonalCredentials(identity string, g Grant) (user, password string, err error) {
	p.mu.Lock()
	kek, r := p.kek, p.roles[g.Role]
	p.mu.Unlock()
	if len(kek) == 0 {
		return "", "", auth.Denied("role %s uses per-person accounts, which this proxy is not set up for", g.Role)
	}
	user = PersonalName(identity, g.Role)
	period := int64(1)
	if rot := r.PerUser.PasswordRotation; rot > 0 {
		period = time.Now().Unix() / int64(rot/time.Second)
	}
	key, err := hkdf.Key(sha256.New, kek, nil, "portcullis per_user password\x00"+user+"\x00"+strconv.FormatInt(period, 10), 24)
	if err != nil {
		return "", "", err
	}
	return user, hex.EncodeToString(key), nil
}

// EnsurePersonal creates identity's account in role g, or brings it up to
// date (the current password, unlocked, the role's grants), through the
// role's managing account.
func (p *Provisioner) EnsurePersonal(ctx context.Context, identity string, g Grant) error {
	user, password, err := p.PersonalCredentials(identity, g)
	if err != nil {
		return err
	}
	db, err := p.admin(g.Role)
	if err != nil {
		return err
	}
	p.mu.Lock()
	r := p.roles[g.Role]
	p.mu.Unlock()
	account := "'" + user + "'@'%'" // user is [a-z0-9_] only: safe to quote
	stmts := []string{
		"CREATE USER IF NOT EXISTS " + account + " IDENTIFIED BY '" + password + "'",
		"ALTER USER " + account + " IDENTIFIED BY '" + password + "' ACCOUNT UNLOCK",
	}
	for _, grant := range r.Grants {
		stmts = append(stmts, "GRANT "+grant+" TO "+account)
	}
	if r.BackendRole != "" {
		stmts = append(stmts, "GRANT "+r.BackendRole+" TO "+account, "SET DEFAULT ROLE "+r.BackendRole+" FOR "+account)
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			var me *mysql.MySQLError
			if errors.As(err, &me) {
				return auth.Denied("the backend refused to set up the personal account for role %s (%s as %s): %s; give it CREATE USER and GRANT OPTION on what the role grants",
					g.Role, strings.Join(strings.Fields(s)[:2], " "), r.BackendUser, me.Message)
			}
			return fmt.Errorf("set up personal account: %w", err)
		}
	}
	// Unlocked: no longer due to be dropped.
	if err := p.records.RemoveEphemeralUser(ctx, user); err != nil && !errors.Is(err, store.ErrNotFound) {
		p.log.Warn("forget the lock of a personal account", "backend_user", user, "err", err)
	}
	return nil
}

// DeprovisionPersonal locks identity's account in each per_user role not
// in keep, ends every connection it has (the proxy's and any opened
// directly against the database), and drops it after the role's
// per_user.drop_after (a timer here; Sweep at the next start of any node
// otherwise). It returns the accounts it locked.
func (p *Provisioner) DeprovisionPersonal(ctx context.Context, identity string, keep []string) []string {
	p.mu.Lock()
	var roles []string
	for name, r := range p.roles {
		if r.Plan == config.PlanPerUser && !contains(keep, name) {
			roles = append(roles, name)
		}
	}
	p.mu.Unlock()
	var locked []string
	for _, role := range roles {
		db, err := p.admin(role)
		if err != nil {
			continue
		}
		user := PersonalName(identity, role)
		if _, err := db.ExecContext(ctx, "ALTER USER IF EXISTS '"+user+"'@'%' ACCOUNT LOCK"); err != nil {
			p.log.Warn("lock personal account", "backend_user", user, "err", err)
			continue
		}
		p.killThreads(ctx, db, user)
		locked = append(locked, user)
		if _, err := p.records.AddEphemeralUser(ctx, store.EphemeralUser{BackendUser: user, Node: p.node, SessionID: lockedRecord + role}); err != nil && !errors.Is(err, store.ErrConflict) {
			p.log.Warn("record the lock of a personal account", "backend_user", user, "err", err)
		}
		p.mu.Lock()
		after := p.roles[role].PerUser.DropAfter
		p.mu.Unlock()
		time.AfterFunc(after, func() { p.dropIfLocked(user, role) })
	}
	return locked
}

// killThreads ends every connection of a backend user, including ones
// opened directly against the database: locking or dropping an account
// does not end its live connections. The managing account needs PROCESS
// (to see them) and CONNECTION ADMIN or SUPER (to kill them).
func (p *Provisioner) killThreads(ctx context.Context, db *sql.DB, user string) {
	rows, err := db.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?", user)
	if err != nil {
		p.log.Warn("list the connections of a backend user", "backend_user", user, "err", err)
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		if _, err := db.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(id, 10)); err != nil {
			var me *mysql.MySQLError
			if errors.As(err, &me) && me.Number == 1094 { // already gone
				continue
			}
			p.log.Warn("end a connection of a backend user: give the managing account PROCESS and CONNECTION ADMIN", "backend_user", user, "thread", id, "err", err)
		}
	}
}

// sweepLocked drops the personal accounts locked longer ago than their
// role's per_user.drop_after; Sweep calls it, so a restart does not keep
// them forever.
func (p *Provisioner) sweepLocked(list []store.EphemeralUser) {
	for _, e := range list {
		role, ok := strings.CutPrefix(e.SessionID, lockedRecord)
		if !ok {
			continue
		}
		p.mu.Lock()
		r, known := p.roles[role]
		p.mu.Unlock()
		if known && time.Since(e.Created) >= r.PerUser.DropAfter {
			p.dropIfLocked(e.BackendUser, role)
		}
	}
}

// dropIfLocked drops a personal account that is still locked: its lock
// record is still there (EnsurePersonal removes it when the person is
// allowed back), which is also what tells the nodes apart (the first to
// remove the record drops the account).
func (p *Provisioner) dropIfLocked(user, role string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := p.admin(role)
	if err != nil {
		return
	}
	if err := p.records.RemoveEphemeralUser(ctx, user); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			p.log.Warn("forget the lock of a personal account", "backend_user", user, "err", err)
		}
		return
	}
	p.killThreads(ctx, db, user)
	if _, err := db.ExecContext(ctx, "DROP USER IF EXISTS '"+user+"'@'%'"); err != nil {
		p.log.Warn("drop locked personal account; the next start's sweep does not retry it: drop it by hand", "backend_user", user, "err", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
