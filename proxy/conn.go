package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/portcullisdb/portcullis/netaddr"
	"github.com/portcullisdb/portcullis/proxy/wire"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/username"
	"github.com/portcullisdb/portcullis/metrics"
	"github.com/portcullisdb/portcullis/rbac"
)

// advertisedCaps are the capabilities the proxy can pass through a raw
// relay: everything about command and result formats. Compression is not
// offered (the proxy would have to inflate to read commands), nor are the
// client-only bits, nor query attributes (they would come before the
// statement text the guard reads).
const advertisedCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_LONG_FLAG |
	mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_NO_SCHEMA | mysql.CLIENT_ODBC | mysql.CLIENT_LOCAL_FILES |
	mysql.CLIENT_IGNORE_SPACE | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_INTERACTIVE | mysql.CLIENT_IGNORE_SIGPIPE |
	mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_RESERVED | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_MULTI_STATEMENTS |
	mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS |
	mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS | mysql.CLIENT_SESSION_TRACK |
	mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_OPTIONAL_RESULTSET_METADATA

// clientError ends a handshake with an ERR packet to the client.
type clientError struct {
	code  uint16
	msg   string
	class string // the reason label of the connections metric
}

func (e *clientError) Error() string { return e.msg }

// errClientTLS marks a failed TLS handshake on the client leg.
var errClientTLS = errors.New("TLS handshake")

func deny(format string, args ...any) error {
	return &clientError{code: mysql.ER_ACCESS_DENIED_ERROR, msg: fmt.Sprintf(format, args...), class: "auth"}
}

// clientConn is the client leg during the handshake.
type clientConn struct {
	net.Conn
	seq byte // sequence id of the last packet read or written
	adm *admission
	// firstPacket runs once, after the first packet arrives.
	firstPacket func()
}

func (c *clientConn) read(limit int) ([]byte, error) {
	p, seq, err := wire.ReadPacket(c.Conn, limit)
	c.seq = seq
	if f := c.firstPacket; f != nil && err == nil {
		c.firstPacket = nil
		f()
	}
	return p, err
}

func (c *clientConn) write(p []byte) error {
	c.seq++
	return wire.WritePacket(c.Conn, c.seq, p)
}

// serveConn runs one client connection from accept to close. Every failure
// before the relay leaves through one place that writes the ERR packet and
// the audit line.
func (s *Server) serveConn(ctx context.Context, raw net.Conn) {
	id, err := s.sessionID(ctx)
	if err != nil {
		s.log.Error("connection refused: no connection id", "client", raw.RemoteAddr().String(), "err", err)
		wire.WritePacket(raw, 0, wire.ErrPacket(mysql.ER_CON_COUNT_ERROR, "portcullis cannot reach its store to number the connection: try again"))
		raw.Close()
		return
	}
	log := s.log.With("conn_id", id, "client", raw.RemoteAddr().String())
	c := &clientConn{Conn: raw}
	defer func() { c.Close() }()
	adm, err := s.budgets.admit(raw.RemoteAddr())
	if err != nil {
		s.turnAway(raw, id, err, log)
		return
	}
	defer adm.release()
	c.adm = adm
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic in connection handler", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	s.open.Add(1)
	metrics.ClientsOpen.Inc()
	defer func() { s.open.Add(-1); metrics.ClientsOpen.Dec() }()

	ev := audit.Event{Event: "connect", SessionID: id, ClientAddr: raw.RemoteAddr().String()}
	start := time.Now()
	raw.SetDeadline(start.Add(s.opt.FirstPacketTimeout))
	c.firstPacket = func() { raw.SetDeadline(start.Add(s.opt.HandshakeTimeout)) }
	sess, backend, err := s.handshake(ctx, c, id, &ev)
	if err != nil {
		s.refuse(c, err, &ev, log)
		return
	}
	raw.SetDeadline(time.Time{})
	ev.Outcome = "granted"
	s.record(ev, log)
	metrics.Connections.WithLabelValues("granted", "").Inc()
	log.Info("session started", "user", sess.Identity, "role", sess.Role, "issuer", sess.Issuer, "backend_user", sess.BackendUser)

	sess.client, sess.backend = c.Conn, backend
	s.Sessions.add(sess)
	if !sess.endAt.IsZero() {
		t := time.AfterFunc(time.Until(sess.endAt), func() {
			sess.kill("the token expired (the role ends sessions at token expiry): reconnect with a fresh token")
		})
		defer t.Stop()
	}
	metrics.SessionsOpen.Inc()
	up, down, reason := s.relay(ctx, sess, c.Conn, backend)
	if sess.qa != nil {
		sess.qa.close()
	}
	s.Sessions.remove(sess.ID)
	if sess.returned {
		go s.pool.giveBack(sess.poolKey, s.poolConfig(s.live.Load(), sess.poolKey), sess.pooled)
	} else {
		backend.Close()
	}
	metrics.SessionsOpen.Dec()
	metrics.BytesRelayed.WithLabelValues("to_backend").Add(float64(up))
	metrics.BytesRelayed.WithLabelValues("to_client").Add(float64(down))
	sess.release() // drops a per-session backend user
	d := time.Since(sess.Started)
	log.Debug("session ended", "user", sess.Identity, "reason", reason, "duration", d)
	s.record(audit.Event{
		Event: "disconnect", Outcome: "closed", Reason: reason, SessionID: id, ClientAddr: ev.ClientAddr,
		User: ev.User, Identity: sess.Identity, Issuer: sess.Issuer, Role: sess.Role, BackendUser: sess.BackendUser,
		DurationMS: d.Milliseconds(), BytesFromClient: up, BytesToClient: down,
	}, log)
}

// refuse sends the client an ERR packet for err (when the client is still
// there to read it) and records the refusal.
func (s *Server) refuse(c *clientConn, err error, ev *audit.Event, log *slog.Logger) {
	var (
		ce    *clientError
		de    *auth.DeniedError
		be    *BackendError
		tl    *wire.TooLargeError
		pkt   []byte
		class string // the bounded reason label of the connections metric
	)
	ev.Outcome = "denied"
	switch {
	case errors.As(err, &de):
		class = "auth"
		pkt = wire.ErrPacket(mysql.ER_ACCESS_DENIED_ERROR, "portcullis: "+de.Reason)
	case errors.As(err, &ce):
		class = ce.class
		pkt = wire.ErrPacket(ce.code, "portcullis: "+ce.msg)
	case errors.As(err, &be):
		ev.Outcome, class = "error", "backend"
		pkt = wire.ErrPacket(be.Code, "portcullis: "+be.Message)
	case errors.As(err, &tl):
		class = "token_too_large"
		err = fmt.Errorf("token too large: %d bytes, the limit is %d (proxy.max_token_bytes)", tl.Size, s.opt.MaxTokenBytes)
		pkt = wire.ErrPacket(mysql.ER_ACCESS_DENIED_ERROR, "portcullis: "+err.Error())
		// Read what the client is still sending, or it sees a reset
		// instead of the error.
		io.CopyN(io.Discard, c.Conn, int64(tl.Size))
	case errors.Is(err, errClientTLS):
		// The client speaks TLS now and has the TLS alert: an ERR packet
		// in the clear would only garble its error.
		ev.Outcome, class = "error", "tls"
	case errors.Is(err, os.ErrDeadlineExceeded):
		ev.Outcome, class = "error", "handshake_timeout"
		err = errors.New("handshake timeout: the client sent nothing in time")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		ev.Outcome, class = "error", "client_gone"
		err = errors.New("client disconnected during the handshake")
	default:
		ev.Outcome, class = "error", "bad_handshake"
		pkt = wire.ErrPacket(mysql.ER_HANDSHAKE_ERROR, "portcullis: bad handshake")
		err = fmt.Errorf("bad handshake: %w", err)
	}
	metrics.Connections.WithLabelValues(ev.Outcome, class).Inc()
	ev.Reason = err.Error()
	s.record(*ev, log) // before the client hears it: a decision is on record first
	if pkt != nil {
		c.write(pkt)
	}
	log.Info("connection refused", "user", ev.User, "outcome", ev.Outcome, "reason", ev.Reason)
}

func (s *Server) record(e audit.Event, log *slog.Logger) {
	if err := s.opt.Audit.Record(e); err != nil {
		log.Error("audit write failed", "err", err)
	}
}

// handshake runs the steps from greeting to relay: greet (greeting, TLS,
// the client's response), authenticate (the token), authorize (identity
// and role), lease (the plan's backend connection), start the session.
func (s *Server) handshake(ctx context.Context, c *clientConn, id uint32, ev *audit.Event) (*Session, net.Conn, error) {
	live := s.live.Load()
	resp, err := s.greet(ctx, c, live, id)
	if err != nil {
		return nil, nil, err
	}
	name, role, _ := strings.Cut(resp.User, "/")
	ev.User, ev.RequestedRole = name, role
	token, err := s.authenticate(ctx, c, resp, name)
	if err != nil {
		return nil, nil, err
	}
	who, grant, err := s.authorize(ctx, live, name, role, token, ev)
	if err != nil {
		s.spendBudget(ctx, clientHost(c), name)
		return nil, nil, err
	}
	if max := s.opt.MaxSessionsPerIdentity; max > 0 && s.Sessions.count(who.Username) >= max {
		return nil, nil, &clientError{code: mysql.ER_TOO_MANY_USER_CONNECTIONS, class: "session_cap",
			msg: fmt.Sprintf("%s already has %d sessions open, the limit (proxy.max_sessions_per_identity): close one", who.Username, max)}
	}
	if err := c.adm.promote(); err != nil { // from the handshake budget to max_connections
		return nil, nil, err
	}
	l, err := s.lease(ctx, leaseRequest{live: live, resp: resp, id: id, who: who, grant: grant, ev: ev})
	if err != nil {
		return nil, nil, err
	}
	sess, conn, err := s.startSession(c, id, who, grant, l)
	if err == nil {
		sess.qa = s.newQueryAudit(sess, grant, resp, l.conn.greeting)
	}
	return sess, conn, err
}

// greeting is the proxy's greeting for connection id: the backend's
// version, capabilities and collation, the proxy's own salt and id.
func (s *Server) greeting(ctx context.Context, id uint32, live *Live) wire.Greeting {
	bg := s.backendGreeting(ctx)
	g := wire.Greeting{
		Version: bg.Version,
		ConnID:  id,
		Salt:    newSalt(),
		Caps:    bg.Caps&advertisedCaps | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_WITH_DB,
		ExtCaps: bg.ExtCaps,
		Charset: bg.Charset,
		Status:  bg.Status,
		// Asking for caching_sha2_password and then always for its full
		// authentication makes MySQL 8 style clients send the password
		// (the token) in the clear inside TLS, with no cleartext flag.
		Plugin: mysql.AUTH_CACHING_SHA2_PASSWORD,
	}
	if live.TLS != nil {
		g.Caps |= mysql.CLIENT_SSL
	}
	return g
}

// greet sends the greeting (mirroring the backend's), upgrades to TLS
// when the client asks, and reads the client's handshake response.
func (s *Server) greet(ctx context.Context, c *clientConn, live *Live, id uint32) (wire.HandshakeResponse, error) {
	g := s.greeting(ctx, id, live)
	c.seq = 255 // the greeting is packet 0
	if err := c.write(g.Encode()); err != nil {
		return wire.HandshakeResponse{}, err
	}
	limit := s.opt.MaxTokenBytes + 16<<10 // the token plus user name, database and attributes
	p, err := c.read(limit)
	if err != nil {
		return wire.HandshakeResponse{}, err
	}
	resp, err := wire.ParseHandshakeResponse(p)
	if err != nil {
		return resp, err
	}
	if len(p) == wire.SSLRequestLen && resp.Caps&mysql.CLIENT_SSL != 0 {
		if live.TLS == nil {
			return resp, deny("TLS is not enabled on this proxy")
		}
		tc := tls.Server(c.Conn, live.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return resp, fmt.Errorf("%w: %w", errClientTLS, err)
		}
		c.Conn = tc
		if p, err = c.read(limit); err != nil {
			return resp, err
		}
		if resp, err = wire.ParseHandshakeResponse(p); err != nil {
			return resp, err
		}
	}
	return resp, nil
}

// authenticate checks the leg and the failed-login budgets, and captures
// the token the client sends as its password.
func (s *Server) authenticate(ctx context.Context, c *clientConn, resp wire.HandshakeResponse, name string) (string, error) {
	if _, isTLS := c.Conn.(*tls.Conn); !isTLS && !s.opt.InsecureNoTLS {
		return "", deny("TLS is required to pass a token: connect with TLS (mariadb/mysql: --ssl; Go driver: tls=true or tls=skip-verify; JDBC: sslMode=REQUIRED)")
	}
	if name == "" {
		return "", deny("empty user name: connect as your identity (for example alice@example.com) or identity/role")
	}
	if err := s.checkBudget(ctx, clientHost(c), name); err != nil {
		return "", err
	}
	return s.captureToken(c, resp)
}

// startSession answers the client with the backend's OK and makes the
// session.
func (s *Server) startSession(c *clientConn, id uint32, who auth.Identity, grant rbac.Grant, l *lease) (*Session, net.Conn, error) {
	if err := c.write(l.ok); err != nil {
		l.conn.Close()
		l.release()
		return nil, nil, err
	}
	sess := &Session{
		ID: id, Identity: who.Username, Issuer: who.Issuer, Role: grant.Role, BackendUser: l.user,
		BackendThreadID: l.conn.greeting.ConnID, ClientAddr: c.RemoteAddr().String(), Started: time.Now(), LoginID: who.LoginID,
		who: who, release: l.release, pooled: l.pooled, poolKey: l.key, allowDynamicSQL: grant.AllowDynamicSQL,
	}
	if grant.EndAtExpiry {
		sess.endAt = who.ExpiresAt
	}
	return sess, l.conn.Conn, nil
}

// captureToken gets the password the client means to send, whatever auth
// plugin it started with.
func (s *Server) captureToken(c *clientConn, resp wire.HandshakeResponse) (string, error) {
	limit := s.opt.MaxTokenBytes + 1
	_, overTLS := c.Conn.(*tls.Conn)
	switch {
	case resp.Plugin == mysql.AUTH_CLEAR_PASSWORD:
		return tokenString(resp.AuthData, s.opt.MaxTokenBytes)
	case resp.Plugin == mysql.AUTH_CACHING_SHA2_PASSWORD && len(resp.AuthData) == 0:
		// caching_sha2_password sends no scramble for an empty password,
		// and its clients then read the next packet as the final OK or
		// ERR: asking for full authentication would leave libmariadb
		// with a bare "can't connect".
		return tokenString(nil, s.opt.MaxTokenBytes)
	case resp.Plugin == mysql.AUTH_CACHING_SHA2_PASSWORD && overTLS:
		// "perform full authentication": the client answers with the
		// password in the clear, which TLS protects.
		if err := c.write([]byte{mysql.MORE_DATE_HEADER, mysql.CACHE_SHA2_FULL_AUTH}); err != nil {
			return "", err
		}
	default:
		if resp.Caps&mysql.CLIENT_PLUGIN_AUTH == 0 {
			return "", deny("client does not support pluggable authentication, which token auth needs")
		}
		// Any other plugin (mysql_native_password, client_ed25519, ...)
		// cannot carry a token, nor can caching_sha2_password without TLS
		// (the client would ask for an RSA key; only --insecure-no-tls
		// gets here without TLS): ask for mysql_clear_password. Empty
		// auth data does not mean an empty password: libmariadb sends
		// none when its plugin differs from the server's.
		if err := c.write(append([]byte{mysql.EOF_HEADER}, mysql.AUTH_CLEAR_PASSWORD+"\x00"...)); err != nil {
			return "", err
		}
	}
	p, err := c.read(limit)
	if err != nil {
		return "", err
	}
	if len(p) == 1 && p[0] == 2 { // caching_sha2 public key request: only without TLS
		return "", deny("the client asked for an RSA key instead of sending the token: connect with TLS")
	}
	return tokenString(p, s.opt.MaxTokenBytes)
}

func tokenString(b []byte, limit int) (string, error) {
	b = wire.TrimNUL(b)
	if len(b) == 0 {
		return "", deny("empty password: pass a token as the password")
	}
	if len(b) > limit {
		return "", deny("token too large: %d bytes, the limit is %d (proxy.max_token_bytes)", len(b), limit)
	}
	return string(b), nil
}

// authorize verifies the token, checks the user name matches it and picks
// the role. It fills the audit event as it learns.
func (s *Server) authorize(ctx context.Context, live *Live, name, role, token string, ev *audit.Event) (auth.Identity, rbac.Grant, error) {
	defer metrics.Since(metrics.AuthSeconds, time.Now())
	if _, err := username.Normalize(name); err != nil {
		return auth.Identity{}, rbac.Grant{}, deny("MySQL %v", err)
	}
	id, err := live.Verifier.Verify(ctx, token)
	if err != nil {
		return id, rbac.Grant{}, err
	}
	ev.Identity, ev.Issuer, ev.Subject = id.Username, id.Issuer, id.Subject
	if !username.Equal(id.Username, name) {
		return id, rbac.Grant{}, deny("user name %q does not match the token, which is for %q", name, id.Username)
	}
	grant, err := live.Roles.Resolve(ctx, id, role)
	if err != nil {
		return id, grant, err
	}
	ev.Role, ev.BackendUser = grant.Role, grant.BackendUser
	return id, grant, nil
}

// newSalt returns 20 random bytes free of NUL, which ends the salt on the wire.
func newSalt() []byte {
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = b[i]&0x7f | 1
	}
	return b
}

// clientHost is the client's address without the port: the key of the
// failed-login budget.
func clientHost(c net.Conn) string {
	return netaddr.Host(c.RemoteAddr().String())
}
