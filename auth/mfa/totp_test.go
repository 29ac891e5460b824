package mfa_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/portcullisdb/portcullis/auth/mfa"
)

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: mfa.Period, Digits: mfa.Digits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifyWindows(t *testing.T) {
	e, err := mfa.NewEnrolment("portcullis", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if e.Secret == "" || e.URI == "" || len(e.QRPNG) < 100 {
		t.Fatalf("enrolment incomplete: %+v", e.URI)
	}
	now := time.Unix(1_800_000_000, 0) // on a step boundary
	step := now.Unix() / mfa.Period
	tests := []struct {
		name    string
		codeAt  time.Time
		want    error
		wantAdj int64
	}{
		{"current step", now, nil, 0},
		{"previous step (drift)", now.Add(-30 * time.Second), nil, -1},
		{"next step (drift)", now.Add(30 * time.Second), nil, 1},
		{"two steps old", now.Add(-60 * time.Second), mfa.ErrBadCode, 0},
		{"two steps ahead", now.Add(60 * time.Second), mfa.ErrBadCode, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mfa.Verify(e.Secret, code(t, e.Secret, tt.codeAt), now, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil && got != step+tt.wantAdj {
				t.Fatalf("step = %d, want %d", got, step+tt.wantAdj)
			}
		})
	}
	if _, err := mfa.Verify(e.Secret, "12345", now, 0); !errors.Is(err, mfa.ErrBadCode) {
		t.Fatalf("short code: %v", err)
	}
	again, err := mfa.EnrolmentFor("portcullis", "alice@example.com", e.Secret)
	if err != nil || again.Secret != e.Secret {
		t.Fatalf("EnrolmentFor: %v %q", err, again.Secret)
	}
}

func TestReplayRefused(t *testing.T) {
	e, _ := mfa.NewEnrolment("portcullis", "bob@example.com")
	now := time.Unix(1_800_000_010, 0)
	c := code(t, e.Secret, now)
	step, err := mfa.Verify(e.Secret, c, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mfa.Verify(e.Secret, c, now.Add(5*time.Second), step); !errors.Is(err, mfa.ErrReplay) {
		t.Fatalf("the same code again: %v, want ErrReplay", err)
	}
	// An older code still inside the window is a replay too: steps only move forward.
	if _, err := mfa.Verify(e.Secret, code(t, e.Secret, now.Add(-30*time.Second)), now, step); !errors.Is(err, mfa.ErrReplay) {
		t.Fatalf("an older step: %v, want ErrReplay", err)
	}
	next := now.Add(30 * time.Second)
	if s2, err := mfa.Verify(e.Secret, code(t, e.Secret, next), next, step); err != nil || s2 != step+1 {
		t.Fatalf("the next step's code: %d %v", s2, err)
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, hashes := mfa.NewRecoveryCodes()
	if len(codes) != mfa.RecoveryCount || len(hashes) != mfa.RecoveryCount {
		t.Fatalf("%d codes, %d hashes", len(codes), len(hashes))
	}
	rest, ok := mfa.UseRecovery(hashes, " "+codes[3]+" ")
	if !ok || len(rest) != mfa.RecoveryCount-1 {
		t.Fatalf("use a code: %v %d", ok, len(rest))
	}
	if _, ok := mfa.UseRecovery(rest, codes[3]); ok {
		t.Fatal("a used recovery code worked again")
	}
	if _, ok := mfa.UseRecovery(rest, "nope-nope"); ok {
		t.Fatal("an unknown recovery code worked")
	}
}

func TestEmailCode(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	code, rec := mfa.NewEmailCode(now, 10*time.Minute)
	if len(code) != mfa.EmailCodeDigits {
		t.Fatalf("code %q", code)
	}
	tests := []struct {
		name string
		code string
		at   time.Time
		want error
	}{
		{"right, at once", code, now, nil},
		{"right, just before expiry", code, now.Add(10*time.Minute - time.Second), nil},
		{"right, at expiry", code, now.Add(10 * time.Minute), mfa.ErrExpired},
		{"right, long after", code, now.Add(time.Hour), mfa.ErrExpired},
		{"wrong", "00000000", now, mfa.ErrBadCode},
		{"empty", "", now, mfa.ErrBadCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := rec.Check(tt.code, tt.at); !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
	if err := (mfa.EmailCode{}).Check(code, now); !errors.Is(err, mfa.ErrBadCode) {
		t.Fatalf("no code sent: %v", err)
	}
}
