package saml

import (
	"sync"
	"time"
)

// replayCache remembers assertion IDs until the assertion expires, so a
// captured SAML response cannot be posted again. It is bounded: when
// full of unexpired IDs it refuses new ones rather than forget old ones.
type replayCache struct {
	mu    sync.Mutex
	max   int
	seen  map[string]time.Time
	swept time.Time
}

func newReplayCache(max int) *replayCache {
	if max <= 0 {
		max = 100000
	}
	return &replayCache{max: max, seen: map[string]time.Time{}}
}

// add records id until expires; replayed when id is already there, full
// when the cache has no room.
func (c *replayCache) add(id string, expires time.Time) (replayed, full bool) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[id]; ok && exp.After(now) {
		return true, false
	}
	if len(c.seen) >= c.max || now.Sub(c.swept) > time.Minute {
		for k, exp := range c.seen {
			if !exp.After(now) {
				delete(c.seen, k)
			}
		}
		c.swept = now
	}
	if len(c.seen) >= c.max {
		return false, true
	}
	c.seen[id] = expires
	return false, false
}
