// Package mfatest has a real SMTP relay (emersion/go-smtp) on loopback,
// for tests of the SMTP mailer here and in integration: STARTTLS with a
// certificate of its own, PLAIN authentication, and refusals. Not a
// test-only package (no _test.go) so that integration tests can use it;
// nothing in the product imports it.
package mfatest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The only account Relay accepts.
const (
	User     = "portcullis"
	Password = "relay-Secret-7f3a9c" // tests check no error shows it
)

// Relay is an SMTP server on 127.0.0.1, closed by t.Cleanup.
type Relay struct {
	TLS        bool // offer STARTTLS
	Auth       bool // offer AUTH PLAIN and require it before MAIL
	RefuseRcpt bool // answer RCPT with 550

	// Set by Start.
	Addr  string
	CAPEM []byte         // the certificate it presents, as PEM
	Roots *x509.CertPool // trusting only that certificate

	mu  sync.Mutex
	got []Mail
}

// Mail is a message the relay accepted.
type Mail struct {
	From, To, Data string
	OverTLS        bool
}

// Start serves the relay.
func (r *Relay) Start(t testing.TB) *Relay {
	t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{r: r, conn: c}, nil
	}))
	srv.Domain = "relay.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	cert := r.certificate(t)
	if r.TLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	} else {
		srv.AllowInsecureAuth = true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.Addr = ln.Addr().String()
	return r
}

// Delivered is what the relay accepted so far.
func (r *Relay) Delivered() []Mail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Mail(nil), r.got...)
}

// certificate makes a self-signed certificate for 127.0.0.1.
func (r *Relay) certificate(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	r.Roots = x509.NewCertPool()
	r.Roots.AddCert(leaf)
	r.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

type session struct {
	r      *Relay
	conn   *smtp.Conn
	authed bool
	m      Mail
}

func (s *session) AuthMechanisms() []string {
	if !s.r.Auth {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != User || pass != Password {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.r.Auth && !s.authed {
		return smtp.ErrAuthRequired
	}
	_, s.m.OverTLS = s.conn.TLSConnectionState()
	s.m.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.r.RefuseRcpt {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	s.m.To = to
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.m.Data = string(b)
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.m)
	s.r.mu.Unlock()
	return err
}

func (s *session) Reset()        { s.m = Mail{} }
func (s *session) Logout() error { return nil }
