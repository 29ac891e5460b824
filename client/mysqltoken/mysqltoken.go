package mysqltoken

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/client"
)

// Options tune a Tokens.
type Options struct {
	// Role is the role to connect with (the MySQL user becomes
	// username/role); "" uses the identity's default role. It is used only
	// when the mysql.Config has no User.
	Role string
	// Log gets one line per renewal and per failure; nil: slog.Default().
	Log *slog.Logger
}

// Tokens hands out the shared, renewed token of one source.
type Tokens struct {
	keeper *client.Keeper
	role   string
}

// New returns the tokens of src; check src with src.Validate first for a
// message that names what is missing.
func New(src client.TokenSource, opt Options) *Tokens {
	return &Tokens{keeper: client.NewKeeper(src, opt.Log), role: opt.Role}
}

// Token is the token the next connection logs in with.
func (t *Tokens) Token(ctx context.Context) (client.Entry, error) { return t.keeper.Token(ctx) }

type entryKey struct{}

// BeforeConnect sets cfg's password to a valid token (and its User, when
// empty, to the token's user name, with Options.Role) just before
// go-sql-driver dials. Use it with cfg.Apply(mysql.BeforeConnect(t.BeforeConnect)).
func (t *Tokens) BeforeConnect(ctx context.Context, cfg *mysql.Config) error {
	if err := requireTLS(cfg); err != nil {
		return err
	}
	e, ok := ctx.Value(entryKey{}).(client.Entry)
	if !ok {
		var err error
		if e, err = t.keeper.Token(ctx); err != nil {
			return fmt.Errorf("portcullis token for a new connection: %w", err)
		}
	}
	if cfg.User == "" {
		if e.Username == "" {
			return errors.New("portcullis token: the token names no user: set mysql.Config.User")
		}
		cfg.User = e.Username
		if t.role != "" {
			cfg.User += "/" + t.role
		}
	}
	cfg.Passwd = e.AccessToken
	cfg.AllowCleartextPasswords = true
	return nil
}

// requireTLS refuses to send a token in the clear.
func requireTLS(cfg *mysql.Config) error {
	if cfg.TLS == nil && (cfg.TLSConfig == "" || cfg.TLSConfig == "false") {
		return errors.New("portcullis token: the token goes as a clear-text password, so the connection needs TLS: set mysql.Config.TLS (or tls=true in the DSN)")
	}
	return nil
}

// NewConnector returns a connector for sql.OpenDB whose every new
// connection logs in with a valid token of t, and whose connections
// retire (database/sql closes them instead of handing them out again)
// when less than a tenth of their token's life, and at most 30 seconds,
// is left. cfg is copied; its User may be empty (the token's user is
// used) and its Passwd is ignored.
func (t *Tokens) NewConnector(cfg *mysql.Config) (driver.Connector, error) {
	if err := requireTLS(cfg); err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	if err := cfg.Apply(mysql.BeforeConnect(t.BeforeConnect)); err != nil {
		return nil, err
	}
	base, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return &connector{base: base, tokens: t}, nil
}

type connector struct {
	base   driver.Connector
	tokens *Tokens
}

// Connect implements driver.Connector.
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	e, err := c.tokens.keeper.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("portcullis token for a new connection: %w", err)
	}
	dc, err := c.base.Connect(context.WithValue(ctx, entryKey{}, e))
	if err != nil {
		return nil, err
	}
	full, ok := dc.(fullConn)
	if !ok { // not go-sql-driver's connection: nothing to wrap
		return dc, nil
	}
	margin := min(e.ExpiresAt.Sub(e.IssuedAt)/10, 30*time.Second)
	return &conn{fullConn: full, retireAt: e.ExpiresAt.Add(-margin)}, nil
}

// Driver implements driver.Connector.
func (c *connector) Driver() driver.Driver { return c.base.Driver() }

// fullConn is what go-sql-driver's connection implements; conn passes
// all of it through, so database/sql takes the same fast paths.
type fullConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// conn is a connection that retires before its token expires.
type conn struct {
	fullConn
	retireAt time.Time
}

// ResetSession runs before database/sql hands out a used connection
// again; ErrBadConn makes it close this one and open another.
func (c *conn) ResetSession(ctx context.Context) error {
	if !time.Now().Before(c.retireAt) {
		return driver.ErrBadConn
	}
	return c.fullConn.ResetSession(ctx)
}

// IsValid runs before database/sql puts the connection back in the pool.
func (c *conn) IsValid() bool {
	return time.Now().Before(c.retireAt) && c.fullConn.IsValid()
}
