package mfa_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/portcullisdb/portcullis/auth/mfa"
)

const (
	relayUser     = "portcullis"
	relayPassword = "relay-Secret-7f3a9c" // must never appear in an error
)

// relay is a real SMTP server (emersion/go-smtp) in the test process.
type relay struct {
	tls        bool   // offer STARTTLS
	auth       bool   // offer AUTH PLAIN and require it
	refuseRcpt bool   // answer RCPT with 550
	got        []mail // what was accepted
	mu         sync.Mutex
}

type mail struct {
	from, to, data string
	overTLS        bool
}

type relaySession struct {
	r      *relay
	conn   *smtp.Conn
	authed bool
	m      mail
}

func (s *relaySession) AuthMechanisms() []string {
	if !s.r.auth {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != relayUser || pass != relayPassword {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.r.auth && !s.authed {
		return smtp.ErrAuthRequired
	}
	_, s.m.overTLS = s.conn.TLSConnectionState()
	s.m.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.r.refuseRcpt {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	s.m.to = to
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.m.data = string(b)
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.m)
	s.r.mu.Unlock()
	return err
}

// delivered is what the relay accepted so far.
func (r *relay) delivered() []mail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mail(nil), r.got...)
}

func (s *relaySession) Reset()        { s.m = mail{} }
func (s *relaySession) Logout() error { return nil }

// start serves the relay on 127.0.0.1; its certificate is trusted by the
// returned pool only.
func (r *relay) start(t *testing.T) (addr string, roots *x509.CertPool) {
	t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r, conn: c}, nil
	}))
	srv.Domain = "relay.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	cert, roots := selfSigned(t)
	if r.tls {
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
	return ln.Addr().String(), roots
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
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
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestSMTPMailer sends through a real SMTP server: STARTTLS and PLAIN
// authentication when offered, and relays that refuse, with errors that
// name the step and never the password.
func TestSMTPMailer(t *testing.T) {
	tests := []struct {
		name     string
		relay    *relay
		user     string // default relayUser
		password string // default relayPassword
		trust    bool   // trust the relay's certificate
		want     string // "" delivered, else part of the error
	}{
		{name: "STARTTLS then PLAIN authentication", relay: &relay{tls: true, auth: true}, trust: true},
		{name: "no authentication configured", relay: &relay{tls: true}, user: "-", trust: true},
		{name: "a loopback relay without TLS may authenticate", relay: &relay{auth: true}},
		{name: "wrong password", relay: &relay{tls: true, auth: true}, password: "wrong-" + relayPassword, trust: true,
			want: "log in as portcullis (check local.email.smtp.username and password): 535"},
		{name: "untrusted certificate", relay: &relay{tls: true, auth: true},
			want: "STARTTLS (is the relay's certificate valid for 127.0.0.1?): tls: failed to verify certificate"},
		{name: "relay without AUTH but a user configured", relay: &relay{tls: true}, trust: true,
			want: "the relay offers no authentication (AUTH), but local.email.smtp.username is set"},
		{name: "recipient refused", relay: &relay{tls: true, refuseRcpt: true}, user: "-", trust: true,
			want: "the relay refused the recipient ada@example.com: 550"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, roots := tt.relay.start(t)
			m := &mfa.SMTPMailer{Addr: addr, From: "portcullis@example.com", Username: relayUser, Password: relayPassword}
			if tt.user == "-" {
				m.Username, m.Password = "", ""
			}
			if tt.password != "" {
				m.Password = tt.password
			}
			if tt.trust {
				m.TLS = &tls.Config{RootCAs: roots}
			}
			err := m.Send(context.Background(), "ada@example.com", "portcullis login code", "Your code is 12345678\nbye")
			if err != nil && strings.Contains(err.Error(), relayPassword) {
				t.Fatalf("the error holds the password: %v", err)
			}
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Send = %v, want an error with %q", err, tt.want)
				}
				if got := tt.relay.delivered(); len(got) != 0 {
					t.Fatalf("a refused send delivered: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			all := tt.relay.delivered()
			if len(all) != 1 {
				t.Fatalf("delivered %d messages, want 1", len(all))
			}
			got := all[0]
			if got.from != "portcullis@example.com" || got.to != "ada@example.com" || got.overTLS != tt.relay.tls ||
				!strings.Contains(got.data, "Subject: portcullis login code\r\n") || !strings.Contains(got.data, "Your code is 12345678\r\nbye") {
				t.Fatalf("delivered %+v", got)
			}
		})
	}
}

// TestSMTPMailerUnreachable: no relay, and a relay that never answers,
// fail within the timeout with the step named.
func TestSMTPMailerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := ln.Addr().String() // accepts (the kernel's backlog), never greets
	t.Cleanup(func() { ln.Close() })
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	tests := []struct {
		name, addr, want string
	}{
		{"nothing listens", refused, "connect: dial tcp " + refused + ": connect: connection refused"},
		{"relay never greets", silent, "greeting"},
		{"not host:port", "smtp.example.com", "the address must be host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &mfa.SMTPMailer{Addr: tt.addr, From: "portcullis@example.com", Username: relayUser, Password: relayPassword, Timeout: 300 * time.Millisecond}
			start := time.Now()
			err := m.Send(context.Background(), "ada@example.com", "code", "body")
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), relayPassword) {
				t.Fatalf("Send = %v, want an error with %q and no password", err, tt.want)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("Send took %v with a 300ms timeout", took)
			}
		})
	}
	t.Run("header injection", func(t *testing.T) {
		m := &mfa.SMTPMailer{Addr: refused, From: "portcullis@example.com"}
		if err := m.Send(context.Background(), "ada@example.com\r\nBcc: eve@example.com", "code", "body"); err == nil || !strings.Contains(err.Error(), "one line") {
			t.Fatalf("Send = %v", err)
		}
	})
}
