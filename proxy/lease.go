package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/metrics"
	"github.com/portcullisdb/portcullis/proxy/wire"
	"github.com/portcullisdb/portcullis/rbac"
)

// lease is the backend side of one session: an authenticated backend
// connection, the OK to answer the client with, and how the session gives
// it up. Each backend plan makes leases its own way (leaseStatic,
// leaseEphemeral, leasePerUser); the handshake and the relay only see a
// lease.
type lease struct {
	user    string       // the backend account the connection is logged in as
	conn    *backendConn // the connection
	ok      []byte       // the OK packet the client gets: the login's or the pool reset's
	pooled  *pooled      // set when the connection may go back to the pool
	key     poolKey      // its pool, when pooled
	release func()       // ends what the plan made for the session (an ephemeral user); never nil
}

// leaseRequest is what a plan needs to lease a backend connection.
type leaseRequest struct {
	live  *Live
	resp  wire.HandshakeResponse // the client's own handshake response
	id    uint32                 // the session's proxy id
	who   auth.Identity
	grant rbac.Grant
	ev    *audit.Event
}

// lease picks the plan's way of getting a backend connection.
func (s *Server) lease(ctx context.Context, r leaseRequest) (*lease, error) {
	switch r.grant.Plan {
	case config.PlanEphemeral:
		return s.leaseEphemeral(ctx, r)
	case config.PlanPerUser:
		return s.leasePerUser(ctx, r)
	default:
		return s.leaseStatic(ctx, r)
	}
}

// leaseStatic logs in as the role's account, from its pool when the role
// has one.
func (s *Server) leaseStatic(ctx context.Context, r leaseRequest) (*lease, error) {
	return s.leaseAccount(ctx, r, poolKey{User: r.grant.BackendUser}, r.grant.BackendPassword, func() {})
}

// leasePerUser logs in as the person's own account, from the person's
// pool; a refused login (a first connect, a new password period, an
// account locked earlier) has the account set up, and is tried again.
func (s *Server) leasePerUser(ctx context.Context, r leaseRequest) (*lease, error) {
	pa := s.opt.PersonalAccounts
	if pa == nil {
		return nil, deny("role %s uses per-person accounts, which this proxy is not set up for", r.grant.Role)
	}
	user, password, err := pa.PersonalCredentials(r.who.Username, r.grant)
	if err != nil {
		return nil, err
	}
	r.ev.BackendUser = user
	key := poolKey{User: user, config: PerUserPoolKey(r.grant.Role)}
	l, err := s.leaseAccount(ctx, r, key, password, func() {})
	var be *BackendError
	if err == nil || !errors.As(err, &be) || (be.Code != mysql.ER_ACCESS_DENIED_ERROR && be.Code != codeAccountLocked) {
		return l, err
	}
	if err := pa.EnsurePersonal(ctx, r.who.Username, r.grant); err != nil {
		return nil, err
	}
	return s.leaseAccount(ctx, r, key, password, func() {})
}

// codeAccountLocked is MariaDB's ER_ACCOUNT_HAS_BEEN_LOCKED.
const codeAccountLocked = 4151

// poolConfig sizes key's pool: the account's own entry (static), else the
// entry it was made under (a person's pool of a per_user role).
func (s *Server) poolConfig(live *Live, key poolKey) PoolConfig {
	if cfg, ok := live.Pools[key.User]; ok {
		return cfg
	}
	return live.Pools[key.config]
}

// leaseEphemeral creates a backend user for this one session and logs in
// as it; the lease's release drops it. Never pooled.
func (s *Server) leaseEphemeral(ctx context.Context, r leaseRequest) (*lease, error) {
	if s.opt.SessionUsers == nil {
		return nil, deny("role %s uses per-session users, which this proxy is not set up for", r.grant.Role)
	}
	user, password, release, err := s.opt.SessionUsers.Acquire(ctx, r.who.Username, r.id, r.grant)
	if err != nil {
		return nil, err
	}
	r.ev.BackendUser = user
	return s.leaseAccount(ctx, r, poolKey{User: user}, password, release)
}

// leaseAccount gets a connection logged in as user: a pooled one when the
// account has a pool (and the plan allows it), else a new login.
func (s *Server) leaseAccount(ctx context.Context, r leaseRequest, key poolKey, password string, release func()) (*lease, error) {
	resp, user := r.resp, key.User
	poolCfg := s.poolConfig(r.live, key)
	poolable := poolCfg.MaxIdle > 0 && r.grant.Plan != config.PlanEphemeral
	key.Charset = resp.Charset
	if poolable {
		br := backendResponse(resp, s.backendGreeting(ctx), user)
		key.Caps, key.ExtCaps = br.Caps, br.ExtCaps
		pc, ok, err := s.pool.get(key, poolCfg, resp.DB)
		if pc != nil {
			s.pool.fill(ctx, key, poolCfg, s.log.Warn)
			return &lease{user: user, conn: pc.backendConn, ok: ok, pooled: pc, key: key, release: release}, nil
		}
		if errors.Is(err, errDBRefused) { // the backend's ERR for the database
			release()
			code, msg := wire.ParseErrPacket(ok)
			return nil, &BackendError{Code: code, Message: "backend: " + msg}
		}
		// Pooled connections outlive the session: only the proxy's own
		// attribute, not this identity's.
		resp.Attrs = wire.AppendAttr(resp.Attrs, "_proxy", "portcullis")
	} else {
		resp.Attrs = wire.AppendAttr(wire.AppendAttr(wire.AppendAttr(resp.Attrs, "_proxy", "portcullis"), "portcullis_identity", r.who.Username), "portcullis_session", fmt.Sprint(r.id))
	}
	dialStart := time.Now()
	bc, err := s.dialBackend(ctx, resp, user, password)
	metrics.Since(metrics.BackendDialSeconds, dialStart)
	if err != nil {
		release()
		return nil, err
	}
	l := &lease{user: user, conn: bc, ok: bc.ok, key: key, release: release}
	if poolable {
		l.pooled = &pooled{backendConn: bc, created: time.Now(), db: resp.DB}
		s.pool.remember(key, recipe{resp: resp, user: user, password: password})
		s.pool.fill(ctx, key, poolCfg, s.log.Warn)
	}
	return l, nil
}
