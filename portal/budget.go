package portal

import (
	"context"
	"errors"
	"time"

	"github.com/portcullisdb/portcullis/auth/local"
	"github.com/portcullisdb/portcullis/limit"
)

// The token endpoint's refused-request budget per source address lives
// in the store (one budget for every node, like the local login's); this
// node's own limiter applies too, and alone while the store does not
// answer.

func (s *Server) tokenLockout() *local.Lockout {
	if s.opt.FailuresPerMinute <= 0 || s.dir == nil || s.dir.Store() == nil {
		return nil
	}
	s.lockOnce.Do(func() {
		s.lock = local.NewLockout(local.Prefixed(s.dir.Store(), "token:"), 0, s.opt.FailuresPerMinute)
	})
	return s.lock
}

// tokenAllow reports whether ip (an IPv6 address by its /64) may still try, and otherwise how long
// until it may.
func (s *Server) tokenAllow(ctx context.Context, ip string) (time.Duration, bool) {
	ip = limit.AddressKey(ip) // an IPv6 client by its /64
	if l := s.tokenLockout(); l != nil {
		var locked *local.LockedError
		if err := l.Check(ctx, "", ip); errors.As(err, &locked) {
			return locked.Wait, false
		} else if err != nil {
			s.opt.Log.Warn("shared token-request budget unavailable: this node's own applies", "err", err)
		}
	}
	return s.limiter.Allow(ip)
}

// tokenFailed spends one unit of ip's budget.
func (s *Server) tokenFailed(ip string) {
	ip = limit.AddressKey(ip)
	s.limiter.Failed(ip)
	if l := s.tokenLockout(); l != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := l.Failed(ctx, "", ip); err != nil {
			s.opt.Log.Warn("record a refused token request in the shared budget", "err", err)
		}
	}
}
