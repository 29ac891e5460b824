package local_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/auth/local"
	"github.com/portcullisdb/portcullis/store"
)

func TestHashVerify(t *testing.T) {
	h1, h2 := local.Hash("correct horse battery"), local.Hash("correct horse battery")
	if h1 == h2 || !strings.HasPrefix(h1, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("hashes must be argon2id with a per-hash salt: %s %s", h1, h2)
	}
	tests := []struct {
		name, hash, pw string
		want           error
	}{
		{"right", h1, "correct horse battery", nil},
		{"wrong", h1, "correct horse batterz", local.ErrMismatch},
		{"empty", h1, "", local.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := local.Verify(tt.hash, tt.pw); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if err := local.Verify("$2a$10$bcrypt", "x"); err == nil || errors.Is(err, local.ErrMismatch) {
		t.Fatalf("a foreign hash: %v", err)
	}
	if local.PasswordProblem("short") == "" || local.PasswordProblem(local.GeneratePassword()) != "" {
		t.Fatal("PasswordProblem")
	}
}

// TestLockout: budgets live in the store, so two nodes sharing it count
// as one; an account is locked from any address, an address for any
// account; a lock lifts a minute after its oldest failure; and a store
// that cannot be read refuses the attempt (a lockout must not fail open).
func TestLockout(t *testing.T) {
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	node1, node2 := local.NewLockout(st, 3, 10), local.NewLockout(st, 3, 10)
	for i, node := range []*local.Lockout{node1, node2, node1} {
		if err := node.Check(ctx, "Alice@x", "10.0.0.1"); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if err := node.Failed(ctx, "alice@x", "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	var le *local.LockedError
	err = node2.Check(ctx, "ALICE@X", "10.0.0.2")
	if !errors.As(err, &le) || le.What != "account" || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("after 3 failures over two nodes the account must be locked on either, from any address: %v", err)
	}
	if le.Wait <= 50*time.Second || le.Wait > time.Minute {
		t.Fatalf("locked for %v, want just under a minute (the oldest failure's age out)", le.Wait)
	}
	if err := node1.Check(ctx, "bob@x", "10.0.0.1"); err != nil {
		t.Fatalf("another account from the same address still has budget: %v", err)
	}
	for i := range 10 {
		if err := node2.Failed(ctx, "user"+string(rune('a'+i)), "10.0.0.9"); err != nil {
			t.Fatal(err)
		}
	}
	if err := node1.Check(ctx, "carol@x", "10.0.0.9"); !errors.As(err, &le) || le.What != "address" {
		t.Fatalf("the address must be locked: %v", err)
	}

	st.Close()
	var ue *local.UnavailableError
	if err := node1.Check(ctx, "dave@x", "10.0.0.3"); !errors.As(err, &ue) || strings.Contains(err.Error(), "sql") {
		t.Fatalf("store gone: got %v, want a refusal that names no internals", err)
	}
}
