package proxy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// captured returns the packets recorded from real clients and servers
// (testdata/handshake: the mariadb CLI, go-sql-driver in both auth modes,
// an SSLRequest, MariaDB 10.11's greeting).
func captured(t testing.TB, match string) map[string][]byte {
	files, _ := filepath.Glob(filepath.Join("testdata", "handshake", "*.bin"))
	out := map[string][]byte{}
	for _, f := range files {
		if strings.Contains(f, match) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = data
		}
	}
	if len(out) == 0 {
		t.Fatalf("no captured packets matching %q", match)
	}
	return out
}

func TestParseCapturedResponses(t *testing.T) {
	tests := []struct {
		name, file, user, db, plugin string
		authLen                      int
	}{
		{"mariadb CLI with a database", "mariadb-cli-with-db.bin", "alice@example.com", "test", "mysql_native_password", 20},
		{"mariadb CLI, identity/role", "mariadb-cli-3kb-password-role.bin", "bob@corp.test/writer", "", "mysql_native_password", 20},
		{"go-sql-driver, cleartext allowed", "go-sql-driver-cleartext.bin", "dana@example.com/writer", "pcit", "mysql_native_password", 20},
		{"go-sql-driver", "go-sql-driver-sha2.bin", "dana@example.com/writer", "pcit", "mysql_native_password", 20},
	}
	all := captured(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseHandshakeResponse(all[tt.file])
			if err != nil {
				t.Fatal(err)
			}
			if r.user != tt.user || r.db != tt.db || r.plugin != tt.plugin || len(r.authData) != tt.authLen {
				t.Fatalf("got user %q db %q plugin %q auth %d bytes", r.user, r.db, r.plugin, len(r.authData))
			}
			// What the proxy sends the backend must parse back the same.
			again, err := parseHandshakeResponse(r.encode(false))
			if err != nil {
				t.Fatal(err)
			}
			if again.user != r.user || again.db != r.db || again.caps != r.caps || again.charset != r.charset || !bytes.Equal(again.attrs, r.attrs) || !bytes.Equal(again.authData, r.authData) {
				t.Fatalf("round trip changed the response:\n%+v\n%+v", r, again)
			}
		})
	}
	t.Run("SSLRequest", func(t *testing.T) {
		r, err := parseHandshakeResponse(all["sslrequest.bin"])
		if err != nil || r.caps&mysql.CLIENT_SSL == 0 || r.user != "" {
			t.Fatalf("SSLRequest: %+v, %v", r, err)
		}
	})
}

func TestParseBadResponses(t *testing.T) {
	good := captured(t, "with-db")["mariadb-cli-with-db.bin"]
	tests := []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"short", good[:20]},
		{"user without NUL", good[:40]},
		{"auth length past the end", append(append([]byte{}, good[:32]...), "bob\x00\xfc\xff\xff"...)},
		{"pre-4.1 protocol", append([]byte{0, 0, 0, 0}, good[4:]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseHandshakeResponse(tt.p); err == nil {
				t.Fatal("parsed a malformed response")
			}
		})
	}
}

func TestGreetingRoundTrip(t *testing.T) {
	g, err := parseGreeting(captured(t, "greeting")["mariadb-10.11-greeting.bin"])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(g.version, "MariaDB") || len(g.salt) != 20 || g.plugin != mysql.AUTH_NATIVE_PASSWORD || g.caps&mysql.CLIENT_PROTOCOL_41 == 0 {
		t.Fatalf("parsed greeting: %+v", g)
	}
	again, err := parseGreeting(g.encode())
	if err != nil {
		t.Fatal(err)
	}
	if again.version != g.version || again.caps != g.caps || again.extCaps != g.extCaps || !bytes.Equal(again.salt, g.salt) || again.status != g.status || again.charset != g.charset {
		t.Fatalf("round trip changed the greeting:\n%+v\n%+v", g, again)
	}
}

func TestKillPattern(t *testing.T) {
	tests := []struct {
		name, q string
		match   bool
		id      string
	}{
		{"plain", "KILL 1073741825", true, "1073741825"},
		{"query", "kill query 1073741825", true, "1073741825"},
		{"connection with semicolon", "  KILL CONNECTION 42 ;", true, "42"},
		{"mariadb hard", "KILL HARD QUERY 7", true, "7"},
		{"by user is not a thread id", "KILL USER bob", false, ""},
		{"select", "SELECT 1", false, ""},
		{"two statements", "KILL 5; DROP TABLE x", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := killPattern.FindStringSubmatch(tt.q)
			if (m != nil) != tt.match || (m != nil && m[3] != tt.id) {
				t.Fatalf("match %v (%q), want %v %q", m != nil, m, tt.match, tt.id)
			}
			if tt.match && !startsWithKill([]byte(tt.q)) {
				t.Fatal("startsWithKill missed it")
			}
		})
	}
}

// FuzzParseHandshakeResponse feeds untrusted client bytes to the parser;
// it must never panic, and what it accepts must encode and parse again.
func FuzzParseHandshakeResponse(f *testing.F) {
	for _, p := range captured(f, "") {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := parseHandshakeResponse(p)
		if err != nil || len(p) == sslRequestLen {
			return
		}
		if _, err := parseHandshakeResponse(r.encode(false)); err != nil && len(r.authData) < 251 {
			t.Fatalf("re-encoded response does not parse: %v", err)
		}
	})
}

// FuzzParseGreeting: the backend's greeting is parsed too.
func FuzzParseGreeting(f *testing.F) {
	for _, p := range captured(f, "greeting") {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		parseGreeting(p)
	})
}
