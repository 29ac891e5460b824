package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/local"
	"github.com/portcullisdb/portcullis/limit"
	"github.com/portcullisdb/portcullis/metrics"
	"github.com/portcullisdb/portcullis/proxy/wire"
	"github.com/portcullisdb/portcullis/rbac"
)

// TokenVerifier checks a token and says who it belongs to. Refusals are
// *auth.DeniedError; *auth.Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (auth.Identity, error)
}

// RoleResolver picks the role and backend account for an identity.
// Refusals are *auth.DeniedError; *rbac.Resolver implements it.
type RoleResolver interface {
	Resolve(ctx context.Context, id auth.Identity, requestedRole string) (rbac.Grant, error)
}

// SessionUsers creates a backend user for one session of an ephemeral
// role and returns its credentials and a release that drops it;
// *rbac.Provisioner implements it.
type SessionUsers interface {
	Acquire(ctx context.Context, identity string, sessionID uint32, g rbac.Grant) (user, password string, release func(), err error)
}

// PersonalAccounts serves roles with plan per_user: one persistent
// backend account per person; *rbac.Provisioner implements it.
type PersonalAccounts interface {
	// PersonalCredentials names identity's account in role g and its
	// current password.
	PersonalCredentials(identity string, g rbac.Grant) (user, password string, err error)
	// EnsurePersonal creates the account or brings it up to date.
	EnsurePersonal(ctx context.Context, identity string, g rbac.Grant) error
	// DeprovisionPersonal locks identity's accounts of the per_user roles
	// not in keep and ends their connections; it returns the accounts.
	DeprovisionPersonal(ctx context.Context, identity string, keep []string) []string
}

var (
	_ TokenVerifier    = (*auth.Verifier)(nil)
	_ RoleResolver     = (*rbac.Resolver)(nil)
	_ SessionUsers     = (*rbac.Provisioner)(nil)
	_ PersonalAccounts = (*rbac.Provisioner)(nil)
)

// Options configure a Server. Zero durations and sizes take the defaults
// documented in package config.
type Options struct {
	Verifier TokenVerifier
	Roles    RoleResolver
	// SessionUsers serves roles with plan ephemeral; nil refuses them.
	SessionUsers SessionUsers
	// PersonalAccounts serves roles with plan per_user; nil refuses them.
	PersonalAccounts PersonalAccounts
	// Pools: see Live.
	Pools map[string]PoolConfig
	Audit *audit.Logger
	Log   *slog.Logger

	// TLS is the client-leg configuration. Nil is allowed only together
	// with InsecureNoTLS, a development switch that lets tokens cross in
	// the clear.
	TLS           *tls.Config
	InsecureNoTLS bool

	Backend Backend

	MaxConnections   int
	HandshakeTimeout time.Duration
	MaxTokenBytes    int
	// MaxSessionsPerIdentity caps one identity's sessions (0: no cap).
	MaxSessionsPerIdentity int
	// FailedAuthPerMinute and FailedAuthPerUserPerMinute are the failed
	// login budgets per source address and per user name (0: no limit).
	FailedAuthPerMinute        int
	FailedAuthPerUserPerMinute int
	// IdleTimeout ends sessions with no bytes either way for this long
	// (0: never).
	IdleTimeout time.Duration
	// DirectoryChanged, when set, runs before each batch of store events
	// is applied, so a cache of the directory drops what the events
	// change before sessions are rechecked against it.
	DirectoryChanged func()
	// MaxHandshakes, MaxHandshakesPerAddress and FirstPacketTimeout bound
	// connections that have not authenticated; see budgets.
	MaxHandshakes           int
	MaxHandshakesPerAddress int
	FirstPacketTimeout      time.Duration

	// Records is the cluster-wide session registry (connection id blocks,
	// live sessions, heartbeats); nil: ids from a per-process counter and
	// no registry. Node names this process in it and in query-audit
	// lines (config node).
	Records SessionRecords
	Node    string
	// Failures, when set, holds the failed-login budgets in the store,
	// one for all nodes (the in-memory ones still apply when it does
	// not answer).
	Failures local.FailureLog
}

// Server accepts MySQL client connections, authenticates them with tokens
// and relays them to the backend.
type Server struct {
	opt      Options
	log      *slog.Logger
	Sessions *Registry

	live     atomic.Pointer[Live] // what a reload swaps
	pool     *pool
	failIP   *limit.Failures // failed logins per source address
	failUser *limit.Failures // failed logins per user name
	open     atomic.Int64    // client connections open, handshaking ones included
	nextID   atomic.Uint32   // proxy connection ids, offset by connIDBase
	backend  atomic.Pointer[wire.Greeting]
	probeMu  sync.Mutex
	lastTry  time.Time
	conns    sync.WaitGroup
	mu       sync.Mutex
	listener net.Listener
	closing  atomic.Bool

	budgets     *budgets
	acceptFails *limit.Outage
	idMu        sync.Mutex // guards block and inBlock
	block       int64      // the current block of connection ids (0: none yet)
	inBlock     uint32     // ids of block handed out
	instance    atomic.Int64
	lockOnce    sync.Once
	lock        *local.Lockout
	syncMu      sync.Mutex // one registry write at a time; guards left
	left        bool       // LeaveRegistry ran
}

// connIDBase offsets the connection ids the proxy gives clients, so that
// `KILL n` can tell a proxy id (translated to the backend thread) from a
// backend thread id a client learned from CONNECTION_ID() (passed through).
const connIDBase = 1 << 30

// New returns a Server; call Serve to start it.
func New(opt Options) (*Server, error) {
	if opt.TLS == nil && !opt.InsecureNoTLS {
		return nil, errors.New("proxy: a TLS configuration is required for token authentication")
	}
	if opt.Verifier == nil || opt.Roles == nil || opt.Audit == nil {
		return nil, errors.New("proxy: Verifier, Roles and Audit are required")
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.MaxConnections <= 0 {
		opt.MaxConnections = 1000
	}
	if opt.HandshakeTimeout <= 0 {
		opt.HandshakeTimeout = 10 * time.Second
	}
	if opt.MaxTokenBytes <= 0 {
		opt.MaxTokenBytes = 64 << 10
	}
	if opt.Backend.DialTimeout <= 0 {
		opt.Backend.DialTimeout = 5 * time.Second
	}
	if opt.MaxHandshakes <= 0 {
		opt.MaxHandshakes = 512
	}
	if opt.MaxHandshakesPerAddress <= 0 {
		opt.MaxHandshakesPerAddress = 64
	}
	if opt.FirstPacketTimeout <= 0 || opt.FirstPacketTimeout > opt.HandshakeTimeout {
		opt.FirstPacketTimeout = min(3*time.Second, opt.HandshakeTimeout)
	}
	srv := &Server{opt: opt, log: opt.Log, Sessions: newRegistry(),
		failIP: limit.NewFailures(opt.FailedAuthPerMinute), failUser: limit.NewFailures(opt.FailedAuthPerUserPerMinute)}
	srv.budgets = newBudgets(opt.MaxHandshakes, opt.MaxHandshakesPerAddress, opt.MaxConnections)
	srv.acceptFails = limit.NewOutage(opt.Log, "accept MySQL connections", "failing", 30*time.Second)
	srv.pool = newPool(func(ctx context.Context, r recipe) (*backendConn, error) {
		return srv.dialBackend(ctx, r.resp, r.user, r.password)
	})
	srv.pool.log = opt.Log
	srv.live.Store(&Live{Verifier: opt.Verifier, Roles: opt.Roles, TLS: opt.TLS, Pools: opt.Pools})
	return srv, nil
}

// Live is the part of the configuration a reload replaces: issuers,
// roles and mappings, and the client-leg certificate. It is immutable;
// sessions already relaying keep what they were granted.
type Live struct {
	Verifier TokenVerifier
	Roles    RoleResolver
	TLS      *tls.Config // nil only with InsecureNoTLS
	// Pools sizes the warm backend connections per backend account of a
	// static role, and per person for a per_user role (under
	// PerUserPoolKey(role)); an account not listed is not pooled.
	Pools map[string]PoolConfig
}

// PerUserPoolKey is the key of Live.Pools that sizes each person's pool
// of a per_user role.
func PerUserPoolKey(role string) string { return "per_user:" + role }

// Live returns what connections start with now.
func (s *Server) Live() Live { return *s.live.Load() }

// Reload swaps in new issuers, roles and certificate for connections
// that start from now on.
func (s *Server) Reload(l Live) error {
	if l.Verifier == nil || l.Roles == nil || (l.TLS == nil && !s.opt.InsecureNoTLS) {
		return errors.New("proxy: reload needs a verifier, a resolver and (without --insecure-no-tls) a TLS configuration")
	}
	s.live.Store(&l)
	return nil
}

// Serve accepts connections on ln until ctx is done or Shutdown is called.
// It learns the backend's greeting first (failure is logged, not fatal: the
// backend may come up later).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.listener = ln
	s.mu.Unlock()
	if s.closing.Load() { // Shutdown ran before the listener was stored
		ln.Close()
		return nil
	}
	if err := s.probeBackend(ctx); err != nil {
		s.log.Warn("backend not reachable yet; clients will get an error until it is", "backend", s.opt.Backend.Address, "err", err)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	go s.sweepPool(ctx)
	spare := openSpare()
	defer func() { spare.Close() }()
	var delay time.Duration // backoff after a failed accept, as net/http's
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() || ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors, of buffer memory, or anything else
			// the kernel may get over: live sessions go on, and new
			// connections wait for the next try.
			reason := acceptReason(err)
			metrics.AcceptErrors.WithLabelValues(reason).Inc()
			s.acceptFails.Failed(err)
			if reason == "fd_limit" {
				spare = s.refuseWithSpare(ln, spare)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
			continue
		}
		if delay != 0 {
			delay = 0
			s.acceptFails.OK()
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.serveConn(ctx, c)
		}()
	}
}

// Shutdown stops accepting, then waits for open sessions to finish until
// ctx is done, and then closes the ones still open.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	if s.listener != nil {
		s.listener.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	start := time.Now()
	select {
	case <-done:
		s.pool.closeAll()
		return nil
	case <-ctx.Done():
	}
	waited := time.Since(start).Round(time.Millisecond)
	reason := fmt.Sprintf("portcullis is shutting down and this session was still open after %v (proxy.shutdown_timeout): reconnect", waited.Round(time.Second))
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) { // a second signal
		reason = "portcullis is shutting down now: reconnect"
	}
	n := s.Sessions.KillAll(reason)
	<-done
	s.pool.closeAll()
	return fmt.Errorf("%d connection(s) still open after waiting %v; closed them", n, waited)
}

// sweepPool closes pooled connections past their idle time or lifetime,
// and opens new ones up to min_idle.
func (s *Server) sweepPool(ctx context.Context) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.pool.closeAll()
			return
		case <-t.C:
			pools := s.live.Load().Pools
			cfgOf := func(key poolKey) PoolConfig {
				if cfg, ok := pools[key.User]; ok {
					return cfg
				}
				return pools[key.config] // a person's pool of a per_user role
			}
			for _, key := range s.pool.sweep(cfgOf) {
				s.pool.fill(ctx, key, cfgOf(key), s.log.Warn)
			}
		}
	}
}

// acceptReason is the bounded reason label of a failed accept.
func acceptReason(err error) string {
	switch {
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "fd_limit"
	case errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.ENOMEM):
		return "memory"
	}
	return "other"
}

// openSpare holds one file descriptor in reserve, so that at the fd limit
// the proxy can still accept a connection to tell its client why it is
// refused, instead of leaving it waiting in the listen queue.
func openSpare() *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return nil
	}
	return f
}

// refuseWithSpare gives up the spare descriptor, and with it accepts the
// connections waiting in the listen queue, answers each with an ERR
// packet and closes it; then it takes the spare back.
func (s *Server) refuseWithSpare(ln net.Listener, spare *os.File) *os.File {
	if spare == nil {
		return openSpare()
	}
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return spare
	}
	spare.Close()
	tl.SetDeadline(time.Now().Add(20 * time.Millisecond)) // only those already waiting
	defer tl.SetDeadline(time.Time{})
	for range 1000 {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		c.SetDeadline(time.Now().Add(time.Second))
		wire.WritePacket(c, 0, wire.ErrPacket(mysql.ER_CON_COUNT_ERROR,
			"portcullis: the proxy is out of file descriptors and cannot take another connection: try again later (operators: raise the open-file limit, e.g. LimitNOFILE, or lower proxy.max_connections)"))
		c.Close()
		metrics.Connections.WithLabelValues("denied", "fd_limit").Inc()
	}
	return openSpare()
}
