package portal

import (
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

func TestSealer(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := newSealer(key, "purpose A")
	sealed := s.seal([]byte("secret"), "ctx-1")
	if strings.Contains(sealed, "secret") {
		t.Fatal("sealed value shows the plaintext")
	}
	if got, err := s.open(sealed, "ctx-1"); err != nil || string(got) != "secret" {
		t.Fatalf("open: %q %v", got, err)
	}
	tests := []struct {
		name   string
		s      sealer
		sealed string
		aad    string
	}{
		{"another context", s, sealed, "ctx-2"},
		{"another purpose", newSealer(key, "purpose B"), sealed, "ctx-1"},
		{"another key", newSealer([]byte("fedcba9876543210fedcba9876543210"), "purpose A"), sealed, "ctx-1"},
		{"tampered", s, sealed[:len(sealed)-2] + "AA", "ctx-1"},
		{"truncated", s, sealed[:10], "ctx-1"},
		{"not base64", s, "!!!", "ctx-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.s.open(tt.sealed, tt.aad); err == nil {
				t.Fatal("opened")
			}
		})
	}
}

func TestPKCE(t *testing.T) {
	v := oauth2.GenerateVerifier()
	if !pkceMatches(v, oauth2.S256ChallengeFromVerifier(v)) {
		t.Fatal("the right verifier was refused")
	}
	if pkceMatches(oauth2.GenerateVerifier(), oauth2.S256ChallengeFromVerifier(v)) {
		t.Fatal("another verifier was accepted")
	}
	if pkceMatches("short", oauth2.S256ChallengeFromVerifier("short")) {
		t.Fatal("a verifier under 43 characters was accepted (RFC 7636 4.1)")
	}
}

func TestRedirectProblem(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"http://127.0.0.1:53682/callback", true},
		{"http://[::1]:53682/callback", true},
		{"http://localhost:53682/callback", true},
		{OOBRedirect, true},
		{"http://127.0.0.1/callback", false}, // no port: not a listener the CLI chose
		{"https://attacker.example/callback", false},
		{"http://attacker.example:80/callback", false},
		{"http://127.0.0.1.attacker.example:80/cb", false},
		{"http://user@127.0.0.1:5000/cb", false},
		{"http://127.0.0.1:5000/cb#frag", false},
		{"javascript:alert(1)", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := redirectProblem(tt.uri) == ""; got != tt.ok {
			t.Errorf("redirectProblem(%q) ok = %v, want %v", tt.uri, got, tt.ok)
		}
	}
}

func TestShortCode(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c := shortCode()
		if len(c) != 11 || c[5] != '-' || strings.ContainsAny(c, "01ILOU") {
			t.Fatalf("code %q", c)
		}
		if seen[c] {
			t.Fatalf("code %q repeated", c)
		}
		seen[c] = true
		if got := normalizeCode(" " + strings.ToLower(c) + "\n"); got != strings.ReplaceAll(c, "-", "") {
			t.Fatalf("normalizeCode(%q) = %q", c, got)
		}
	}
	long := randomToken(32)
	if normalizeCode(long) != long {
		t.Fatal("a long code was changed")
	}
}

func TestHashSecretSeparatesKinds(t *testing.T) {
	if string(hashSecret("code", "x")) == string(hashSecret("refresh", "x")) {
		t.Fatal("a code and a refresh token of the same value hash alike")
	}
}
