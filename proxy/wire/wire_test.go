package wire

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
			r, err := ParseHandshakeResponse(all[tt.file])
			if err != nil {
				t.Fatal(err)
			}
			if r.User != tt.user || r.DB != tt.db || r.Plugin != tt.plugin || len(r.AuthData) != tt.authLen {
				t.Fatalf("got user %q db %q plugin %q auth %d bytes", r.User, r.DB, r.Plugin, len(r.AuthData))
			}
			// What the proxy sends the backend must parse back the same.
			again, err := ParseHandshakeResponse(r.Encode(false))
			if err != nil {
				t.Fatal(err)
			}
			if again.User != r.User || again.DB != r.DB || again.Caps != r.Caps || again.Charset != r.Charset || !bytes.Equal(again.Attrs, r.Attrs) || !bytes.Equal(again.AuthData, r.AuthData) {
				t.Fatalf("round trip changed the response:\n%+v\n%+v", r, again)
			}
		})
	}
	t.Run("SSLRequest", func(t *testing.T) {
		r, err := ParseHandshakeResponse(all["sslrequest.bin"])
		if err != nil || r.Caps&mysql.CLIENT_SSL == 0 || r.User != "" {
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
			if _, err := ParseHandshakeResponse(tt.p); err == nil {
				t.Fatal("parsed a malformed response")
			}
		})
	}
}

func TestGreetingRoundTrip(t *testing.T) {
	g, err := ParseGreeting(captured(t, "greeting")["mariadb-10.11-greeting.bin"])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(g.Version, "MariaDB") || len(g.Salt) != 20 || g.Plugin != mysql.AUTH_NATIVE_PASSWORD || g.Caps&mysql.CLIENT_PROTOCOL_41 == 0 {
		t.Fatalf("parsed greeting: %+v", g)
	}
	again, err := ParseGreeting(g.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if again.Version != g.Version || again.Caps != g.Caps || again.ExtCaps != g.ExtCaps || !bytes.Equal(again.Salt, g.Salt) || again.Status != g.Status || again.Charset != g.Charset {
		t.Fatalf("round trip changed the greeting:\n%+v\n%+v", g, again)
	}
}

// FuzzParseHandshakeResponse feeds untrusted client bytes to the parser;
// it must never panic, and what it accepts must encode and parse again.
func FuzzParseHandshakeResponse(f *testing.F) {
	for _, p := range captured(f, "") {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := ParseHandshakeResponse(p)
		if err != nil || len(p) == SSLRequestLen {
			return
		}
		if _, err := ParseHandshakeResponse(r.Encode(false)); err != nil && len(r.AuthData) < 251 {
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
		ParseGreeting(p)
	})
}

// TestErrPacketSendsServerCodes: libmariadb shows "Received malformed
// packet" for a client-library code from a server, so ErrPacket never
// sends one.
func TestErrPacketSendsServerCodes(t *testing.T) {
	for _, tt := range []struct {
		name       string
		code, want uint16
	}{
		{"server code kept", 1429, 1429},
		{"MariaDB server code kept", 1927, 1927},
		{"libmysql client code (CR_CONN_HOST_ERROR)", 2003, mysql.ER_UNKNOWN_ERROR},
		{"libmysql client code (CR_SERVER_LOST)", 2013, mysql.ER_UNKNOWN_ERROR},
		{"Connector/C client code", 5001, mysql.ER_UNKNOWN_ERROR},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := ParseErrPacket(ErrPacket(tt.code, "portcullis: why"))
			if code != tt.want || msg != "portcullis: why" {
				t.Fatalf("sent %d %q, want %d", code, msg, tt.want)
			}
		})
	}
}
