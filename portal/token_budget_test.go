package portal_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/portal"
)

// TestTokenBudgetPerIPv6Subnet: the refused-exchange budget counts an IPv6
// client by its /64, so rotating through the addresses of one's own subnet
// buys no fresh budget; another /64 and IPv4 clients keep their own.
func TestTokenBudgetPerIPv6Subnet(t *testing.T) {
	al, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	srv := portal.New(portal.Options{Audit: al, FailuresPerMinute: 3})
	post := func(remote string) int {
		r := httptest.NewRequest(http.MethodPost, "/v1/token", strings.NewReader(url.Values{"grant_type": {"nope"}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w.Code
	}
	for i, a := range []string{"[2001:db8:1:2::1]:5000", "[2001:db8:1:2::2]:5000", "[2001:db8:1:2:ffff::3]:5000"} {
		if code := post(a); code != http.StatusBadRequest {
			t.Fatalf("refusal %d from %s: %d, want 400", i, a, code)
		}
	}
	if code := post("[2001:db8:1:2:abcd::99]:5000"); code != http.StatusTooManyRequests {
		t.Fatalf("a fresh address in the same /64: %d, want 429", code)
	}
	if code := post("[2001:db8:1:3::1]:5000"); code != http.StatusBadRequest {
		t.Fatalf("another /64: %d, want its own budget (400)", code)
	}
	if code := post("192.0.2.1:5000"); code != http.StatusBadRequest {
		t.Fatalf("an IPv4 client: %d, want its own budget (400)", code)
	}
}
