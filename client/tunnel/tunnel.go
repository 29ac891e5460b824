package tunnel

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/portcullisdb/portcullis/netaddr"
	"github.com/portcullisdb/portcullis/proxy/wire"
)

// Options configure a tunnel.
type Options struct {
	Listen    string // a loopback host:port, e.g. 127.0.0.1:3307
	ProxyAddr string // the portcullis proxy's host:port
	TLS       *tls.Config
	// Token returns the user name and a valid token for one new
	// connection. Its errors reach the tool as the connection's error,
	// so they must never hold a token.
	Token func(ctx context.Context) (username, token string, err error)
	// Role is the role to connect with; a tool's user name "x/ROLE"
	// picks another. "" is the default role.
	Role             string
	HandshakeTimeout time.Duration // default 30s
	Log              *slog.Logger
}

// Tunnel is a started listener.
type Tunnel struct {
	opt  Options
	ln   net.Listener
	next atomic.Uint64
	open atomic.Int64
	wg   sync.WaitGroup
}

// Listen checks the options and listens. The address must be loopback:
// the tunnel asks no password, so only this machine may reach it.
func Listen(o Options) (*Tunnel, error) {
	host, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q is not host:port: write it like 127.0.0.1:3307", o.Listen)
	}
	if !netaddr.IsLoopback(host) {
		return nil, fmt.Errorf("--listen %q is not a loopback address: the tunnel asks no password, so it listens on 127.0.0.1 (or [::1]) only", o.Listen)
	}
	if o.Token == nil || o.TLS == nil || o.ProxyAddr == "" {
		return nil, errors.New("tunnel: proxy address, TLS config and token source are required")
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	return &Tunnel{opt: o, ln: ln}, nil
}

// Addr is the address the tunnel listens on.
func (t *Tunnel) Addr() net.Addr { return t.ln.Addr() }

// Serve accepts connections until ctx ends, then closes them all.
func (t *Tunnel) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { t.ln.Close() })
	defer stop()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				t.wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return err
		}
		t.wg.Add(1)
		go t.handle(ctx, c)
	}
}

// handle runs one tool connection.
func (t *Tunnel) handle(ctx context.Context, local net.Conn) {
	defer t.wg.Done()
	id := t.next.Add(1)
	log := t.opt.Log.With("conn_id", id, "client", local.RemoteAddr().String())
	defer local.Close()
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic in tunnel connection", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	if !netaddr.IsLoopbackAddr(local.RemoteAddr()) {
		log.Warn("refused a connection from outside this machine")
		return
	}
	t.open.Add(1)
	defer t.open.Add(-1)
	local.SetDeadline(time.Now().Add(t.opt.HandshakeTimeout))
	remote, user, err := t.connect(ctx, local)
	if err != nil {
		log.Info("connection refused", "reason", err)
		return
	}
	defer remote.Close()
	local.SetDeadline(time.Time{})
	remote.SetDeadline(time.Time{})
	log.Info("connected through portcullis", "user", user)
	reason := relay(ctx, local, remote)
	log.Debug("connection closed", "reason", reason)
}

// connect greets the tool, accepts it, and logs in to the proxy with a
// token; on failure the tool gets an ERR packet saying why.
func (t *Tunnel) connect(ctx context.Context, local net.Conn) (net.Conn, string, error) {
	fail := func(seq byte, code uint16, msg string) error {
		wire.WritePacket(local, seq, wire.ErrPacket(code, "portcullis tunnel: "+msg))
		return errors.New(msg)
	}
	username, token, err := t.opt.Token(ctx)
	if err != nil {
		return nil, "", fail(0, mysql.ER_ACCESS_DENIED_ERROR, err.Error())
	}
	d := net.Dialer{Timeout: t.opt.HandshakeTimeout}
	raw, err := d.DialContext(ctx, "tcp", t.opt.ProxyAddr)
	if err != nil {
		return nil, "", fail(0, 2003, fmt.Sprintf("cannot reach the portcullis proxy at %s: %v", t.opt.ProxyAddr, err))
	}
	ok := false
	defer func() {
		if !ok {
			raw.Close()
		}
	}()
	raw.SetDeadline(time.Now().Add(t.opt.HandshakeTimeout))
	gp, _, err := wire.ReadPacket(raw, maxHandshakePacket)
	if err != nil {
		return nil, "", fail(0, 2013, fmt.Sprintf("the proxy at %s sent no greeting: %v", t.opt.ProxyAddr, err))
	}
	g, err := wire.ParseGreeting(gp)
	if err != nil {
		return nil, "", fail(0, mysql.ER_HANDSHAKE_ERROR, "the proxy's greeting: "+err.Error())
	}
	if g.Caps&mysql.CLIENT_SSL == 0 {
		return nil, "", fail(0, mysql.ER_HANDSHAKE_ERROR, "the proxy does not offer TLS, and tokens travel only over TLS")
	}
	seq, resp, err := t.acceptTool(local, g)
	if err != nil {
		return nil, "", err
	}
	role := t.opt.Role
	if _, r, found := strings.Cut(resp.User, "/"); found && r != "" {
		role = r
	}
	user := username
	if role != "" {
		user += "/" + role
	}
	up := resp
	up.Caps = resp.Caps&g.Caps | mysql.CLIENT_SSL | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION |
		mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
	if err := wire.WritePacket(raw, 1, up.Encode(true)); err != nil {
		return nil, "", fail(seq+1, 2013, "lost the proxy: "+err.Error())
	}
	tc := tls.Client(raw, t.opt.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, "", fail(seq+1, 2026, fmt.Sprintf("TLS to the proxy at %s failed: %v", t.opt.ProxyAddr, err))
	}
	up.User, up.AuthData, up.Plugin = user, []byte(token), mysql.AUTH_CLEAR_PASSWORD
	if up.Caps&mysql.CLIENT_CONNECT_ATTRS != 0 {
		up.Attrs = wire.AppendAttr(resp.Attrs, "portcullis_tunnel", "1")
	}
	if err := wire.WritePacket(tc, 2, up.Encode(false)); err != nil {
		return nil, "", fail(seq+1, 2013, "lost the proxy: "+err.Error())
	}
	reply, _, err := wire.ReadPacket(tc, maxHandshakePacket)
	if err != nil || len(reply) == 0 {
		return nil, "", fail(seq+1, 2013, fmt.Sprintf("the proxy closed the connection during login: %v", err))
	}
	switch reply[0] {
	case mysql.OK_HEADER:
		if err := wire.WritePacket(local, seq+1, reply); err != nil {
			return nil, "", err
		}
		ok = true
		return tc, user, nil
	case mysql.ERR_HEADER:
		wire.WritePacket(local, seq+1, reply) // the proxy's own words: role refused, token expired...
		return nil, "", errors.New("the proxy refused: " + replyMessage(reply))
	}
	return nil, "", fail(seq+1, mysql.ER_HANDSHAKE_ERROR, "the proxy asked for another authentication step, which the tunnel does not support")
}

// acceptTool sends the tool a greeting that mirrors the proxy's (no TLS,
// mysql_native_password) and accepts whatever password it sends. It
// returns the sequence id of the tool's last packet and its response.
func (t *Tunnel) acceptTool(local net.Conn, g wire.Greeting) (byte, wire.HandshakeResponse, error) {
	salt := make([]byte, 20)
	rand.Read(salt)
	for i := range salt {
		salt[i] = salt[i]&0x7f | 1 // no NUL, which would end the salt
	}
	lg := g
	lg.Caps &^= mysql.CLIENT_SSL
	lg.Salt, lg.Plugin = salt, mysql.AUTH_NATIVE_PASSWORD
	if err := wire.WritePacket(local, 0, lg.Encode()); err != nil {
		return 0, wire.HandshakeResponse{}, err
	}
	p, seq, err := wire.ReadPacket(local, maxHandshakePacket)
	if err != nil {
		return 0, wire.HandshakeResponse{}, err
	}
	resp, err := wire.ParseHandshakeResponse(p)
	if err != nil {
		wire.WritePacket(local, seq+1, wire.ErrPacket(mysql.ER_HANDSHAKE_ERROR, "portcullis tunnel: "+err.Error()))
		return 0, wire.HandshakeResponse{}, err
	}
	if len(p) == wire.SSLRequestLen {
		wire.WritePacket(local, seq+1, wire.ErrPacket(mysql.ER_HANDSHAKE_ERROR,
			"portcullis tunnel: this is plain TCP on the loopback interface (the tunnel itself talks TLS to the proxy): turn SSL/TLS off in the tool (mariadb: --skip-ssl)"))
		return 0, wire.HandshakeResponse{}, errors.New("the tool asked for TLS")
	}
	if resp.Caps&mysql.CLIENT_PLUGIN_AUTH != 0 && resp.Plugin != "" && resp.Plugin != mysql.AUTH_NATIVE_PASSWORD {
		// Bring the tool to the plugin the greeting named; its answer is
		// read and ignored like the password itself.
		seq++
		sw := append(append([]byte{mysql.EOF_HEADER}, mysql.AUTH_NATIVE_PASSWORD+"\x00"...), salt...)
		if err := wire.WritePacket(local, seq, append(sw, 0)); err != nil {
			return 0, wire.HandshakeResponse{}, err
		}
		if _, seq, err = wire.ReadPacket(local, maxHandshakePacket); err != nil {
			return 0, wire.HandshakeResponse{}, err
		}
	}
	return seq, resp, nil
}

// relay copies both ways until either side ends or ctx does, then closes
// both; it returns why it stopped.
func relay(ctx context.Context, local, remote net.Conn) string {
	done := make(chan string, 2)
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			local.Close()
			remote.Close()
		})
	}
	copyDir := func(dst, src net.Conn, who string) {
		_, err := io.Copy(dst, src)
		if err == nil {
			err = io.EOF
		}
		done <- who + ": " + err.Error()
		closeBoth()
	}
	go copyDir(remote, local, "tool")
	go copyDir(local, remote, "proxy")
	select {
	case reason := <-done:
		<-done
		return reason
	case <-ctx.Done():
		closeBoth()
		<-done
		<-done
		return "tunnel stopped"
	}
}

// maxHandshakePacket bounds handshake packets from either side.
const maxHandshakePacket = 1 << 20

// replyMessage is the message of an ERR packet.
func replyMessage(p []byte) string {
	_, msg := wire.ParseErrPacket(p)
	return msg
}
