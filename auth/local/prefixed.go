package local

import (
	"context"
	"time"
)

// Prefixed is log with every key prefixed, so that another budget (the
// MySQL leg's, the token endpoint's) counts in the same store table
// apart from the local login's.
func Prefixed(log FailureLog, prefix string) FailureLog { return prefixed{log, prefix} }

type prefixed struct {
	log    FailureLog
	prefix string
}

func (p prefixed) AddLoginFailure(ctx context.Context, key string) error {
	return p.log.AddLoginFailure(ctx, p.prefix+key)
}

func (p prefixed) LoginFailuresSince(ctx context.Context, key string, since time.Time) (int, time.Time, error) {
	return p.log.LoginFailuresSince(ctx, p.prefix+key, since)
}
