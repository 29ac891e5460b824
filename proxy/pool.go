package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/portcullisdb/portcullis/metrics"
	"github.com/portcullisdb/portcullis/proxy/wire"
)

// PoolConfig sizes one role's pool of warm backend connections.
type PoolConfig struct {
	MinIdle     int           // idle connections opened ahead of demand per key
	MaxIdle     int           // idle connections kept per key; 0 disables pooling
	MaxLifetime time.Duration // a connection older than this is closed, not reused
	IdleTimeout time.Duration // an idle connection unused this long is closed
}

// poolKey is what a pooled connection must share with a new client for
// the raw relay to work: the backend account, the exact capabilities and
// the collation negotiated at login.
type poolKey struct {
	User    string
	Caps    uint32
	ExtCaps uint32
	Charset byte
	config  string // the Live.Pools key that sizes it, when not User (per_user)
}

type pooled struct {
	*backendConn
	created time.Time
	idled   time.Time
	db      string // the default database, as the backend said after the reset
}

// recipe opens more connections of a key: the handshake response of the
// client that first needed one (with only the proxy's own attribute) and
// the role's account.
type recipe struct {
	resp           wire.HandshakeResponse
	user, password string
}

// pool keeps idle, authenticated backend connections so a new session
// skips the backend's handshake.
//
// A connection goes back only after a COM_QUIT, and only when the reset
// proves it idle and clean (see reset); otherwise it is closed. The reset
// runs off the client's path, as the connection goes back, and learns the
// default database, which it keeps. A client is then only given a
// connection with its own database (or one switched to it with
// COM_INIT_DB), so no session state passes between sessions or
// identities, and taking a connection costs no backend round trip.
type pool struct {
	dial func(ctx context.Context, r recipe) (*backendConn, error)
	log  *slog.Logger // nil: silent

	mu        sync.Mutex
	idle      map[poolKey][]*pooled
	recipes   map[poolKey]recipe
	filling   map[poolKey]bool
	returning map[poolKey]int // resets in flight
	changed   chan struct{}   // closed (and replaced) when a connection is put back
	closed    bool
}

func newPool(dial func(context.Context, recipe) (*backendConn, error)) *pool {
	return &pool{dial: dial, idle: map[poolKey][]*pooled{}, recipes: map[poolKey]recipe{},
		filling: map[poolKey]bool{}, returning: map[poolKey]int{}, changed: make(chan struct{})}
}

// returnWait bounds how long a new session waits for a connection that is
// being reset, rather than dial: an application that reconnects at once
// should find the connection it just left.
const returnWait = 20 * time.Millisecond

// get returns a connection for key using database db and the OK packet to
// answer the client with, or nil. With errDBRefused, ok is the backend's
// ERR for the database.
func (p *pool) get(key poolKey, cfg PoolConfig, db string) (c *pooled, ok []byte, err error) {
	deadline := time.Now().Add(returnWait)
	for {
		p.mu.Lock()
		c = p.take(key, db)
		waiting, changed := p.returning[key] > 0, p.changed
		p.mu.Unlock()
		if c == nil {
			if !waiting || time.Now().After(deadline) {
				return nil, nil, nil
			}
			select {
			case <-changed:
			case <-time.After(time.Until(deadline)):
			}
			continue
		}
		if expired(c, cfg) {
			c.Close()
			continue
		}
		if c.db == db {
			return c, c.ok, nil
		}
		ok, err := c.useDB(db)
		if err != nil {
			c.Close()
			if errors.Is(err, errDBRefused) {
				return nil, ok, err
			}
			continue
		}
		return c, ok, nil
	}
}

// take removes and returns the newest idle connection of key on database
// db, or else (when db is not empty) the newest on another database. A
// connection with a database never serves a client that asked for none:
// there is no command to leave a database.
func (p *pool) take(key poolKey, db string) *pooled {
	list := p.idle[key]
	i := len(list) - 1
	for ; i >= 0 && list[i].db != db; i-- {
	}
	if i < 0 && db != "" {
		i = len(list) - 1
	}
	if i < 0 {
		return nil
	}
	c := list[i]
	p.idle[key] = append(list[:i], list[i+1:]...)
	metrics.PoolIdle.WithLabelValues(key.User).Dec()
	return c
}

// giveBack resets c and keeps it, or closes it. It runs after the client
// is gone, so the reset costs no client any time.
func (p *pool) giveBack(key poolKey, cfg PoolConfig, c *pooled) {
	p.mu.Lock()
	p.returning[key]++
	p.mu.Unlock()
	err := c.reset()
	p.mu.Lock()
	p.returning[key]--
	p.mu.Unlock()
	if err != nil {
		if p.log != nil {
			p.log.Debug("pool: closed a backend connection instead of keeping it", "backend_user", key.User, "thread", c.greeting.ConnID, "reason", err)
		}
		c.Close()
		return
	}
	p.put(key, cfg, c)
}

// put keeps a reset c for reuse, or closes it when the pool is full or c
// is old.
func (p *pool) put(key poolKey, cfg PoolConfig, c *pooled) {
	if cfg.MaxIdle <= 0 || expired(c, cfg) {
		c.Close()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[key]
	if p.closed || len(list) >= cfg.MaxIdle {
		c.Close()
		return
	}
	c.idled = time.Now()
	p.idle[key] = append(list, c)
	metrics.PoolIdle.WithLabelValues(key.User).Inc()
	close(p.changed)
	p.changed = make(chan struct{})
}

// remember keeps how to open connections of key, for min_idle.
func (p *pool) remember(key poolKey, r recipe) {
	r.resp.DB = "" // warm connections start without a database
	r.resp.Caps &^= mysql.CLIENT_CONNECT_WITH_DB
	r.resp.Attrs = wire.AppendAttr(nil, "_proxy", "portcullis")
	p.mu.Lock()
	p.recipes[key] = r
	p.mu.Unlock()
}

// fill opens connections in the background until key has cfg.MinIdle idle
// ones. One filler runs per key; a failed dial ends it (the next session
// or sweep tries again).
func (p *pool) fill(ctx context.Context, key poolKey, cfg PoolConfig, log func(msg string, args ...any)) {
	p.mu.Lock()
	r, known := p.recipes[key]
	if !known || p.filling[key] || p.closed || len(p.idle[key])+p.returning[key] >= min(cfg.MinIdle, cfg.MaxIdle) {
		p.mu.Unlock()
		return
	}
	p.filling[key] = true
	p.mu.Unlock()
	go func() {
		defer func() {
			p.mu.Lock()
			delete(p.filling, key)
			p.mu.Unlock()
		}()
		for {
			p.mu.Lock()
			enough := p.closed || len(p.idle[key])+p.returning[key] >= min(cfg.MinIdle, cfg.MaxIdle)
			p.mu.Unlock()
			if enough || ctx.Err() != nil {
				return
			}
			bc, err := p.dial(ctx, r)
			if err != nil {
				log("pool: open a warm backend connection", "backend_user", key.User, "err", err)
				return
			}
			p.put(key, cfg, &pooled{backendConn: bc, created: time.Now()})
		}
	}()
}

// sweep closes connections idle or alive too long and returns the keys
// that may need filling.
func (p *pool) sweep(cfgOf func(key poolKey) PoolConfig) []poolKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	var keys []poolKey
	for key, list := range p.idle {
		cfg := cfgOf(key)
		kept := list[:0]
		for _, c := range list {
			if expired(c, cfg) || cfg.MaxIdle <= 0 {
				c.Close()
				metrics.PoolIdle.WithLabelValues(key.User).Dec()
				continue
			}
			kept = append(kept, c)
		}
		p.idle[key] = kept
	}
	for key := range p.recipes {
		keys = append(keys, key)
	}
	return keys
}

// closeUser closes every idle connection of a backend account and forgets
// how to open more (a person's account, locked at deprovisioning).
func (p *pool) closeUser(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, list := range p.idle {
		if key.User != user {
			continue
		}
		for _, c := range list {
			c.Close()
		}
		metrics.PoolIdle.WithLabelValues(key.User).Sub(float64(len(list)))
		delete(p.idle, key)
	}
	for key := range p.recipes {
		if key.User == user {
			delete(p.recipes, key)
		}
	}
}

func (p *pool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for key, list := range p.idle {
		for _, c := range list {
			c.Close()
		}
		metrics.PoolIdle.WithLabelValues(key.User).Sub(float64(len(list)))
		delete(p.idle, key)
	}
}

func expired(c *pooled, cfg PoolConfig) bool {
	now := time.Now()
	return (cfg.MaxLifetime > 0 && now.Sub(c.created) > cfg.MaxLifetime) ||
		(cfg.IdleTimeout > 0 && !c.idled.IsZero() && now.Sub(c.idled) > cfg.IdleTimeout)
}

// errDBRefused: the backend refused COM_INIT_DB; its ERR goes to the client.
var errDBRefused = errors.New("database refused")

// What MariaDB's COM_RESET_CONNECTION clears (checked against 10.11 by
// the integration tests): user and session variables, temporary tables,
// prepared statements, an open transaction (rolled back), table locks
// (LOCK TABLES), HANDLERs, LAST_INSERT_ID, the character set (back to
// the one of the login). What it leaves, and what the reset does about it:
//   - the active role (SET ROLE): SET ROLE NONE, then the account's
//     default role again if it has one, as a fresh login would;
//   - user-level locks (GET_LOCK): RELEASE_ALL_LOCKS();
//   - a prepared XA transaction (and the connection stays in its XA
//     state): @@in_transaction stays 1, so the connection is closed,
//     which leaves the transaction to XA RECOVER as MariaDB does for
//     any closed connection;
//   - the default database: kept, read with DATABASE(), and a client
//     only gets a connection on its own database (or switched to it).
//
// The last statement of the reset carries a random marker that must come
// back, intact, as the answer right after the reset's own OKs. Answers
// the previous client left pending (it may pipeline queries and COM_QUIT
// in one write) arrive before the reset's and shift them, so a
// connection with anything outstanding (results, errors, a query still
// running, a LOAD DATA LOCAL waiting for its file) fails the check and is
// closed instead of pooled.

// reset clears the session state and proves the connection is idle and
// clean, learning its default database. The commands go in one write:
// one round trip (two for an account with a default role).
func (c *pooled) reset() error {
	c.SetDeadline(time.Now().Add(resetTimeout))
	defer c.SetDeadline(time.Time{})
	m := make([]byte, 16)
	rand.Read(m)
	marker := hex.EncodeToString(m)
	check := "SELECT '" + marker + "', DATABASE(), @@in_transaction, RELEASE_ALL_LOCKS(), CURRENT_ROLE()," +
		" (SELECT ROLE_NAME FROM information_schema.APPLICABLE_ROLES WHERE IS_DEFAULT = 'YES' LIMIT 1)"
	var batch []byte
	for _, cmd := range [][]byte{{mysql.COM_RESET_CONNECTION}, append([]byte{mysql.COM_QUERY}, "SET ROLE NONE"...), append([]byte{mysql.COM_QUERY}, check...)} {
		batch = append(batch, byte(len(cmd)), byte(len(cmd)>>8), byte(len(cmd)>>16), 0)
		batch = append(batch, cmd...)
	}
	if _, err := c.Write(batch); err != nil {
		return err
	}
	var ok []byte
	for _, what := range []string{"COM_RESET_CONNECTION", "SET ROLE NONE"} {
		p, seq, err := wire.ReadPacket(c.Conn, 64<<10)
		if err != nil {
			return fmt.Errorf("read the answer to %s: %w", what, err)
		}
		if len(p) == 0 || p[0] != mysql.OK_HEADER || seq != 1 {
			return fmt.Errorf("unexpected answer to %s: the connection had something outstanding", what)
		}
		if ok == nil {
			ok = p
		}
	}
	v, err := readRow(c.Conn, 6)
	if err != nil {
		return fmt.Errorf("read the reset check: %w", err)
	}
	switch {
	case string(v[0]) != marker:
		return errors.New("the reset check came back without its marker: the connection had something outstanding")
	case string(v[2]) != "0":
		return errors.New("still in a transaction after the reset (a prepared XA transaction?)")
	case v[4] != nil:
		return errors.New("a role is still active after SET ROLE NONE")
	}
	if def := v[5]; def != nil {
		q := "SET ROLE `" + strings.ReplaceAll(string(def), "`", "``") + "`"
		if err := wire.WritePacket(c.Conn, 0, append([]byte{mysql.COM_QUERY}, q...)); err != nil {
			return err
		}
		p, _, err := wire.ReadPacket(c.Conn, 64<<10)
		if err != nil {
			return err
		}
		if len(p) == 0 || p[0] != mysql.OK_HEADER {
			return errors.New("could not restore the account's default role")
		}
	}
	c.ok, c.db = ok, string(v[1]) // a client reusing c on db gets the reset's OK
	return nil
}

// resetTimeout bounds a reset: a connection still busy with the previous
// client's query is closed rather than waited for.
const resetTimeout = 3 * time.Second

// readRow reads a one-row result of n columns: a column count, the
// column definitions, an EOF unless the client chose
// CLIENT_DEPRECATE_EOF, the row, and a final EOF or OK (header 0xfe
// either way). A row cannot start with 0xfe here (that would announce a
// value of 2^24 bytes or more), which tells the optional EOF from the row.
func readRow(r net.Conn, n int) ([][]byte, error) {
	next := func() ([]byte, error) {
		p, _, err := wire.ReadPacket(r, 64<<10)
		if err == nil && (len(p) == 0 || p[0] == mysql.ERR_HEADER) {
			err = errors.New("error or empty packet in the result")
		}
		return p, err
	}
	count, err := next()
	if err != nil {
		return nil, err
	}
	if int(count[0]) != n {
		return nil, fmt.Errorf("not a %d-column result", n)
	}
	defs := n
	if len(count) == 2 && count[1] == 0 { // CLIENT_OPTIONAL_RESULTSET_METADATA: none follow
		defs = 0
	}
	for range defs { // the column definitions
		if _, err := next(); err != nil {
			return nil, err
		}
	}
	row, err := next()
	if err == nil && row[0] == mysql.EOF_HEADER {
		row, err = next()
	}
	if err != nil {
		return nil, err
	}
	end, err := next()
	if err != nil {
		return nil, err
	}
	if end[0] != mysql.EOF_HEADER {
		return nil, errors.New("more than one row")
	}
	return wire.Columns(row, n)
}

// useDB switches c to db with COM_INIT_DB, returning the OK packet to
// forward to the client (or, with errDBRefused, the backend's ERR).
func (c *pooled) useDB(db string) ([]byte, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if err := wire.WritePacket(c.Conn, 0, append([]byte{mysql.COM_INIT_DB}, db...)); err != nil {
		return nil, err
	}
	p, _, err := wire.ReadPacket(c.Conn, 64<<10)
	if err != nil {
		return nil, err
	}
	switch {
	case len(p) > 0 && p[0] == mysql.OK_HEADER:
		c.db = db
		return p, nil
	case len(p) > 0 && p[0] == mysql.ERR_HEADER:
		return p, errDBRefused
	}
	return nil, errors.New("unexpected answer to COM_INIT_DB")
}

var _ net.Conn = (*pooled)(nil)
