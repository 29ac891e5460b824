package rbac

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/store"
)

// EphemeralRecords is the part of the store that remembers the backend
// users portcullis created, so a crash cannot leave them behind unnoticed.
type EphemeralRecords interface {
	AddEphemeralUser(ctx context.Context, e store.EphemeralUser) (store.EphemeralUser, error)
	RemoveEphemeralUser(ctx context.Context, backendUser string) error
	ListEphemeralUsers(ctx context.Context) ([]store.EphemeralUser, error)
}

// maxUserName keeps names within MySQL's 32-character limit (MariaDB
// allows 80), so one plan works on both.
const maxUserName = 32

// Provisioner creates a backend user per session for roles with plan
// ephemeral, and one per person for plan per_user (peruser.go), so the backend's process list and audit show the person,
// and drops it when the session ends. Ephemeral sessions bypass any
// connection pool: each has its own user.
type Provisioner struct {
	backend BackendLogin
	node    string
	records EphemeralRecords
	roles   map[string]config.Role
	log     *slog.Logger

	mu     sync.Mutex
	admins map[string]*sql.DB // by role: the role's backend_user, which creates users
	kek    []byte             // what per_user passwords derive from (UsePasswordKey)
}

// NewProvisioner prepares per-session users for cfg's ephemeral roles.
func NewProvisioner(cfg *config.Config, backend BackendLogin, records EphemeralRecords, log *slog.Logger) *Provisioner {
	return &Provisioner{backend: backend, node: cfg.Node, records: records,
		roles: cfg.Roles, log: log, admins: map[string]*sql.DB{}}
}

// admin returns the pool of the role's managing account.
func (p *Provisioner) admin(role string) (*sql.DB, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if db, ok := p.admins[role]; ok {
		return db, nil
	}
	r, ok := p.roles[role]
	if !ok {
		return nil, fmt.Errorf("role %q is no longer configured", role)
	}
	c := p.backend.driverConfig(r.BackendUser, r.BackendPassword.Value())
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	p.admins[role] = db
	return db, nil
}

// Acquire creates a backend user for one session of identity in role g
// and returns its credentials and a release that drops it.
func (p *Provisioner) Acquire(ctx context.Context, identity string, sessionID uint32, g Grant) (user, password string, release func(), err error) {
	db, err := p.admin(g.Role)
	if err != nil {
		return "", "", nil, err
	}
	user = UserName(identity)
	pw := make([]byte, 24)
	rand.Read(pw)
	password = hex.EncodeToString(pw)
	// Record first: if the process dies after CREATE USER, the sweeper
	// still knows the user exists.
	if _, err := p.records.AddEphemeralUser(ctx, store.EphemeralUser{BackendUser: user, Node: p.node, SessionID: strconv.FormatUint(uint64(sessionID), 10)}); err != nil {
		return "", "", nil, fmt.Errorf("record session user: %w", err)
	}
	release = func() { p.drop(user, g.Role) }
	p.mu.Lock()
	r := p.roles[g.Role]
	p.mu.Unlock()
	account := "'" + user + "'@'%'" // user is [a-z0-9_] only: safe to quote
	stmts := []string{"CREATE USER " + account + " IDENTIFIED BY '" + password + "'"}
	for _, grant := range r.Grants {
		stmts = append(stmts, "GRANT "+grant+" TO "+account)
	}
	if r.BackendRole != "" {
		stmts = append(stmts, "GRANT "+r.BackendRole+" TO "+account, "SET DEFAULT ROLE "+r.BackendRole+" FOR "+account)
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			release()
			var me *mysql.MySQLError
			if errors.As(err, &me) {
				return "", "", nil, auth.Denied("the backend refused to create the session user for role %s (%s as %s): %s; give it CREATE USER and GRANT OPTION on what the role grants",
					g.Role, strings.Fields(s)[0], r.BackendUser, me.Message)
			}
			return "", "", nil, fmt.Errorf("create session user: %w", err)
		}
	}
	return user, password, release, nil
}

// drop removes a session user from the backend and from the records,
// through the managing account of the first of roles that can.
func (p *Provisioner) drop(user string, roles ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dropped := false
	for _, role := range roles {
		db, err := p.admin(role)
		if err != nil {
			continue
		}
		// DROP USER leaves the user's connections open, including any
		// opened directly with its password: end them first.
		p.killThreads(ctx, db, user)
		if _, err := db.ExecContext(ctx, "DROP USER IF EXISTS '"+user+"'@'%'"); err == nil {
			dropped = true
			break
		}
	}
	if !dropped {
		p.log.Warn("could not drop session user; the sweeper retries at the next start", "backend_user", user)
		return
	}
	if err := p.records.RemoveEphemeralUser(ctx, user); err != nil {
		p.log.Warn("forget session user", "backend_user", user, "err", err)
	}
}

// Sweep drops the session users this node recorded and still has: left
// over by a crash; and the personal accounts (per_user) locked longer ago
// than their role's drop_after, whichever node locked them. Call it at
// start, before serving.
func (p *Provisioner) Sweep(ctx context.Context) (int, error) {
	list, err := p.records.ListEphemeralUsers(ctx)
	if err != nil {
		return 0, err
	}
	var ephemeral []string // the record does not say which role made it
	p.mu.Lock()
	for name, r := range p.roles {
		if r.Plan == config.PlanEphemeral {
			ephemeral = append(ephemeral, name)
		}
	}
	p.mu.Unlock()
	p.sweepLocked(list)
	n := 0
	for _, e := range list {
		if strings.HasPrefix(e.SessionID, lockedRecord) {
			continue // a locked personal account: sweepLocked's
		}
		if e.Node == p.node {
			p.drop(e.BackendUser, ephemeral...)
			n++
		}
	}
	return n, nil
}

// Reload takes a reloaded config's roles; managing connections reopen
// with the new credentials when next needed.
func (p *Provisioner) Reload(roles map[string]config.Role) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.roles = roles
	for name, db := range p.admins {
		db.Close()
		delete(p.admins, name)
	}
}

// Close closes the managing connections.
func (p *Provisioner) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, db := range p.admins {
		db.Close()
	}
}

// UserName makes a backend user name from an identity: lowercase
// letters, digits and "_", cut to fit, and a random suffix so two
// sessions of one person never share a user.
func UserName(identity string) string {
	var b strings.Builder
	last := byte('_')
	for _, r := range strings.ToLower(identity) {
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
	suffix := make([]byte, 3)
	rand.Read(suffix)
	base := strings.TrimRight(b.String(), "_")
	if base == "" {
		base = "pc"
	}
	if max := maxUserName - 7; len(base) > max {
		base = strings.TrimRight(base[:max], "_")
	}
	return base + "_" + hex.EncodeToString(suffix)
}
