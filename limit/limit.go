// Package limit holds the failure budgets that slow down guessing: a
// source address or user name may fail only so often per minute. Requests
// that succeed cost nothing.
//
// Outage is the other side of repeated failure: what portcullis itself
// retries (an event poll, an accept) logs once and then a summary.
package limit

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failures gives each key (an address, a user name) a budget of failures
// per minute. It is safe for concurrent use; a zero per-minute budget
// never limits.
type Failures struct {
	perMinute int
	mu        sync.Mutex
	byKey     map[string]*rate.Limiter
	swept     time.Time
}

// NewFailures allows perMinute failures per key per minute (burst the same).
func NewFailures(perMinute int) *Failures {
	return &Failures{perMinute: perMinute, byKey: map[string]*rate.Limiter{}, swept: time.Now()}
}

func (f *Failures) get(key string) *rate.Limiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.swept) > 10*time.Minute { // forget keys whose budget is full again
		for k, lim := range f.byKey {
			if lim.Tokens() >= float64(f.perMinute) {
				delete(f.byKey, k)
			}
		}
		f.swept = time.Now()
	}
	lim, ok := f.byKey[key]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(float64(f.perMinute)/60), f.perMinute)
		f.byKey[key] = lim
	}
	return lim
}

// Allow reports whether key still has budget, and otherwise how long
// until it has.
func (f *Failures) Allow(key string) (wait time.Duration, ok bool) {
	if f == nil || f.perMinute <= 0 {
		return 0, true
	}
	lim := f.get(key)
	if lim.Tokens() >= 1 {
		return 0, true
	}
	r := lim.Reserve()
	defer r.Cancel()
	return r.Delay(), false
}

// Failed spends one unit of key's budget.
func (f *Failures) Failed(key string) {
	if f != nil && f.perMinute > 0 {
		f.get(key).Allow()
	}
}

// AddressKey is the budget key of a client address: an IPv4 address as
// it is, an IPv6 address by its /64, which one client (one subnet) holds
// whole and could otherwise rotate through for a fresh budget each time.
// What is not an IP address is its own key.
func AddressKey(host string) string {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 64).Masked().String()
}
