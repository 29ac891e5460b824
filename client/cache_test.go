package client

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	c := &Cache{Path: filepath.Join(t.TempDir(), "sub", "tokens.json")}
	now := time.Now()
	aws := Entry{Server: "https://p.test/", AccessToken: "a", Method: "aws", IssuedAt: now.Add(-5 * time.Minute), ExpiresAt: now.Add(10 * time.Minute)}
	gcp := Entry{Server: "https://p.test", AccessToken: "g", Method: "gcp", IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
	for _, e := range []Entry{aws, gcp} {
		if err := c.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	info, err := os.Stat(c.Path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("cache file mode: %v %v", info, err)
	}
	if dir, _ := os.Stat(filepath.Dir(c.Path)); dir.Mode().Perm() != 0o700 {
		t.Fatalf("cache folder mode %v", dir.Mode().Perm())
	}
	if e, ok := c.Get("https://p.test", "aws"); !ok || e.AccessToken != "a" {
		t.Fatalf("aws entry: %+v", e)
	}
	if e, ok := c.Get("https://p.test/", "auto"); !ok || e.AccessToken != "g" {
		t.Fatalf("auto should give the longest-lived fresh entry: %+v", e)
	}
	if _, ok := c.Get("https://other.test", ""); ok {
		t.Fatal("an entry of another server")
	}
}

func TestFresh(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		e    Entry
		want bool
	}{
		{"new", Entry{AccessToken: "x", IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute)}, true},
		{"more than a third left", Entry{AccessToken: "x", IssuedAt: now.Add(-9 * time.Minute), ExpiresAt: now.Add(6 * time.Minute)}, true},
		{"less than a third left", Entry{AccessToken: "x", IssuedAt: now.Add(-11 * time.Minute), ExpiresAt: now.Add(4 * time.Minute)}, false},
		{"expired", Entry{AccessToken: "x", IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)}, false},
		{"empty", Entry{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Fresh(now); got != tt.want {
				t.Fatalf("Fresh = %v", got)
			}
		})
	}
}

func TestDamagedCacheCostsOneToken(t *testing.T) {
	c := &Cache{Path: filepath.Join(t.TempDir(), "tokens.json")}
	os.WriteFile(c.Path, []byte("{not json"), 0o600)
	if _, ok := c.Get("https://p.test", ""); ok {
		t.Fatal("got an entry from a damaged cache")
	}
	if err := c.Put(Entry{Server: "https://p.test", AccessToken: "x", Method: "gcp"}); err != nil {
		t.Fatalf("a damaged cache must be replaced: %v", err)
	}
}
