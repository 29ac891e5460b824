package auth

import (
	"sync"
	"time"
)

// Apps reconnect with one token many times: each token is verified once,
// then found here by its SHA-256 (the token itself is not kept).
const (
	verifiedCacheSize = 10000
	verifiedCacheTTL  = 5 * time.Minute // an entry lives at most this long, and never past the token's exp
)

// verifiedCache is a bounded map of verified tokens. It holds only what
// verification proves (signature, issuer, audience, times); everything
// that can change within a token's life (the user deactivated, a role
// lost) is checked on every connection after it, so a cached token never
// outlives a revocation. A reload builds a new Verifier and so a new cache.
type verifiedCache struct {
	mu      sync.Mutex
	max     int
	entries map[[32]byte]cachedIdentity
}

type cachedIdentity struct {
	id      Identity
	expires time.Time
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[[32]byte]cachedIdentity)}
}

func (c *verifiedCache) get(key [32]byte) (Identity, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || time.Now().After(e.expires) {
		return Identity{}, false
	}
	return e.id, true
}

func (c *verifiedCache) put(key [32]byte, id Identity) {
	expires := time.Now().Add(verifiedCacheTTL)
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(expires) {
		expires = id.ExpiresAt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Full: drop what has expired, and if that is not enough, an
		// arbitrary tenth (map order): simple, bounded, and a miss only
		// costs one verification.
		now := time.Now()
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max*9/10 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = cachedIdentity{id: id, expires: expires}
}
