package local

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/portcullisdb/portcullis/auth/username"
)

// Argon2id parameters (RFC 9106's second recommended option: 64 MiB,
// 3 passes). They are encoded in each hash, so raising them later still
// verifies old hashes.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
	saltLen      = 16
)

// MinPasswordLength is the shortest password SetPassword accepts.
const MinPasswordLength = 12

// ErrMismatch: the password does not match the hash.
var ErrMismatch = errors.New("wrong password")

// Hash returns the PHC-style encoding of an argon2id hash of password
// under a fresh random salt.
func Hash(password string) string {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Verify checks password against an encoded hash in constant time.
func Verify(encoded, password string) error {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("password hash: not an argon2id hash")
	}
	var version int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return errors.New("password hash: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 {
		return errors.New("password hash: bad parameters")
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return errors.New("password hash: bad encoding")
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// dummyHash is verified against when the account does not exist, so a
// wrong user name costs as long as a wrong password. It is made at first
// use: at package init every process linking this package (the CLI too,
// and servers without local accounts) paid a 64 MiB argon2id hash.
var dummyHash = sync.OnceValue(func() string { return Hash("portcullis timing equaliser") })

// VerifyDummy spends the time of one Verify.
func VerifyDummy(password string) { Verify(dummyHash(), password) }

// PasswordProblem is what is wrong with a new password, or "".
func PasswordProblem(pw string) string {
	if utf8.RuneCountInString(pw) < MinPasswordLength {
		return fmt.Sprintf("the password must have at least %d characters", MinPasswordLength)
	}
	if len(pw) > 1024 {
		return "the password must have at most 1024 bytes"
	}
	return ""
}

// GeneratePassword is a random initial password (24 characters).
func GeneratePassword() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// FailureLog counts failed attempts. It is the store, which every node
// shares, so spreading guesses over nodes buys nothing.
type FailureLog interface {
	AddLoginFailure(ctx context.Context, key string) error
	LoginFailuresSince(ctx context.Context, key string, since time.Time) (n int, oldest time.Time, err error)
}

// Lockout holds the failure budgets of password and code checks: per
// account and per source address, each a number of failures in any
// minute. A key out of budget is locked until its oldest failure in the
// window is a minute old.
type Lockout struct {
	log                    FailureLog
	perAccount, perAddress int
}

// lockoutWindow is the span a budget counts failures over.
const lockoutWindow = time.Minute

// NewLockout allows perAccount failures per account and perAddress per
// address per minute, counted in log; 0 does not limit.
func NewLockout(log FailureLog, perAccount, perAddress int) *Lockout {
	return &Lockout{log: log, perAccount: perAccount, perAddress: perAddress}
}

// UnavailableError: the failure counts cannot be read, so the attempt is
// refused (a lockout that fails open is no lockout). Its text is for the
// person; the cause stays in Err.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string {
	return "the login service cannot check failed attempts right now: try again shortly"
}

func (e *UnavailableError) Unwrap() error { return e.Err }

type budget struct {
	what, key string
	max       int
}

func (l *Lockout) budgets(account, address string) []budget {
	return []budget{
		{"address", "address:" + address, l.perAddress},
		{"account", "account:" + accountKey(account), l.perAccount},
	}
}

// Check returns a *LockedError when account or address is out of budget,
// or an *UnavailableError when the counts cannot be read.
func (l *Lockout) Check(ctx context.Context, account, address string) error {
	now := time.Now()
	for _, b := range l.budgets(account, address) {
		if b.max <= 0 {
			continue
		}
		n, oldest, err := l.log.LoginFailuresSince(ctx, b.key, now.Add(-lockoutWindow))
		if err != nil {
			return &UnavailableError{Err: err}
		}
		if n >= b.max {
			return &LockedError{What: b.what, Wait: oldest.Add(lockoutWindow).Sub(now)}
		}
	}
	return nil
}

// Failed spends one unit of both budgets.
func (l *Lockout) Failed(ctx context.Context, account, address string) error {
	var errs []error
	for _, b := range l.budgets(account, address) {
		if b.max > 0 {
			errs = append(errs, l.log.AddLoginFailure(ctx, b.key))
		}
	}
	return errors.Join(errs...)
}

// LockedError says who is locked out and for how long.
type LockedError struct {
	What string // "account" or "address"
	Wait time.Duration
}

func (e *LockedError) Error() string {
	wait := e.Wait.Round(time.Second)
	if wait < time.Second {
		wait = time.Second
	}
	if e.What == "account" {
		return fmt.Sprintf("too many failed attempts for this account: it is locked, try again in %v", wait)
	}
	return fmt.Sprintf("too many failed attempts from your address: try again in %v", wait)
}

// accountKey counts failures per user as auth/username names them, so
// "Alice" and " alice" share one budget.
func accountKey(account string) string {
	if key, err := username.Normalize(account); err == nil {
		return key
	}
	return strings.ToLower(account)
}
