package mfa_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/auth/mfa"
	"github.com/portcullisdb/portcullis/auth/mfa/mfatest"
)

const relayUser, relayPassword = mfatest.User, mfatest.Password

// TestSMTPMailer sends through a real SMTP server: STARTTLS and PLAIN
// authentication when offered, and relays that refuse, with errors that
// name the step and never the password.
func TestSMTPMailer(t *testing.T) {
	tests := []struct {
		name     string
		relay    *mfatest.Relay
		user     string // default relayUser
		password string // default relayPassword
		trust    bool   // trust the relay's certificate
		want     string // "" delivered, else part of the error
	}{
		{name: "STARTTLS then PLAIN authentication", relay: &mfatest.Relay{TLS: true, Auth: true}, trust: true},
		{name: "no authentication configured", relay: &mfatest.Relay{TLS: true}, user: "-", trust: true},
		{name: "a loopback relay without TLS may authenticate", relay: &mfatest.Relay{Auth: true}},
		{name: "wrong password", relay: &mfatest.Relay{TLS: true, Auth: true}, password: "wrong-" + relayPassword, trust: true,
			want: "log in as portcullis (check local.email.smtp.username and password): 535"},
		{name: "untrusted certificate", relay: &mfatest.Relay{TLS: true, Auth: true},
			want: "STARTTLS (is the relay's certificate valid for 127.0.0.1?): tls: failed to verify certificate"},
		{name: "relay without AUTH but a user configured", relay: &mfatest.Relay{TLS: true}, trust: true,
			want: "the relay offers no authentication (AUTH), but local.email.smtp.username is set"},
		{name: "recipient refused", relay: &mfatest.Relay{TLS: true, RefuseRcpt: true}, user: "-", trust: true,
			want: "the relay refused the recipient ada@example.com: 550"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.relay.Start(t)
			m := &mfa.SMTPMailer{Addr: tt.relay.Addr, From: "portcullis@example.com", Username: relayUser, Password: relayPassword}
			if tt.user == "-" {
				m.Username, m.Password = "", ""
			}
			if tt.password != "" {
				m.Password = tt.password
			}
			if tt.trust {
				m.TLS = &tls.Config{RootCAs: tt.relay.Roots}
			}
			err := m.Send(context.Background(), "ada@example.com", "portcullis login code", "Your code is 12345678\nbye")
			if err != nil && strings.Contains(err.Error(), relayPassword) {
				t.Fatalf("the error holds the password: %v", err)
			}
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Send = %v, want an error with %q", err, tt.want)
				}
				if got := tt.relay.Delivered(); len(got) != 0 {
					t.Fatalf("a refused send delivered: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			all := tt.relay.Delivered()
			if len(all) != 1 {
				t.Fatalf("delivered %d messages, want 1", len(all))
			}
			got := all[0]
			if got.From != "portcullis@example.com" || got.To != "ada@example.com" || got.OverTLS != tt.relay.TLS ||
				!strings.Contains(got.Data, "Subject: portcullis login code\r\n") || !strings.Contains(got.Data, "Your code is 12345678\r\nbye") {
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
