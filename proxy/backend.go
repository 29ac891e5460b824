package proxy

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/portcullisdb/portcullis/proxy/wire"
)

// Backend says how to reach the MySQL-protocol server behind the proxy.
type Backend struct {
	Address     string
	DialTimeout time.Duration
	// TLS, when set, is used for the backend leg. With TLSOptional the
	// proxy falls back to plain TCP if the backend offers no TLS
	// (backend.tls: preferred); otherwise a backend without TLS is an error.
	TLS         *tls.Config
	TLSOptional bool
	// PublicKey, when set, is the backend's RSA key for
	// caching_sha2_password and sha256_password without TLS
	// (backend.public_key_file): the password is encrypted to it at once
	// instead of asking the backend for its key, which an attacker on
	// the path could replace.
	PublicKey *rsa.PublicKey
}

// BackendError is a failure to reach or log in to the backend. Code is the
// MySQL error code the client receives.
type BackendError struct {
	Code    uint16
	Message string
}

func (e *BackendError) Error() string { return e.Message }

// backendConn is an authenticated backend connection, ready to relay.
type backendConn struct {
	net.Conn
	greeting wire.Greeting
	ok       []byte // the OK to forward to the client: the login's, or the last pool reset's
}

// probeBackend learns the backend's greeting, which the proxy mirrors to
// clients, by opening a connection and closing it after the greeting.
func (s *Server) probeBackend(ctx context.Context) error {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	s.lastTry = time.Now()
	c, err := s.dialTCP(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(s.opt.Backend.DialTimeout))
	g, err := readGreeting(c)
	if err != nil {
		return err
	}
	s.backend.Store(&g)
	return nil
}

// ProbeBackend checks the backend answers with a greeting now (for
// readiness), refreshing the greeting the proxy mirrors.
func (s *Server) ProbeBackend(ctx context.Context) error { return s.probeBackend(ctx) }

// backendGreeting is the greeting to mirror: the last one seen, or, when
// the backend has never answered, a neutral stand-in (the dial will then
// fail with a clear error anyway). A missing greeting is re-probed at most
// once a second.
func (s *Server) backendGreeting(ctx context.Context) wire.Greeting {
	if g := s.backend.Load(); g != nil {
		return *g
	}
	s.probeMu.Lock()
	recent := time.Since(s.lastTry) < time.Second
	s.probeMu.Unlock()
	if !recent {
		_ = s.probeBackend(ctx)
		if g := s.backend.Load(); g != nil {
			return *g
		}
	}
	return wire.Greeting{
		Version: "8.0.0-portcullis",
		Caps:    mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_LONG_FLAG | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_WITH_DB,
		Charset: 45, // utf8mb4_general_ci
		Status:  mysql.SERVER_STATUS_AUTOCOMMIT,
	}
}

func (s *Server) dialTCP(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: s.opt.Backend.DialTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", s.opt.Backend.Address)
	if err != nil {
		return nil, &BackendError{Code: codeBackendUnreachable, Message: fmt.Sprintf("cannot reach backend %s: %v", s.opt.Backend.Address, unwrapNetErr(err))}
	}
	return c, nil
}

func readGreeting(c net.Conn) (wire.Greeting, error) {
	p, _, err := wire.ReadPacket(c, 1024)
	if err != nil {
		return wire.Greeting{}, fmt.Errorf("read backend greeting: %w", err)
	}
	g, err := wire.ParseGreeting(p)
	if err != nil {
		return g, fmt.Errorf("backend greeting: %w", err)
	}
	return g, nil
}

// dialBackend opens a backend connection and logs in as user with
// password, sending the client's own handshake choices (capabilities,
// collation, max packet, database, attributes) so both legs agree.
func (s *Server) dialBackend(ctx context.Context, client wire.HandshakeResponse, user, password string) (*backendConn, error) {
	raw, err := s.dialTCP(ctx)
	if err != nil {
		return nil, err
	}
	bc, err := s.loginBackend(raw, client, user, password)
	if err != nil {
		raw.Close()
		var be *BackendError
		if errors.As(err, &be) {
			return nil, err
		}
		return nil, &BackendError{Code: codeBackendUnreachable, Message: fmt.Sprintf("backend %s: %v", s.opt.Backend.Address, unwrapNetErr(err))}
	}
	return bc, nil
}

func (s *Server) loginBackend(raw net.Conn, client wire.HandshakeResponse, user, password string) (*backendConn, error) {
	raw.SetDeadline(time.Now().Add(s.opt.Backend.DialTimeout))
	g, err := readGreeting(raw)
	if err != nil {
		var me *mysql.MyError
		if errors.As(err, &me) { // e.g. "Too many connections", "Host is blocked"
			return nil, &BackendError{Code: me.Code, Message: fmt.Sprintf("backend %s: %s", s.opt.Backend.Address, me.Message)}
		}
		return nil, err
	}
	s.backend.Store(&g)

	resp := backendResponse(client, g, user)
	conn := raw
	seq := byte(1)
	useTLS := s.opt.Backend.TLS != nil && (g.Caps&mysql.CLIENT_SSL != 0 || !s.opt.Backend.TLSOptional)
	if useTLS {
		if g.Caps&mysql.CLIENT_SSL == 0 {
			return nil, &BackendError{Code: codeBackendTLS, Message: fmt.Sprintf("backend %s does not offer TLS, but backend.tls requires it", s.opt.Backend.Address)}
		}
		resp.Caps |= mysql.CLIENT_SSL
		if err := wire.WritePacket(raw, seq, resp.Encode(true)); err != nil {
			return nil, err
		}
		seq++
		tc := tls.Client(raw, s.opt.Backend.TLS)
		if err := tc.Handshake(); err != nil {
			return nil, &BackendError{Code: codeBackendTLS, Message: fmt.Sprintf("TLS to backend %s: %v", s.opt.Backend.Address, err)}
		}
		conn = tc
	}
	plugin := g.Plugin
	if plugin == "" {
		plugin = mysql.AUTH_NATIVE_PASSWORD
	}
	resp.Plugin = plugin
	pub := s.opt.Backend.PublicKey
	if resp.AuthData, err = scramble(plugin, g.Salt, password, useTLS, pub); err != nil {
		return nil, err
	}
	if err := wire.WritePacket(conn, seq, resp.Encode(false)); err != nil {
		return nil, err
	}
	salt := g.Salt
	switched := false
	for {
		p, n, err := wire.ReadPacket(conn, 64<<10)
		if err != nil {
			return nil, fmt.Errorf("read backend auth result: %w", err)
		}
		seq = n + 1
		if len(p) == 0 {
			return nil, wire.ErrMalformed
		}
		switch p[0] {
		case mysql.OK_HEADER:
			conn.SetDeadline(time.Time{})
			return &backendConn{Conn: conn, greeting: g, ok: p}, nil
		case mysql.ERR_HEADER:
			code, msg := wire.ParseErrPacket(p)
			return nil, &BackendError{Code: code, Message: fmt.Sprintf("backend refused the role's account %q: %s", user, msg)}
		case mysql.EOF_HEADER: // auth switch request
			if switched {
				return nil, errors.New("backend asked to switch auth plugin twice")
			}
			switched = true
			name, next, ok := wire.CString(p, 1)
			if !ok {
				return nil, wire.ErrMalformed
			}
			plugin, salt = string(name), wire.TrimNUL(p[next:])
			data, err := scramble(plugin, salt, password, useTLS, pub)
			if err != nil {
				return nil, err
			}
			if err := wire.WritePacket(conn, seq, data); err != nil {
				return nil, err
			}
		case mysql.MORE_DATE_HEADER: // caching_sha2_password, or sha256_password's key
			if plugin == mysql.AUTH_SHA256_PASSWORD {
				if err := sendEncrypted(conn, seq, p[1:], salt, password); err != nil {
					return nil, err
				}
				continue
			}
			if plugin != mysql.AUTH_CACHING_SHA2_PASSWORD || len(p) < 2 {
				return nil, wire.ErrMalformed
			}
			switch p[1] {
			case mysql.CACHE_SHA2_FAST_AUTH:
				continue // the OK follows
			case mysql.CACHE_SHA2_FULL_AUTH:
				if err := fullAuthSHA2(conn, seq, salt, password, useTLS, pub); err != nil {
					return nil, err
				}
			default:
				return nil, wire.ErrMalformed
			}
		default:
			return nil, wire.ErrMalformed
		}
	}
}

// fullAuthSHA2 sends the password for caching_sha2_password's full
// authentication: in the clear inside TLS, else RSA-encrypted with the
// configured key or, without one, the key the backend sends when asked.
func fullAuthSHA2(conn net.Conn, seq byte, salt []byte, password string, overTLS bool, pub *rsa.PublicKey) error {
	if overTLS {
		return wire.WritePacket(conn, seq, append([]byte(password), 0))
	}
	if pub != nil {
		enc, err := mysql.EncryptPassword(password, salt, pub)
		if err != nil {
			return err
		}
		return wire.WritePacket(conn, seq, enc)
	}
	if err := wire.WritePacket(conn, seq, []byte{2}); err != nil { // request the public key
		return err
	}
	p, n, err := wire.ReadPacket(conn, 16<<10)
	if err != nil {
		return err
	}
	if len(p) < 2 || p[0] != mysql.MORE_DATE_HEADER {
		return errors.New("backend sent no public key for caching_sha2_password")
	}
	return sendEncrypted(conn, n+1, p[1:], salt, password)
}

// sendEncrypted sends the password encrypted to the backend's PEM key.
func sendEncrypted(conn net.Conn, seq byte, keyPEM, salt []byte, password string) error {
	pub, err := ParseRSAPublicKey(keyPEM)
	if err != nil {
		return fmt.Errorf("backend public key: %w", err)
	}
	enc, err := mysql.EncryptPassword(password, salt, pub)
	if err != nil {
		return err
	}
	return wire.WritePacket(conn, seq, enc)
}

// ParseRSAPublicKey reads a PEM RSA public key as MySQL writes it
// (PKIX "PUBLIC KEY", or PKCS #1 "RSA PUBLIC KEY").
func ParseRSAPublicKey(b []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	if block.Type == "RSA PUBLIC KEY" {
		return x509.ParsePKCS1PublicKey(block.Bytes)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	return pub, nil
}

// scramble computes the auth response for a backend plugin; pub is the
// configured RSA key of the backend, if any.
func scramble(plugin string, salt []byte, password string, overTLS bool, pub *rsa.PublicKey) ([]byte, error) {
	if len(salt) > 20 && plugin != mysql.AUTH_MARIADB_ED25519 {
		salt = salt[:20]
	}
	switch plugin {
	case mysql.AUTH_NATIVE_PASSWORD:
		return mysql.CalcNativePassword(salt, []byte(password)), nil
	case mysql.AUTH_CACHING_SHA2_PASSWORD:
		return mysql.CalcCachingSha2Password(salt, []byte(password)), nil
	case mysql.AUTH_MARIADB_ED25519:
		return mysql.CalcEd25519Password(salt, password)
	case mysql.AUTH_SHA256_PASSWORD:
		switch {
		case overTLS:
			return append([]byte(password), 0), nil
		case pub != nil:
			return mysql.EncryptPassword(password, salt, pub)
		}
		return []byte{1}, nil // ask for the key; the backend sends it next
	case mysql.AUTH_CLEAR_PASSWORD:
		if !overTLS {
			return nil, &BackendError{Code: mysql.ER_ACCESS_DENIED_ERROR, Message: "backend asks for the password in the clear without TLS: set backend.tls"}
		}
		return append([]byte(password), 0), nil
	}
	return nil, &BackendError{Code: mysql.ER_ACCESS_DENIED_ERROR, Message: fmt.Sprintf("backend auth plugin %q is not supported", plugin)}
}

// unwrapNetErr drops the "dial tcp 1.2.3.4:3306:" prefix the address
// already names.
func unwrapNetErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// backendResponse is the handshake response the backend gets: the
// client's own, with the role's user and only the capabilities both the
// client and the backend have (TLS and compression are per leg).
func backendResponse(client wire.HandshakeResponse, g wire.Greeting, user string) wire.HandshakeResponse {
	resp := client
	resp.User = user
	resp.Caps = client.Caps&g.Caps | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH
	resp.Caps &^= mysql.CLIENT_SSL | mysql.CLIENT_COMPRESS | mysql.CLIENT_ZSTD_COMPRESSION_ALGORITHM
	resp.ExtCaps = client.ExtCaps & g.ExtCaps
	if resp.DB != "" {
		resp.Caps |= mysql.CLIENT_CONNECT_WITH_DB
	}
	return resp
}
