package client

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedSource hands out tokens of life ttl, or fails while failing is set.
type scriptedSource struct {
	ttl     time.Duration
	calls   atomic.Int32
	failing atomic.Bool
	delay   time.Duration
	gate    chan struct{} // when set, each call waits for it to close
}

func (s *scriptedSource) Token(context.Context) (Entry, error) {
	n := s.calls.Add(1)
	time.Sleep(s.delay)
	if s.gate != nil {
		<-s.gate
	}
	if s.failing.Load() {
		return Entry{}, errors.New("portcullis refused the exchange (401 Unauthorized): token is expired")
	}
	now := time.Now()
	return Entry{AccessToken: "t" + string(rune('a'+n)), IssuedAt: now, ExpiresAt: now.Add(s.ttl)}, nil
}

func (s *scriptedSource) String() string { return "scripted" }

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestKeeperSharesOneRenewal(t *testing.T) {
	src := &scriptedSource{ttl: time.Minute, delay: 50 * time.Millisecond}
	k := NewKeeper(src, quietLog())
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := k.Token(t.Context()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("%d renewals for 20 concurrent callers, want 1", n)
	}
}

func TestKeeperRenewsAtAThirdInTheBackground(t *testing.T) {
	src := &scriptedSource{ttl: 3 * time.Second}
	k := NewKeeper(src, quietLog())
	first, _ := k.Token(t.Context())
	time.Sleep(time.Until(k.Next())) // a third left
	src.gate = make(chan struct{})
	got, err := k.Token(t.Context()) // the renewal waits at the gate: this must not
	if err != nil || got.AccessToken != first.AccessToken {
		t.Fatalf("a still-valid token must come at once while renewing: %v %v", got.AccessToken, err)
	}
	close(src.gate)
	renewed, err := k.Renew(t.Context())
	if err != nil || renewed.AccessToken == first.AccessToken {
		t.Fatalf("Renew gave %q %v, want the new token", renewed.AccessToken, err)
	}
}

func TestKeeperKeepsTheTokenWhileRenewalFails(t *testing.T) {
	src := &scriptedSource{ttl: 3 * time.Second}
	var log strings.Builder
	k := NewKeeper(src, slog.New(slog.NewTextHandler(&syncWriter{w: &log}, nil)))
	first, _ := k.Renew(t.Context())
	src.failing.Store(true)
	time.Sleep(time.Until(k.Next())) // a third left
	// Many connections during the failure: few attempts.
	for range 50 {
		if e, err := k.Renew(t.Context()); err != nil || e.AccessToken != first.AccessToken {
			t.Fatalf("while valid: %q %v", e.AccessToken, err)
		}
	}
	if n := src.calls.Load(); n > 3 {
		t.Fatalf("%d renewals in a burst of 50 calls: backoff is missing", n)
	}
	if failures, err := k.Failures(); failures == 0 || err == nil {
		t.Fatal("Failures does not report the failure")
	}
	time.Sleep(time.Until(first.ExpiresAt) + 10*time.Millisecond)
	time.Sleep(time.Until(k.Next()))
	if _, err := k.Renew(t.Context()); err == nil || !strings.Contains(err.Error(), "no valid token from scripted: portcullis refused") {
		t.Fatalf("after expiry: %v", err)
	}
	src.failing.Store(false)
	time.Sleep(time.Until(k.Next()))
	if e, err := k.Renew(t.Context()); err != nil || e.AccessToken == first.AccessToken {
		t.Fatalf("after recovery: %q %v", e.AccessToken, err)
	}
	for _, want := range []string{"keeping the current token until it expires", "no valid token is left", "token renewed after failures"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(log.String(), first.AccessToken+" ") {
		t.Error("a token in the log")
	}
}

func TestBackoff(t *testing.T) {
	k := &Keeper{cur: Entry{IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 9: time.Minute, 60: time.Minute} {
		if d := k.backoff(n); d < want*8/10 || d > want*12/10 {
			t.Errorf("backoff(%d) = %v, want %v ±20%%", n, d, want)
		}
	}
	k.cur.ExpiresAt = k.cur.IssuedAt.Add(6 * time.Second) // short tokens: at most a sixth of the life
	if d := k.backoff(5); d > 1200*time.Millisecond {
		t.Errorf("backoff of a 6 s token = %v", d)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestSourceValidate(t *testing.T) {
	tests := []struct {
		name string
		src  Source
		want string
	}{
		{"none", Source{Server: "https://p"}, "exactly one token source"},
		{"two", Source{Server: "https://p", Cloud: "aws", Login: true}, "exactly one token source"},
		{"no server", Source{JWTFile: "/x"}, "no portal"},
		{"unknown cloud", Source{Server: "https://p", Cloud: "ibm"}, `unknown cloud "ibm"`},
		{"token file needs no server", Source{TokenFile: "/x"}, ""},
		{"jwt", Source{Server: "https://p", JWTFile: "/x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.src.Validate()
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
