package client

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// TokenSource is what a Keeper renews its token from; Source is the one
// the CLI, the agent and client/mysqltoken use.
type TokenSource interface {
	Token(ctx context.Context) (Entry, error)
}

// Keeper shares one token among many users (the connections of a pool,
// the files of `portcullis agent`) and renews it from its source when a
// third of its life is left (Entry.Fresh). When renewal fails the current
// token is kept until it expires, and renewal is retried with backoff
// (doubling from a second up to a minute, never longer than a sixth of
// the token's life), not at every call. Safe for concurrent use.
type Keeper struct {
	src TokenSource
	log *slog.Logger
	// renewTimeout bounds one renewal (default 30s).
	renewTimeout time.Duration

	mu       sync.Mutex
	cur      Entry
	renewing chan struct{} // closed when the renewal in flight ends
	failures int           // renewals failed in a row
	retryAt  time.Time     // no renewal before, after a failure
	lastErr  error         // of the last renewal; nil after a success
}

// NewKeeper returns a Keeper of src's tokens; log gets one line per
// renewal and per failure (nil: slog.Default()).
func NewKeeper(src TokenSource, log *slog.Logger) *Keeper {
	if log == nil {
		log = slog.Default()
	}
	return &Keeper{src: src, log: log, renewTimeout: 30 * time.Second}
}

// Token returns a valid token at once when it has one (and starts a
// renewal in the background when a third of its life or less is left);
// it waits for the renewal only when it has no valid token. The error
// says why there is none.
func (k *Keeper) Token(ctx context.Context) (Entry, error) { return k.get(ctx, false) }

// Renew is Token, but waits for a renewal that is due to end, so the
// caller gets the new token (or the old one and the failure: err is nil
// while the returned token is still valid; see Failures).
func (k *Keeper) Renew(ctx context.Context) (Entry, error) { return k.get(ctx, true) }

func (k *Keeper) get(ctx context.Context, wait bool) (Entry, error) {
	k.mu.Lock()
	now := time.Now()
	if k.cur.Fresh(now) {
		defer k.mu.Unlock()
		return k.cur, nil
	}
	if k.renewing == nil && !now.Before(k.retryAt) {
		k.startRenewal(ctx)
	}
	ch, cur, valid := k.renewing, k.cur, k.validAt(now)
	if ch == nil || (valid && !wait) {
		err := k.lastErr
		k.mu.Unlock()
		if valid {
			return cur, nil
		}
		return Entry{}, k.noToken(err)
	}
	k.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return Entry{}, fmt.Errorf("wait for a token: %w", ctx.Err())
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.validAt(time.Now()) {
		return k.cur, nil
	}
	return Entry{}, k.noToken(k.lastErr)
}

func (k *Keeper) noToken(err error) error {
	if err == nil {
		return fmt.Errorf("no valid token from %v", k.src)
	}
	return fmt.Errorf("no valid token from %v: %w", k.src, err)
}

func (k *Keeper) validAt(now time.Time) bool {
	return k.cur.AccessToken != "" && now.Before(k.cur.ExpiresAt)
}

// startRenewal runs one renewal in the background; k.mu is held. The
// renewal does not end with the caller's context: the others share it.
func (k *Keeper) startRenewal(ctx context.Context) {
	ch := make(chan struct{})
	k.renewing = ch
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.renewTimeout)
	go func() {
		defer cancel()
		e, err := k.src.Token(rctx)
		k.mu.Lock()
		defer k.mu.Unlock()
		k.record(e, err, time.Now())
		k.renewing = nil
		close(ch)
	}()
}

// record takes a renewal's outcome and logs it; k.mu is held.
func (k *Keeper) record(e Entry, err error, now time.Time) {
	if err == nil && e.AccessToken != "" && now.Before(e.ExpiresAt) {
		if k.failures > 0 {
			k.log.Info("token renewed after failures", "source", fmt.Sprint(k.src), "failures", k.failures, "expires_at", e.ExpiresAt.UTC())
		} else {
			k.log.Info("token renewed", "source", fmt.Sprint(k.src), "expires_at", e.ExpiresAt.UTC())
		}
		k.cur, k.failures, k.lastErr, k.retryAt = e, 0, nil, time.Time{}
		if !e.Fresh(now) {
			// The source itself handed out a token near its end (a token
			// file its writer has not renewed yet): look again shortly.
			k.retryAt = now.Add(k.backoff(1))
		}
		return
	}
	if err == nil {
		err = fmt.Errorf("the source gave an expired token (expired at %s)", e.ExpiresAt.UTC().Format(time.RFC3339))
	}
	k.failures++
	k.lastErr = err
	wait := k.backoff(k.failures)
	k.retryAt = now.Add(wait)
	if k.validAt(now) {
		k.log.Warn("token renewal failed; keeping the current token until it expires", "source", fmt.Sprint(k.src),
			"error", err.Error(), "failures", k.failures, "retry_in", wait.Round(time.Millisecond), "expires_at", k.cur.ExpiresAt.UTC())
	} else {
		k.log.Error("token renewal failed and no valid token is left: new connections fail until a renewal succeeds", "source", fmt.Sprint(k.src),
			"error", err.Error(), "failures", k.failures, "retry_in", wait.Round(time.Millisecond))
	}
}

// backoff is the wait before renewal attempt n+1: doubling from 1s to 1
// minute, at most a sixth of the token's life (so several attempts fit
// in the last third), at least 100ms, with ±20% jitter so a fleet of
// agents does not retry in step.
func (k *Keeper) backoff(n int) time.Duration {
	d := time.Second << min(n-1, 6)
	d = min(d, time.Minute)
	if life := k.cur.ExpiresAt.Sub(k.cur.IssuedAt); life > 0 {
		d = min(d, life/6)
	}
	d = max(d, 100*time.Millisecond)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Next is when the keeper should be asked again so that its token never
// goes stale: when a third of its life is left, or when the retry after
// a failure is due. The agent sleeps until then.
func (k *Keeper) Next() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.renewing != nil || k.cur.AccessToken == "" && k.retryAt.IsZero():
		return time.Now()
	case !k.retryAt.IsZero():
		return k.retryAt
	}
	return k.cur.ExpiresAt.Add(-k.cur.ExpiresAt.Sub(k.cur.IssuedAt) / 3)
}

// Failures is how many renewals failed in a row, and the last one's
// error (nil after a success).
func (k *Keeper) Failures() (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.failures, k.lastErr
}
