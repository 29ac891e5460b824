package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
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
// A connection goes back only after a clean COM_QUIT (the backend is
// then idle). It is reset off the client's path, as it goes back:
// COM_RESET_CONNECTION clears variables, temporary tables, prepared
// statements and an open transaction, and a SELECT DATABASE() in the same
// write learns the default database, which the reset keeps. A client is
// then only given a connection with its own database (or one switched to
// it with COM_INIT_DB), so no session state passes between sessions or
// identities, and taking a connection costs no backend round trip.
type pool struct {
	dial func(ctx context.Context, r recipe) (*backendConn, error)

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
func (p *pool) sweep(cfgOf func(user string) PoolConfig) []poolKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	var keys []poolKey
	for key, list := range p.idle {
		cfg := cfgOf(key.User)
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

// selectDatabase is the COM_QUERY sent with every reset.
var selectDatabase = append([]byte{mysql.COM_QUERY}, "SELECT DATABASE()"...)

// reset clears the session state and learns the default database. Both
// commands go in one write: one round trip.
func (c *pooled) reset() error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	batch := make([]byte, 0, 5+4+len(selectDatabase))
	batch = append(batch, 1, 0, 0, 0, mysql.COM_RESET_CONNECTION)
	batch = append(batch, byte(len(selectDatabase)), 0, 0, 0)
	batch = append(batch, selectDatabase...)
	if _, err := c.Write(batch); err != nil {
		return err
	}
	ok, _, err := wire.ReadPacket(c.Conn, 64<<10)
	if err != nil {
		return err
	}
	if len(ok) == 0 || ok[0] != mysql.OK_HEADER {
		return errors.New("unexpected answer to COM_RESET_CONNECTION")
	}
	db, err := readDatabase(c.Conn)
	if err != nil {
		return fmt.Errorf("read SELECT DATABASE(): %w", err)
	}
	c.ok, c.db = ok, db // a client reusing c on db gets the reset's OK
	return nil
}

// readDatabase reads the one-row, one-column result of SELECT DATABASE():
// a column count, one column definition, an EOF unless the client chose
// CLIENT_DEPRECATE_EOF, the row, and a final EOF or OK (header 0xfe
// either way). A row cannot start with 0xfe here (that would announce a
// value of 2^24 bytes or more), which tells the optional EOF from the row.
func readDatabase(r net.Conn) (string, error) {
	next := func() ([]byte, error) {
		p, _, err := wire.ReadPacket(r, 64<<10)
		if err == nil && (len(p) == 0 || p[0] == mysql.ERR_HEADER) {
			err = errors.New("error or empty packet in the result")
		}
		return p, err
	}
	count, err := next()
	if err != nil {
		return "", err
	}
	if count[0] != 1 {
		return "", errors.New("not a one-column result")
	}
	if _, err := next(); err != nil { // the column definition
		return "", err
	}
	row, err := next()
	if err == nil && row[0] == mysql.EOF_HEADER {
		row, err = next()
	}
	if err != nil {
		return "", err
	}
	end, err := next()
	if err != nil {
		return "", err
	}
	if end[0] != mysql.EOF_HEADER {
		return "", errors.New("more than one row")
	}
	v, _, err := wire.FirstColumn(row)
	return string(v), err
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
