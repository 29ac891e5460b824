package integration

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/auth"
)

// TestFailedLoginBudget: after the budget of failed logins, even a good
// token waits, with a message that says so.
func TestFailedLoginBudget(t *testing.T) {
	h := startHarness(t, harnessOpts{failedAuth: 3})
	var me *mysql.MySQLError
	for range 3 {
		if err := h.open("xena@example.com", "garbage").Ping(); !errors.As(err, &me) || !strings.Contains(me.Message, "malformed") {
			t.Fatalf("bad token: %v", err)
		}
	}
	good := h.mint("xena@example.com", []string{"reader"}, nil)
	if err := h.open("xena@example.com", good).Ping(); !errors.As(err, &me) || me.Number != 1045 || !strings.Contains(me.Message, "too many failed logins") {
		t.Fatalf("after the budget: %v", err)
	}
	found := false
	for _, e := range h.auditLines() {
		if r, _ := e["reason"].(string); strings.Contains(r, "too many failed logins") {
			found = true
		}
	}
	if !found {
		t.Fatal("the rate-limited attempt has no audit line")
	}
}

func TestSessionLimits(t *testing.T) {
	t.Run("per-identity session cap", func(t *testing.T) {
		h := startHarness(t, harnessOpts{extraYAML: "  max_sessions_per_identity: 2"})
		token := h.mint("yuri@example.com", []string{"reader"}, nil)
		for range 2 {
			db := h.open("yuri@example.com", token)
			db.SetMaxOpenConns(1)
			queryString(t, db, "SELECT 1")
		}
		var me *mysql.MySQLError
		if err := h.open("yuri@example.com", token).Ping(); !errors.As(err, &me) || me.Number != 1203 || !strings.Contains(me.Message, "max_sessions_per_identity") {
			t.Fatalf("third session: %v", err)
		}
		other := h.open("zoe@example.com", h.mint("zoe@example.com", []string{"reader"}, nil))
		if err := other.Ping(); err != nil {
			t.Fatalf("another identity: %v", err)
		}
	})
	t.Run("idle timeout, but not while the backend answers", func(t *testing.T) {
		h := startHarness(t, harnessOpts{extraYAML: "  idle_timeout: 700ms"})
		token := h.mint("ada@example.com", []string{"reader"}, nil)
		busy := h.open("ada@example.com", token)
		busy.SetMaxOpenConns(1)
		if _, err := busy.Exec("SELECT SLEEP(1.2)"); err != nil {
			t.Fatalf("a query longer than the idle timeout: %v", err)
		}
		idle := h.open("ada@example.com", token)
		idle.SetMaxOpenConns(1)
		idle.SetConnMaxIdleTime(time.Hour)
		queryString(t, idle, "SELECT 1")
		time.Sleep(1500 * time.Millisecond)
		if len(h.svc.Proxy.Sessions.List()) > 1 {
			t.Fatalf("%d sessions after the idle one should have ended", len(h.svc.Proxy.Sessions.List()))
		}
	})
	t.Run("end at token expiry", func(t *testing.T) {
		h := startHarness(t, harnessOpts{})
		tok, err := h.dev.Mint(auth.MintRequest{Subject: "bea@example.com", Email: "bea@example.com", Roles: []string{"expiring"}, TTL: 1500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		remember(tok)
		db := h.open("bea@example.com", tok)
		db.SetMaxOpenConns(1)
		var me *mysql.MySQLError
		if _, err := db.Exec("SELECT SLEEP(5)"); !errors.As(err, &me) || me.Number != 1927 || !strings.Contains(me.Message, "token expired") {
			t.Fatalf("a session of an end_at_token_expiry role outlived its token: %v", err)
		}
	})
}
