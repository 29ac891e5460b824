package tunnel

import (
	"bytes"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestGreetingRoundTrip(t *testing.T) {
	g := greeting{version: "11.4.2-MariaDB", connID: 42, salt: bytes.Repeat([]byte{'s'}, 20),
		caps:    mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_SSL,
		extCaps: 0x1c, charset: 45, status: 2, plugin: mysql.AUTH_NATIVE_PASSWORD}
	got, err := parseGreeting(g.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.version != g.version || got.connID != 42 || !bytes.Equal(got.salt, g.salt) || got.caps != g.caps ||
		got.extCaps != g.extCaps || got.charset != 45 || got.status != 2 || got.plugin != g.plugin {
		t.Fatalf("round trip: %+v", got)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	r := response{caps: mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
		mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_CONNECT_ATTRS,
		maxPacket: 1 << 24, charset: 45, user: "alice@corp.test/reader", authData: bytes.Repeat([]byte("t"), 900),
		db: "pcit", plugin: mysql.AUTH_CLEAR_PASSWORD, attrs: appendAttr(nil, "_client_name", "libmariadb")}
	got, err := parseResponse(r.encode(false))
	if err != nil {
		t.Fatal(err)
	}
	if got.user != r.user || !bytes.Equal(got.authData, r.authData) || got.db != "pcit" || got.plugin != r.plugin || !bytes.Equal(got.attrs, r.attrs) {
		t.Fatalf("round trip: %+v", got)
	}
	if ssl := r.encode(true); len(ssl) != sslRequestLen {
		t.Fatalf("SSLRequest of %d bytes", len(ssl))
	}
}

// FuzzParse: the tunnel reads handshake packets from local tools and the
// proxy; no input may panic it.
func FuzzParse(f *testing.F) {
	g := greeting{version: "v", salt: bytes.Repeat([]byte{'s'}, 20), caps: mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH, plugin: "p"}
	f.Add(g.encode())
	r := response{caps: mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_CONNECT_ATTRS | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
		user: "u", authData: []byte("x"), attrs: appendAttr(nil, "k", "v")}
	f.Add(r.encode(false))
	f.Add([]byte{0xff, 0x15, 0x04, '#', '2', '8', '0', '0', '0', 'n', 'o'})
	f.Fuzz(func(t *testing.T, p []byte) {
		parseGreeting(p)
		parseResponse(p)
	})
}
