package auth

import (
	"testing"
	"time"
)

func TestVerifiedCache(t *testing.T) {
	c := newVerifiedCache(10)
	k := func(b byte) [32]byte { return [32]byte{b} }

	c.put(k(1), Identity{Username: "a", ExpiresAt: time.Now().Add(time.Hour)})
	if id, ok := c.get(k(1)); !ok || id.Username != "a" {
		t.Fatal("a fresh entry is missing")
	}
	c.put(k(2), Identity{Username: "b", ExpiresAt: time.Now().Add(-time.Second)})
	if _, ok := c.get(k(2)); ok {
		t.Fatal("an entry outlived its token's exp")
	}
	c.put(k(3), Identity{Username: "c"}) // no exp: bounded by the TTL
	if e := c.entries[k(3)]; time.Until(e.expires) > verifiedCacheTTL {
		t.Fatalf("entry lives %v, more than %v", time.Until(e.expires), verifiedCacheTTL)
	}
	for i := range 50 {
		c.put(k(byte(10+i)), Identity{ExpiresAt: time.Now().Add(time.Hour)})
	}
	if len(c.entries) > 10 {
		t.Fatalf("%d entries, bound is 10", len(c.entries))
	}
}
