package local_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/auth/local"
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

func TestLockout(t *testing.T) {
	l := local.NewLockout(3, 10)
	for i := 0; i < 3; i++ {
		if err := l.Check("Alice@x", "10.0.0.1"); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		l.Failed("alice@x", "10.0.0.1")
	}
	err := l.Check("ALICE@X", "10.0.0.2")
	var le *local.LockedError
	if !errors.As(err, &le) || le.What != "account" || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("after 3 failures the account must be locked from any address: %v", err)
	}
	if err := l.Check("bob@x", "10.0.0.1"); err != nil {
		t.Fatalf("another account from the same address still has budget: %v", err)
	}
	for i := 0; i < 10; i++ {
		l.Failed("user"+string(rune('a'+i)), "10.0.0.9")
	}
	if err := l.Check("carol@x", "10.0.0.9"); !errors.As(err, &le) || le.What != "address" {
		t.Fatalf("the address must be locked: %v", err)
	}
}
