package proxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/portcullisdb/portcullis/proxy/wire"

	"github.com/portcullisdb/portcullis/metrics"
)

// PoolConfig sizes one role's pool of warm backend connections.
type PoolConfig struct {
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
}

// pool keeps idle, authenticated backend connections so a new session
// skips the backend's handshake. A connection goes back only after a
// clean COM_QUIT (the backend is then idle) and is reset with
// COM_RESET_CONNECTION before reuse, so no session state (variables,
// temporary tables, prepared statements, an open transaction) passes
// between sessions or identities.
type pool struct {
	mu   sync.Mutex
	idle map[poolKey][]*pooled
}

func newPool() *pool { return &pool{idle: map[poolKey][]*pooled{}} }

// get returns a reset connection for key, or nil.
func (p *pool) get(key poolKey, cfg PoolConfig, db string) (*pooled, []byte) {
	for {
		p.mu.Lock()
		list := p.idle[key]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil, nil
		}
		c := list[len(list)-1] // newest first: the warmest
		p.idle[key] = list[:len(list)-1]
		metrics.PoolIdle.WithLabelValues(key.User).Dec()
		p.mu.Unlock()
		if expired(c, cfg) {
			c.Close()
			continue
		}
		ok, err := c.reset(db)
		if err != nil {
			c.Close()
			if errors.Is(err, errDBRefused) {
				return nil, ok // the backend's own ERR for the database: tell the client
			}
			continue
		}
		return c, ok
	}
}

// put keeps c for reuse, or closes it when the pool is full or c is old.
func (p *pool) put(key poolKey, cfg PoolConfig, c *pooled) {
	if cfg.MaxIdle <= 0 || expired(c, cfg) {
		c.Close()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[key]
	if len(list) >= cfg.MaxIdle {
		c.Close()
		return
	}
	c.idled = time.Now()
	p.idle[key] = append(list, c)
	metrics.PoolIdle.WithLabelValues(key.User).Inc()
}

// sweep closes connections idle or alive too long.
func (p *pool) sweep(cfgOf func(user string) PoolConfig) {
	p.mu.Lock()
	defer p.mu.Unlock()
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
}

func (p *pool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
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

// reset clears the session state and selects db, returning the OK packet
// to forward to the client (or, with errDBRefused, the backend's ERR).
func (c *pooled) reset(db string) ([]byte, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	ok, err := c.command(mysql.COM_RESET_CONNECTION, nil)
	if err != nil {
		return nil, fmt.Errorf("reset pooled connection: %w", err)
	}
	if db != "" {
		if ok, err = c.command(mysql.COM_INIT_DB, []byte(db)); err != nil {
			return ok, err
		}
	}
	return ok, nil
}

// command sends one simple command and reads its OK.
func (c *pooled) command(cmd byte, arg []byte) ([]byte, error) {
	if err := wire.WritePacket(c.Conn, 0, append([]byte{cmd}, arg...)); err != nil {
		return nil, err
	}
	p, _, err := wire.ReadPacket(c.Conn, 64<<10)
	if err != nil {
		return nil, err
	}
	switch {
	case len(p) > 0 && p[0] == mysql.OK_HEADER:
		return p, nil
	case len(p) > 0 && p[0] == mysql.ERR_HEADER && cmd == mysql.COM_INIT_DB:
		return p, errDBRefused
	}
	return nil, fmt.Errorf("unexpected answer to command %#x", cmd)
}

var _ net.Conn = (*pooled)(nil)
