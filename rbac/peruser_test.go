package rbac

import (
	"strings"
	"testing"
)

// TestPersonalName: names fit MySQL 8's 32 characters, read like the
// identity, and differ for identities (or roles) that read alike.
func TestPersonalName(t *testing.T) {
	long := strings.Repeat("very.long.name.", 10) + "@example.com"
	seen := map[string]string{}
	for _, c := range []struct{ identity, role string }{
		{"alice@example.com", "analyst"},
		{"Alice@Example.com", "dba"},
		{"alice.example.com", "analyst"},
		{"alice_example_com", "analyst"},
		{long, "analyst"},
		{long + "x", "analyst"},
		{"🙂", "analyst"},
	} {
		n := PersonalName(c.identity, c.role)
		if len(n) > maxUserName || !strings.HasPrefix(n, personalPrefix) || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("%q: name %q", c.identity, n)
		}
		if prev, dup := seen[n]; dup {
			t.Errorf("%q and %q share the name %s", prev, c.identity, n)
		}
		seen[n] = c.identity
	}
	if PersonalName("Alice@Example.com", "analyst") != PersonalName("alice@example.com", "analyst") {
		t.Error("the name depends on the case of the identity")
	}
	if got := PersonalName("alice@example.com", "analyst"); !strings.HasPrefix(got, "pu_alice_example_co") {
		t.Errorf("not readable: %s", got)
	}
}
