package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/portcullisdb/portcullis/auth/local"
	"github.com/portcullisdb/portcullis/limit"
)

// The failed-login budgets of the MySQL leg live in the store when the
// server has one (Options.Failures): every node counts against the same
// budget, so spreading guesses over nodes buys nothing. Without a store,
// or while it does not answer, each node keeps its own (limit.Failures).

// lockout is the shared budget, or nil.
func (s *Server) lockout() *local.Lockout {
	if s.opt.Failures == nil || (s.opt.FailedAuthPerMinute <= 0 && s.opt.FailedAuthPerUserPerMinute <= 0) {
		return nil
	}
	s.lockOnce.Do(func() {
		s.lock = local.NewLockout(local.Prefixed(s.opt.Failures, "mysql:"), s.opt.FailedAuthPerUserPerMinute, s.opt.FailedAuthPerMinute)
	})
	return s.lock
}

// checkBudget refuses a client out of budget, before its token is read.
func (s *Server) checkBudget(ctx context.Context, host, name string) error {
	host = limit.AddressKey(host) // an IPv6 client by its /64
	if l := s.lockout(); l != nil {
		err := l.Check(ctx, name, host)
		var locked *local.LockedError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &locked):
			wait := locked.Wait.Round(time.Second) + time.Second
			msg := fmt.Sprintf("too many failed logins from %s: wait %v and try again", host, wait)
			if locked.What == "account" {
				msg = fmt.Sprintf("too many failed logins as %s: wait %v and try again", name, wait)
			}
			return &clientError{code: mysql.ER_ACCESS_DENIED_ERROR, class: "rate_limited", msg: msg}
		default:
			s.log.Warn("shared failed-login budget unavailable: this node's own applies", "err", err)
		}
	}
	if wait, ok := s.failIP.Allow(host); !ok {
		return &clientError{code: mysql.ER_ACCESS_DENIED_ERROR, class: "rate_limited",
			msg: fmt.Sprintf("too many failed logins from %s: wait %v and try again", host, wait.Round(time.Second)+time.Second)}
	}
	if wait, ok := s.failUser.Allow(identityKey(name)); !ok {
		return &clientError{code: mysql.ER_ACCESS_DENIED_ERROR, class: "rate_limited",
			msg: fmt.Sprintf("too many failed logins as %s: wait %v and try again", name, wait.Round(time.Second)+time.Second)}
	}
	return nil
}

// spendBudget counts a failed login, in the store and in this node's
// own budget.
func (s *Server) spendBudget(ctx context.Context, host, name string) {
	host = limit.AddressKey(host)
	s.failIP.Failed(host)
	s.failUser.Failed(identityKey(name))
	if l := s.lockout(); l != nil {
		if err := l.Failed(ctx, name, host); err != nil {
			s.log.Warn("record a failed login in the shared budget", "err", err)
		}
	}
}
