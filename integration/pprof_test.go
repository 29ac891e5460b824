package integration

import (
	"net/http"
	"testing"
)

// TestPProfListener: listen.pprof serves Go's profiler there and only
// there; the public portal does not.
func TestPProfListener(t *testing.T) {
	addr := freeAddr(t)
	h := startHarness(t, harnessOpts{pprof: addr})
	for _, c := range []struct {
		url  string
		want int
	}{
		{"http://" + addr + "/debug/pprof/cmdline", http.StatusOK},
		{"http://" + addr + "/debug/pprof/heap", http.StatusOK},
		{"http://" + addr + "/v1/token", http.StatusNotFound}, // nothing of the portal
		{h.http + "/debug/pprof/cmdline", http.StatusNotFound},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatalf("GET %s: %v", c.url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.url, resp.StatusCode, c.want)
		}
	}
}
