package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// mysql8 is a stand-in for a MySQL 8 backend, where no MySQL 8 server
// package is available: go-mysql's server package, which implements
// caching_sha2_password (fast auth from its cache, full auth in the clear
// over TLS or RSA-encrypted without, the public key sent on request) and
// sha256_password on the server side, with the role's account and an
// answer to SELECT CURRENT_USER(). It records what it sends on plain
// connections, so a test can tell which auth path a login took.
type mysql8 struct {
	t      *testing.T
	addr   string
	keyPEM []byte // its RSA public key, as MySQL's public_key.pem
	mu     sync.Mutex
	logins [][]byte // per connection that got past the greeting, every byte the server wrote
	srv    *server.Server
	fresh  func() *server.Server // a server with an empty password cache
}

// settle waits for the harness's background logins (the account check,
// which logs in with go-sql-driver) to end, then empties the stand-in's
// password cache, so that the proxy's first login is the first it sees.
func (b *mysql8) settle(h *harness) {
	b.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !h.svc.AccountsChecked(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.t.Fatal("the account check did not finish in 20s")
		}
	}
	b.mu.Lock()
	b.srv = b.fresh()
	b.mu.Unlock()
}

func startMySQL8(t *testing.T, plugin string, withTLS bool, password string) *mysql8 {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var tlsCfg *tls.Config
	if withTLS {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mysql8"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	}
	fresh := func() *server.Server {
		return server.NewServer("8.4.3", gomysql.DEFAULT_COLLATION_ID, plugin, key, tlsCfg)
	}
	accounts := server.NewInMemoryAuthenticationHandler(plugin)
	if err := accounts.AddUser(readerUser, password, plugin); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	b := &mysql8{t: t, addr: ln.Addr().String(), keyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), srv: fresh(), fresh: fresh}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			srv := b.srv
			b.mu.Unlock()
			go b.serve(srv, accounts, c)
		}
	}()
	return b
}

func (b *mysql8) serve(srv *server.Server, accounts server.AuthenticationHandler, c net.Conn) {
	rec := &recordingConn{Conn: c}
	defer c.Close()
	conn, err := srv.NewCustomizedConn(rec, accounts, currentUser{})
	rec.mu.Lock()
	login := bytes.Clone(rec.out.Bytes())
	loggedIn := rec.wrote > 1 // the probe's connections end after the greeting
	// Only the proxy's own logins count: not the account check's or the
	// provisioner's, which log in with go-sql-driver in the background.
	fromProxy := bytes.Contains(rec.in.Bytes(), []byte("\x06_proxy\x0aportcullis"))
	rec.mu.Unlock()
	if loggedIn && fromProxy {
		b.mu.Lock()
		b.logins = append(b.logins, login)
		b.mu.Unlock()
	}
	if err != nil {
		return
	}
	for !conn.Closed() {
		if err := conn.HandleCommand(); err != nil {
			return
		}
	}
}

// lastLogin is the server's side of the latest login: its packets'
// payloads, as written before any TLS.
func (b *mysql8) lastLogin() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.logins) == 0 {
		b.t.Fatal("no login reached the MySQL 8 stand-in")
	}
	var out [][]byte
	for p := b.logins[len(b.logins)-1]; len(p) >= 4; {
		n := int(p[0]) | int(p[1])<<8 | int(p[2])<<16
		if len(p) < 4+n {
			break
		}
		out = append(out, p[4:4+n])
		p = p[4+n:]
	}
	return out
}

// sent reports whether the latest login had a packet starting with prefix.
func (b *mysql8) sent(prefix string) bool {
	for _, p := range b.lastLogin() {
		if bytes.HasPrefix(p, []byte(prefix)) {
			return true
		}
	}
	return false
}

// recordingConn keeps what the server writes (until the login ends).
type recordingConn struct {
	net.Conn
	mu    sync.Mutex
	out   bytes.Buffer
	in    bytes.Buffer // what the client sent, its first 64 KiB
	wrote int
}

func (r *recordingConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	if r.in.Len() < 64<<10 {
		r.in.Write(p[:n])
	}
	r.mu.Unlock()
	return n, err
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(p)
	r.wrote++
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// currentUser answers SELECT CURRENT_USER() as the role's account.
type currentUser struct{ server.EmptyHandler }

func (currentUser) HandleQuery(q string) (*gomysql.Result, error) {
	rs, err := gomysql.BuildSimpleTextResultset([]string{"CURRENT_USER()"}, [][]any{{readerUser + "@%"}})
	if err != nil {
		return nil, err
	}
	return gomysql.NewResult(rs), nil
}

// TestMySQL8BackendAuth: the proxy logs in to a MySQL 8 style backend with
// caching_sha2_password (fast auth, full auth over TLS, full auth without
// TLS by the RSA key fetched or configured) and sha256_password.
func TestMySQL8BackendAuth(t *testing.T) {
	const (
		fastAuth = "\x01\x03"
		fullAuth = "\x01\x04"
		keySent  = "\x01-----BEGIN PUBLIC KEY"
	)
	login := func(t *testing.T, h *harness) (string, error) {
		t.Helper()
		d := dial{addr: h.addr, user: "mia@example.com", password: h.mint("mia@example.com", []string{"reader"}, nil),
			query: "SELECT CURRENT_USER()", tls: "verify", ca: h.ca}
		return goDriver(false).run(t, d)
	}
	mustLogin := func(t *testing.T, h *harness) {
		t.Helper()
		if got, err := login(t, h); err != nil || got != readerUser+"@%" {
			t.Fatalf("through the proxy: %v %q", err, got)
		}
	}
	pw := passwords[readerUser]

	t.Run("caching_sha2_password without TLS: full auth with the key fetched, then fast auth", func(t *testing.T) {
		b := startMySQL8(t, gomysql.AUTH_CACHING_SHA2_PASSWORD, false, pw)
		h := startHarness(t, harnessOpts{backend: b.addr})
		b.settle(h)
		mustLogin(t, h)
		if !b.sent(fullAuth) || !b.sent(keySent) {
			t.Fatal("the first login did not take full authentication with the backend's key")
		}
		mustLogin(t, h)
		if !b.sent(fastAuth) || b.sent(fullAuth) {
			t.Fatal("the second login did not take fast authentication")
		}
	})
	t.Run("caching_sha2_password without TLS: full auth with the configured key, none asked for", func(t *testing.T) {
		b := startMySQL8(t, gomysql.AUTH_CACHING_SHA2_PASSWORD, false, pw)
		keyFile := filepath.Join(t.TempDir(), "public_key.pem")
		writeFile(t, keyFile, b.keyPEM)
		h := startHarness(t, harnessOpts{backend: b.addr, backendYAML: "tls: disabled, public_key_file: \"" + keyFile + "\""})
		b.settle(h)
		mustLogin(t, h)
		if !b.sent(fullAuth) || b.sent(keySent) {
			t.Fatal("the login did not encrypt to the configured key (or asked for the backend's)")
		}
	})
	t.Run("caching_sha2_password over TLS: full auth, then fast auth", func(t *testing.T) {
		b := startMySQL8(t, gomysql.AUTH_CACHING_SHA2_PASSWORD, true, pw)
		h := startHarness(t, harnessOpts{backend: b.addr, backendYAML: "tls: required"})
		b.settle(h)
		mustLogin(t, h) // the stand-in's cache is empty: full authentication
		mustLogin(t, h)
	})
	t.Run("sha256_password over TLS", func(t *testing.T) {
		b := startMySQL8(t, gomysql.AUTH_SHA256_PASSWORD, true, pw)
		h := startHarness(t, harnessOpts{backend: b.addr, backendYAML: "tls: required"})
		b.settle(h)
		mustLogin(t, h)
	})
	t.Run("sha256_password without TLS, with the configured key", func(t *testing.T) {
		b := startMySQL8(t, gomysql.AUTH_SHA256_PASSWORD, false, pw)
		keyFile := filepath.Join(t.TempDir(), "public_key.pem")
		writeFile(t, keyFile, b.keyPEM)
		h := startHarness(t, harnessOpts{backend: b.addr, backendYAML: "tls: disabled, public_key_file: \"" + keyFile + "\""})
		b.settle(h)
		mustLogin(t, h)
	})
	t.Run("a wrong role password: the backend's refusal, named", func(t *testing.T) {
		b := startMySQL8(t, gomysql.AUTH_CACHING_SHA2_PASSWORD, false, "not the role's password")
		h := startHarness(t, harnessOpts{backend: b.addr})
		b.settle(h)
		_, err := login(t, h)
		if err == nil || !strings.Contains(err.Error(), `ERROR 1045: portcullis: backend refused the role's account "`+readerUser+`"`) {
			t.Fatalf("got %v", err)
		}
	})
}

// HandleOtherCommand refuses quietly what the stand-in does not do (the
// pool's COM_RESET_CONNECTION: such a connection is then not reused).
func (currentUser) HandleOtherCommand(cmd byte, _ []byte) error {
	return gomysql.NewError(gomysql.ER_UNKNOWN_ERROR, "the MySQL 8 stand-in does not implement this command")
}
