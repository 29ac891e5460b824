package scim_test

import (
	"net/url"
	"testing"
)

// TestUserNamesNormalised: the SCIM front-end stores a user name trimmed
// and finds it by any spelling auth/username folds to the same name (the
// attack: " alice@example.com" created beside alice).
func TestUserNamesNormalised(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		r := h.do("POST", "/Users", `{"schemas":["`+urnUser+`"],"userName":"  Carol@Example.com "}`)
		if r.status != 201 || r.body["userName"] != "Carol@Example.com" {
			t.Fatalf("create: %d %s, want 201 with the name trimmed", r.status, r.raw)
		}
		id, _ := r.body["id"].(string)
		for _, f := range []string{` carol@example.com`, `CAROL@EXAMPLE.COM`, `ｃａｒｏｌ@example.com`} {
			r := h.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "`+f+`"`), nil)
			if r.status != 200 || r.body["totalResults"] != float64(1) {
				t.Fatalf("filter userName eq %q: %d %s, want carol", f, r.status, r.raw)
			}
		}
		// Not the fast path: an "or" makes the filter run in Go.
		r = h.do("GET", "/Users?filter="+url.QueryEscape(`userName eq " CAROL@example.com" or userName eq "nobody"`), nil)
		if r.status != 200 || r.body["totalResults"] != float64(1) {
			t.Fatalf("filter with or: %d %s, want carol", r.status, r.raw)
		}
		r = h.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "carol@example.com\u0000"`), nil)
		if r.status != 200 || r.body["totalResults"] != float64(0) {
			t.Fatalf("filter on a refused name: %d %s, want an empty list", r.status, r.raw)
		}
		r = h.do("GET", "/Users/"+id, nil)
		if r.status != 200 || r.body["userName"] != "Carol@Example.com" {
			t.Fatalf("read back: %d %s", r.status, r.raw)
		}
	})
}
