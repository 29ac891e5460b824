package mfa

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/smtp"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/portcullisdb/portcullis/netaddr"
)

// EmailCodeDigits is the length of an email code; longer than a TOTP
// code, so the two are told apart.
const EmailCodeDigits = 8

// ErrExpired: the email code is older than its lifetime.
var ErrExpired = errors.New("the emailed code expired: ask for a new one")

// EmailCode is what is kept of a code sent by email: its hash and when
// it stops working.
type EmailCode struct {
	Hash    string    `json:"hash"`
	Expires time.Time `json:"expires"`
}

// NewEmailCode returns a random code to send and the record to keep.
func NewEmailCode(now time.Time, ttl time.Duration) (string, EmailCode) {
	n, _ := rand.Int(rand.Reader, big.NewInt(100_000_000))
	code := fmt.Sprintf("%0*d", EmailCodeDigits, n.Int64())
	return code, EmailCode{Hash: hashEmail(code), Expires: now.Add(ttl).UTC()}
}

// Check verifies code at now; the caller deletes the record after one
// success, so each code works once.
func (e EmailCode) Check(code string, now time.Time) error {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if e.Hash == "" || subtle.ConstantTimeCompare([]byte(hashEmail(code)), []byte(e.Hash)) != 1 {
		return ErrBadCode
	}
	if !now.Before(e.Expires) {
		return ErrExpired
	}
	return nil
}

func hashEmail(code string) string {
	sum := sha256.Sum256([]byte("portcullis email code\x00" + code))
	return base64.RawStdEncoding.EncodeToString(sum[:])
}

// Mailer sends one message.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// FileMailer appends each message to a file: the dev mailer, for `make
// run` and tests.
type FileMailer struct {
	Path string
	mu   sync.Mutex
}

func (m *FileMailer) Send(_ context.Context, to, subject, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := os.OpenFile(m.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("dev mailer: %w", err)
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "To: %s\nSubject: %s\n\n%s\n.\n", to, subject, body)
	return err
}

// SMTPMailer sends through an SMTP relay: STARTTLS whenever the relay
// offers it, then PLAIN authentication when Username is set (never in
// the clear, except to a relay on this machine). Errors name the step
// and the relay's answer, never the password.
type SMTPMailer struct {
	Addr, From, Username, Password string
	// TLS verifies the relay's certificate; nil: the system's roots, and
	// the host of Addr as the name.
	TLS *tls.Config
	// Timeout bounds one message; default 30s.
	Timeout time.Duration
}

// defaultSMTPTimeout is SMTPMailer.Timeout's default: a login page waits
// for the mail.
const defaultSMTPTimeout = 30 * time.Second

func (m *SMTPMailer) Send(ctx context.Context, to, subject, body string) error {
	if strings.ContainsAny(m.From+to+subject, "\r\n") {
		return errors.New("smtp: header values must be one line")
	}
	host, _, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return fmt.Errorf("smtp %q: the address must be host:port: %w", m.Addr, err)
	}
	fail := func(step string, err error) error { return fmt.Errorf("smtp %s: %s: %w", m.Addr, step, err) }
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(m.Timeout, defaultSMTPTimeout))
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return fail("connect", err)
	}
	defer conn.Close()
	// A relay that stops answering fails the send instead of hanging it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fail("greeting", err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{}
		if m.TLS != nil {
			cfg = m.TLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		if err := c.StartTLS(cfg); err != nil {
			return fail("STARTTLS (is the relay's certificate valid for "+cfg.ServerName+"?)", err)
		}
	}
	if m.Username != "" {
		if _, secure := c.TLSConnectionState(); !secure && !netaddr.IsLoopback(host) {
			return fmt.Errorf("smtp %s: the relay offers no STARTTLS, and the password is never sent in the clear: use the relay's submission port (587) with STARTTLS", m.Addr)
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("smtp %s: the relay offers no authentication (AUTH), but local.email.smtp.username is set: clear it, or use a relay that authenticates", m.Addr)
		}
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, host)); err != nil {
			return fail("log in as "+m.Username+" (check local.email.smtp.username and password)", err)
		}
	}
	if err := c.Mail(m.From); err != nil {
		return fail("the relay refused the sender "+m.From, err)
	}
	if err := c.Rcpt(to); err != nil {
		return fail("the relay refused the recipient "+to, err)
	}
	w, err := c.Data()
	if err != nil {
		return fail("start the message", err)
	}
	msg := "From: " + m.From + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.ReplaceAll(body, "\n", "\r\n") + "\r\n"
	if _, err := io.WriteString(w, msg); err != nil {
		return fail("send the message", err)
	}
	if err := w.Close(); err != nil {
		return fail("the relay refused the message", err)
	}
	c.Quit() // the message is accepted; a failed goodbye changes nothing
	return nil
}
