package mfa

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/smtp"
	"os"
	"strings"
	"sync"
	"time"
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

// SMTPMailer sends through an SMTP relay (net/smtp: STARTTLS when the
// relay offers it; PLAIN authentication only over TLS or to localhost).
type SMTPMailer struct {
	Addr, From, Username, Password string
}

func (m *SMTPMailer) Send(_ context.Context, to, subject, body string) error {
	if strings.ContainsAny(to+subject, "\r\n") {
		return errors.New("smtp: header values must be one line")
	}
	var auth smtp.Auth
	if m.Username != "" {
		host := m.Addr
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host = host[:i]
		}
		auth = smtp.PlainAuth("", m.Username, m.Password, host)
	}
	msg := "From: " + m.From + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.ReplaceAll(body, "\n", "\r\n") + "\r\n"
	if err := smtp.SendMail(m.Addr, auth, m.From, []string{to}, []byte(msg)); err != nil {
		return fmt.Errorf("smtp %s: %w", m.Addr, err)
	}
	return nil
}
