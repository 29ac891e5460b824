package saml

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// TestGoxmldsigVersion guards go.mod: crewjam/saml asks for goxmldsig
// 1.4.0, which has a signature bypass (CVE-2026-33487); portcullis must
// require 1.6.1 or later, so that minimal version selection links it.
// Test binaries carry no dependency list in their build info, so go.mod
// is read; the build info is checked too when it has one.
func TestGoxmldsigVersion(t *testing.T) {
	const mod = "github.com/russellhaering/goxmldsig"
	data, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	required := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "replace") && strings.Contains(line, mod) {
			t.Fatalf("go.mod replaces %s: keep the plain requirement of v1.6.1 or later", mod)
		}
		if f := strings.Fields(strings.TrimPrefix(line, "require ")); len(f) >= 2 && f[0] == mod {
			required = f[1]
		}
	}
	if required == "" {
		t.Fatalf("go.mod does not require %s: add it at v1.6.1 or later (crewjam/saml alone brings 1.4.0, CVE-2026-33487)", mod)
	}
	if !atLeast(required, 1, 6, 1) {
		t.Fatalf("go.mod requires %s %s: raise it to v1.6.1 or later (CVE-2026-33487)", mod, required)
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == mod && !atLeast(d.Version, 1, 6, 1) {
				t.Fatalf("%s %s is linked: CVE-2026-33487", mod, d.Version)
			}
		}
	}
}

// atLeast compares a vMAJOR.MINOR.PATCH[-pre] version.
func atLeast(v string, major, minor, patch int) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) != 3 {
		return false
	}
	got := make([]int, 3)
	for i, p := range parts {
		p, _, _ = strings.Cut(p, "-")
		n, err := strconv.Atoi(p)
		if err != nil {
			return false
		}
		got[i] = n
	}
	for i, want := range []int{major, minor, patch} {
		if got[i] != want {
			return got[i] > want
		}
	}
	return true
}

func TestAtLeast(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{{"v1.4.0", false}, {"v1.6.0", false}, {"v1.6.1", true}, {"v1.7.0", true}, {"v2.0.0", true}, {"v1.10.0", true}, {"garbage", false}} {
		if got := atLeast(tt.v, 1, 6, 1); got != tt.want {
			t.Errorf("atLeast(%s) = %v", tt.v, got)
		}
	}
}
