// Package wire is the MySQL client/server protocol as portcullis speaks
// it on both sides: packet framing, the server greeting, the client's
// HandshakeResponse41 (and SSLRequest), and OK/ERR packets. The proxy uses
// it for both legs and the CLI's tunnel for its local leg. It parses
// untrusted bytes, so every parser is fuzzed and bounds-checked; it does
// no I/O beyond the reader and writer it is given.
package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// MaxPayload is the largest payload of one MySQL packet; a longer one is
// split and continued in the next packet.
const MaxPayload = 1<<24 - 1

// ReadPacket reads one whole MySQL packet and returns its payload and
// sequence id. A payload longer than limit is refused without reading it,
// so a hostile client cannot make the proxy buffer megabytes before auth.
func ReadPacket(r io.Reader, limit int) (payload []byte, seq byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, err
	}
	n := int(uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16)
	if n > limit {
		return nil, hdr[3], &TooLargeError{Size: n, Limit: limit}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, 0, err
	}
	return payload, hdr[3], nil
}

// TooLargeError reports a handshake packet over the proxy's limit.
type TooLargeError struct{ Size, Limit int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("packet of %d bytes exceeds the %d-byte limit", e.Size, e.Limit)
}

// WritePacket frames payload (shorter than MaxPayload: handshake packets
// are) and writes it in one call.
func WritePacket(w io.Writer, seq byte, payload []byte) error {
	buf := make([]byte, 4, 4+len(payload))
	buf[0], buf[1], buf[2], buf[3] = byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), seq
	_, err := w.Write(append(buf, payload...))
	return err
}

// ErrPacket builds an ERR packet. The message is what a person reads in
// their client: it must never carry a token, password or key. code must be
// a server error code: libmariadb turns a code from a client library's
// range (2000-2999, 5000-5999) into 2027 "Received malformed packet"
// without the message, so such a code is sent as 1105 (ER_UNKNOWN_ERROR).
func ErrPacket(code uint16, message string) []byte {
	if IsClientCode(code) {
		code = mysql.ER_UNKNOWN_ERROR
	}
	state, ok := mysql.MySQLState[code]
	if !ok {
		state = mysql.DEFAULT_MYSQL_STATE
	}
	p := []byte{mysql.ERR_HEADER, byte(code), byte(code >> 8), '#'}
	p = append(p, state...)
	return append(p, message...)
}

// IsClientCode reports whether code is in a client library's own range,
// which no server may send.
func IsClientCode(code uint16) bool {
	return code >= 2000 && code <= 2999 || code >= 5000 && code <= 5999
}

// ParseErrPacket reads the code and message of an ERR packet.
func ParseErrPacket(p []byte) (code uint16, message string) {
	if len(p) < 3 || p[0] != mysql.ERR_HEADER {
		return mysql.ER_UNKNOWN_ERROR, "malformed error packet"
	}
	code = binary.LittleEndian.Uint16(p[1:3])
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		rest = rest[6:]
	}
	return code, string(rest)
}

// CString reads a NUL-terminated string starting at p[pos:].
func CString(p []byte, pos int) (s []byte, next int, ok bool) {
	if pos > len(p) {
		return nil, pos, false
	}
	i := bytes.IndexByte(p[pos:], 0)
	if i < 0 {
		return nil, pos, false
	}
	return p[pos : pos+i], pos + i + 1, true
}

// lenencBytes reads a length-encoded string starting at p[pos:].
func lenencBytes(p []byte, pos int) (s []byte, next int, ok bool) {
	n, w, ok := lenencInt(p, pos)
	if !ok || uint64(len(p)-pos-w) < n {
		return nil, pos, false
	}
	start := pos + w
	return p[start : start+int(n)], start + int(n), true
}

// lenencInt reads a length-encoded integer at p[pos:]. It is written here
// because go-mysql's LengthEncodedInt indexes past the end of truncated
// input (found by FuzzParseHandshakeResponse), and these bytes come from
// unauthenticated clients.
func lenencInt(p []byte, pos int) (n uint64, width int, ok bool) {
	if pos >= len(p) {
		return 0, 0, false
	}
	switch p[pos] {
	case 0xfb, 0xff: // NULL, and an ERR marker: neither is a length
		return 0, 0, false
	case 0xfc:
		width = 3
	case 0xfd:
		width = 4
	case 0xfe:
		width = 9
	default:
		return uint64(p[pos]), 1, true
	}
	if len(p)-pos < width {
		return 0, 0, false
	}
	for i := width - 1; i >= 1; i-- {
		n = n<<8 | uint64(p[pos+i])
	}
	return n, width, true
}

// Greeting is the server's Initial Handshake packet (protocol version 10).
// The proxy parses the backend's and sends its own in the same shape, so the
// client sees the backend's version, capabilities, collation and status.
type Greeting struct {
	Version string
	ConnID  uint32
	Salt    []byte // auth-plugin-data, 20 bytes for the plugins we use
	Caps    uint32
	ExtCaps uint32 // MariaDB's extended capabilities, when the CLIENT_MYSQL bit (bit 0) is clear
	Charset byte
	Status  uint16
	Plugin  string
}

var ErrMalformed = errors.New("malformed packet")

func ParseGreeting(p []byte) (Greeting, error) {
	var g Greeting
	if len(p) < 1 {
		return g, ErrMalformed
	}
	if p[0] == mysql.ERR_HEADER {
		code, msg := ParseErrPacket(p)
		return g, &mysql.MyError{Code: code, Message: msg}
	}
	if p[0] != 10 {
		return g, errors.New("unsupported protocol version")
	}
	version, pos, ok := CString(p, 1)
	if !ok || len(p) < pos+4+8+1+2 {
		return g, ErrMalformed
	}
	g.Version = string(version)
	g.ConnID = binary.LittleEndian.Uint32(p[pos:])
	pos += 4
	g.Salt = append([]byte(nil), p[pos:pos+8]...)
	pos += 8 + 1
	g.Caps = uint32(binary.LittleEndian.Uint16(p[pos:]))
	pos += 2
	if len(p) < pos+1+2+2+1+10 {
		return g, nil // pre-4.1 server: nothing more
	}
	g.Charset = p[pos]
	g.Status = binary.LittleEndian.Uint16(p[pos+1:])
	g.Caps |= uint32(binary.LittleEndian.Uint16(p[pos+3:])) << 16
	saltLen := int(p[pos+5])
	pos += 6
	if g.Caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		g.ExtCaps = binary.LittleEndian.Uint32(p[pos+6:])
	}
	pos += 10
	if g.Caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		n := max(13, saltLen-8)
		if len(p) < pos+n {
			return g, ErrMalformed
		}
		part2 := p[pos : pos+n]
		if part2[len(part2)-1] == 0 {
			part2 = part2[:len(part2)-1]
		}
		g.Salt = append(g.Salt, part2...)
		pos += n
	}
	if g.Caps&mysql.CLIENT_PLUGIN_AUTH != 0 {
		name, _, ok := CString(p, pos)
		if !ok { // some servers omit the final NUL
			name = p[pos:]
		}
		g.Plugin = string(name)
	}
	return g, nil
}

func (g Greeting) Encode() []byte {
	p := make([]byte, 0, 128)
	p = append(p, 10)
	p = append(p, g.Version...)
	p = append(p, 0)
	p = binary.LittleEndian.AppendUint32(p, g.ConnID)
	p = append(p, g.Salt[:8]...)
	p = append(p, 0)
	p = binary.LittleEndian.AppendUint16(p, uint16(g.Caps))
	p = append(p, g.Charset)
	p = binary.LittleEndian.AppendUint16(p, g.Status)
	p = binary.LittleEndian.AppendUint16(p, uint16(g.Caps>>16))
	p = append(p, byte(len(g.Salt)+1))
	p = append(p, 0, 0, 0, 0, 0, 0)
	p = binary.LittleEndian.AppendUint32(p, g.ExtCaps)
	p = append(p, g.Salt[8:]...)
	p = append(p, 0)
	p = append(p, g.Plugin...)
	return append(p, 0)
}

// HandshakeResponse is a client's HandshakeResponse41 (or, with only the
// first 32 bytes, an SSLRequest). The proxy parses the client's and sends
// the backend the same one with the role's user name and credentials, so
// capabilities, collation, max packet size and attributes agree exactly on
// both legs, which the raw relay depends on.
type HandshakeResponse struct {
	Caps      uint32
	MaxPacket uint32
	Charset   byte
	ExtCaps   uint32
	User      string
	AuthData  []byte
	DB        string
	Plugin    string
	Attrs     []byte // the key/value pairs, without their total length
}

// SSLRequestLen is the size of an SSLRequest: the fixed head of a response.
const SSLRequestLen = 32

// ParseHandshakeResponse reads a HandshakeResponse41 or an SSLRequest from
// untrusted bytes. It must never panic: it is fuzzed.
func ParseHandshakeResponse(p []byte) (HandshakeResponse, error) {
	var r HandshakeResponse
	if len(p) < SSLRequestLen {
		return r, ErrMalformed
	}
	r.Caps = binary.LittleEndian.Uint32(p)
	if r.Caps&mysql.CLIENT_PROTOCOL_41 == 0 {
		return r, errors.New("client uses the pre-4.1 protocol, which is not supported")
	}
	r.MaxPacket = binary.LittleEndian.Uint32(p[4:])
	r.Charset = p[8]
	if r.Caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		r.ExtCaps = binary.LittleEndian.Uint32(p[28:])
	}
	if len(p) == SSLRequestLen {
		return r, nil
	}
	user, pos, ok := CString(p, SSLRequestLen)
	if !ok {
		return r, ErrMalformed
	}
	r.User = string(user)
	switch {
	case r.Caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		r.AuthData, pos, ok = lenencBytes(p, pos)
	case r.Caps&mysql.CLIENT_SECURE_CONNECTION != 0:
		if pos >= len(p) || pos+1+int(p[pos]) > len(p) {
			return r, ErrMalformed
		}
		r.AuthData, pos, ok = p[pos+1:pos+1+int(p[pos])], pos+1+int(p[pos]), true
	default:
		r.AuthData, pos, ok = CString(p, pos)
	}
	if !ok {
		return r, ErrMalformed
	}
	if r.Caps&mysql.CLIENT_CONNECT_WITH_DB != 0 && pos < len(p) {
		db, next, ok := CString(p, pos)
		if !ok {
			return r, ErrMalformed
		}
		r.DB, pos = string(db), next
	}
	if r.Caps&mysql.CLIENT_PLUGIN_AUTH != 0 && pos < len(p) {
		name, next, ok := CString(p, pos)
		if !ok {
			name, next = p[pos:], len(p)
		}
		r.Plugin, pos = string(name), next
	}
	if r.Caps&mysql.CLIENT_CONNECT_ATTRS != 0 && pos < len(p) {
		attrs, _, ok := lenencBytes(p, pos)
		if !ok {
			return r, ErrMalformed
		}
		r.Attrs = attrs
	}
	return r, nil
}

// encode writes the response; with sslOnly, just the SSLRequest head.
func (r HandshakeResponse) Encode(sslOnly bool) []byte {
	p := make([]byte, 0, 64+len(r.User)+len(r.AuthData)+len(r.DB)+len(r.Attrs))
	p = binary.LittleEndian.AppendUint32(p, r.Caps)
	p = binary.LittleEndian.AppendUint32(p, r.MaxPacket)
	p = append(p, r.Charset)
	p = append(p, make([]byte, 19)...)
	p = binary.LittleEndian.AppendUint32(p, r.ExtCaps)
	if sslOnly {
		return p
	}
	p = append(p, r.User...)
	p = append(p, 0)
	switch {
	case r.Caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		p = mysql.AppendLengthEncodedInteger(p, uint64(len(r.AuthData)))
		p = append(p, r.AuthData...)
	case r.Caps&mysql.CLIENT_SECURE_CONNECTION != 0:
		p = append(p, byte(len(r.AuthData))) // scrambles are at most 32 bytes
		p = append(p, r.AuthData...)
	default:
		p = append(p, r.AuthData...)
		p = append(p, 0)
	}
	if r.Caps&mysql.CLIENT_CONNECT_WITH_DB != 0 {
		p = append(p, r.DB...)
		p = append(p, 0)
	}
	if r.Caps&mysql.CLIENT_PLUGIN_AUTH != 0 {
		p = append(p, r.Plugin...)
		p = append(p, 0)
	}
	if r.Caps&mysql.CLIENT_CONNECT_ATTRS != 0 {
		p = mysql.AppendLengthEncodedInteger(p, uint64(len(r.Attrs)))
		p = append(p, r.Attrs...)
	}
	return p
}

// AppendAttr adds one connection attribute (both parts length-encoded).
func AppendAttr(attrs []byte, key, value string) []byte {
	attrs = mysql.AppendLengthEncodedInteger(attrs, uint64(len(key)))
	attrs = append(attrs, key...)
	attrs = mysql.AppendLengthEncodedInteger(attrs, uint64(len(value)))
	return append(attrs, value...)
}

// TrimNUL drops the NUL that ends a password or plugin data on the wire.
func TrimNUL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == 0 {
		return b[:n-1]
	}
	return b
}

// FirstColumn reads the first value of a text-protocol result row: its
// bytes, or null for SQL NULL.
func FirstColumn(row []byte) (value []byte, null bool, err error) {
	if len(row) > 0 && row[0] == 0xfb {
		return nil, true, nil
	}
	v, _, ok := lenencBytes(row, 0)
	if !ok {
		return nil, false, ErrMalformed
	}
	return v, false, nil
}

// Columns reads the n values of a text-protocol result row; a SQL NULL
// is a nil value.
func Columns(row []byte, n int) ([][]byte, error) {
	out := make([][]byte, 0, n)
	pos := 0
	for range n {
		if pos < len(row) && row[pos] == 0xfb {
			out = append(out, nil)
			pos++
			continue
		}
		v, next, ok := lenencBytes(row, pos)
		if !ok {
			return nil, ErrMalformed
		}
		if v == nil {
			v = []byte{}
		}
		out = append(out, v)
		pos = next
	}
	if pos != len(row) {
		return nil, ErrMalformed
	}
	return out, nil
}
