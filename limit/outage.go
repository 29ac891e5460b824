package limit

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Outage keeps a failure that repeats (a store that is down, an accept
// that fails) from filling the log: the first failure is logged at once,
// then one summary per interval while it lasts ("poll event log: store
// unreachable for 30s, 150 attempts"), and one line when it ends. It is
// safe for concurrent use.
type Outage struct {
	log   *slog.Logger
	what  string // what failed: "poll event log"
	state string // what is wrong while it lasts: "store unreachable"
	every time.Duration

	mu       sync.Mutex
	start    time.Time // zero: no outage
	logged   time.Time // when the last line about it was written
	attempts int
}

// NewOutage logs through log; every is the least time between two
// summaries (30s when zero).
func NewOutage(log *slog.Logger, what, state string, every time.Duration) *Outage {
	if every <= 0 {
		every = 30 * time.Second
	}
	return &Outage{log: log, what: what, state: state, every: every}
}

// Failed records one failed attempt and logs it if the outage starts now
// or its last line is older than the interval. It reports whether it
// logged.
func (o *Outage) Failed(err error) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	o.attempts++
	switch {
	case o.start.IsZero():
		o.start, o.logged, o.attempts = now, now, 1
		o.log.Warn(o.what+": "+o.state, "err", err)
		return true
	case now.Sub(o.logged) >= o.every:
		o.logged = now
		o.log.Warn(o.Summary(now), "err", err)
		return true
	}
	return false
}

// OK ends an outage, if one is on, with a line that says how long it
// lasted.
func (o *Outage) OK() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.start.IsZero() {
		return
	}
	o.log.Info(fmt.Sprintf("%s: recovered after %v, %d failed attempts", o.what, time.Since(o.start).Round(time.Second), o.attempts))
	o.start, o.attempts = time.Time{}, 0
}

// Summary words the outage as it stands at now.
func (o *Outage) Summary(now time.Time) string {
	return fmt.Sprintf("%s: %s for %v, %d attempts", o.what, o.state, now.Sub(o.start).Round(time.Second), o.attempts)
}
