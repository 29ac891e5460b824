package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// maxHandshakePacket bounds handshake packets from either side.
const maxHandshakePacket = 1 << 20

var errMalformed = errors.New("malformed handshake packet")

// readPacket reads one packet's payload and sequence id.
func readPacket(r io.Reader) ([]byte, byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, err
	}
	n := int(uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16)
	if n > maxHandshakePacket {
		return nil, 0, fmt.Errorf("handshake packet of %d bytes is over the %d-byte limit", n, maxHandshakePacket)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, 0, err
	}
	return p, hdr[3], nil
}

// writePacket frames a payload shorter than 16 MiB.
func writePacket(w io.Writer, seq byte, p []byte) error {
	buf := make([]byte, 4, 4+len(p))
	buf[0], buf[1], buf[2], buf[3] = byte(len(p)), byte(len(p)>>8), byte(len(p)>>16), seq
	_, err := w.Write(append(buf, p...))
	return err
}

// errPacket is an ERR packet; msg must never hold a token.
func errPacket(code uint16, msg string) []byte {
	state, ok := mysql.MySQLState[code]
	if !ok {
		state = mysql.DEFAULT_MYSQL_STATE
	}
	p := []byte{mysql.ERR_HEADER, byte(code), byte(code >> 8), '#'}
	return append(append(p, state...), msg...)
}

// greeting is a protocol-10 Initial Handshake.
type greeting struct {
	version string
	connID  uint32
	salt    []byte
	caps    uint32
	extCaps uint32 // MariaDB's, when CLIENT_MYSQL (bit 0) is clear
	charset byte
	status  uint16
	plugin  string
}

func parseGreeting(p []byte) (greeting, error) {
	var g greeting
	if len(p) >= 3 && p[0] == mysql.ERR_HEADER {
		return g, &mysql.MyError{Code: binary.LittleEndian.Uint16(p[1:]), Message: errMessage(p)}
	}
	if len(p) < 1 || p[0] != 10 {
		return g, errors.New("the proxy did not send a MySQL protocol-10 greeting")
	}
	v, pos, ok := cString(p, 1)
	if !ok || len(p) < pos+4+8+1+2+1+2+2+1+10 {
		return g, errMalformed
	}
	g.version = string(v)
	g.connID = binary.LittleEndian.Uint32(p[pos:])
	pos += 4
	g.salt = append([]byte(nil), p[pos:pos+8]...)
	pos += 9
	g.caps = uint32(binary.LittleEndian.Uint16(p[pos:]))
	g.charset = p[pos+2]
	g.status = binary.LittleEndian.Uint16(p[pos+3:])
	g.caps |= uint32(binary.LittleEndian.Uint16(p[pos+5:])) << 16
	saltLen := int(p[pos+7])
	pos += 8
	if g.caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		g.extCaps = binary.LittleEndian.Uint32(p[pos+6:])
	}
	pos += 10
	if g.caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		n := max(13, saltLen-8)
		if len(p) < pos+n {
			return g, errMalformed
		}
		g.salt = append(g.salt, bytes.TrimRight(p[pos:pos+n], "\x00")...)
		pos += n
	}
	if g.caps&mysql.CLIENT_PLUGIN_AUTH != 0 && pos <= len(p) {
		name, _, ok := cString(p, pos)
		if !ok {
			name = p[pos:]
		}
		g.plugin = string(name)
	}
	return g, nil
}

func (g greeting) encode() []byte {
	p := []byte{10}
	p = append(append(p, g.version...), 0)
	p = binary.LittleEndian.AppendUint32(p, g.connID)
	p = append(append(p, g.salt[:8]...), 0)
	p = binary.LittleEndian.AppendUint16(p, uint16(g.caps))
	p = append(p, g.charset)
	p = binary.LittleEndian.AppendUint16(p, g.status)
	p = binary.LittleEndian.AppendUint16(p, uint16(g.caps>>16))
	p = append(p, byte(len(g.salt)+1), 0, 0, 0, 0, 0, 0)
	p = binary.LittleEndian.AppendUint32(p, g.extCaps)
	p = append(append(p, g.salt[8:]...), 0)
	return append(append(p, g.plugin...), 0)
}

// response is a HandshakeResponse41 (or, 32 bytes long, an SSLRequest).
type response struct {
	caps, maxPacket, extCaps uint32
	charset                  byte
	user                     string
	authData                 []byte
	db, plugin               string
	attrs                    []byte // the pairs, without their total length
}

const sslRequestLen = 32

func parseResponse(p []byte) (response, error) {
	var r response
	if len(p) < sslRequestLen {
		return r, errMalformed
	}
	r.caps = binary.LittleEndian.Uint32(p)
	if r.caps&mysql.CLIENT_PROTOCOL_41 == 0 {
		return r, errors.New("the client uses the pre-4.1 protocol, which is not supported")
	}
	r.maxPacket = binary.LittleEndian.Uint32(p[4:])
	r.charset = p[8]
	if r.caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		r.extCaps = binary.LittleEndian.Uint32(p[28:])
	}
	if len(p) == sslRequestLen {
		return r, nil
	}
	user, pos, ok := cString(p, sslRequestLen)
	if !ok {
		return r, errMalformed
	}
	r.user = string(user)
	switch {
	case r.caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		r.authData, pos, ok = lenencBytes(p, pos)
	case r.caps&mysql.CLIENT_SECURE_CONNECTION != 0:
		if pos >= len(p) || pos+1+int(p[pos]) > len(p) {
			return r, errMalformed
		}
		r.authData, pos = p[pos+1:pos+1+int(p[pos])], pos+1+int(p[pos])
	default:
		r.authData, pos, ok = cString(p, pos)
	}
	if !ok {
		return r, errMalformed
	}
	if r.caps&mysql.CLIENT_CONNECT_WITH_DB != 0 && pos < len(p) {
		db, next, ok := cString(p, pos)
		if !ok {
			return r, errMalformed
		}
		r.db, pos = string(db), next
	}
	if r.caps&mysql.CLIENT_PLUGIN_AUTH != 0 && pos < len(p) {
		name, next, ok := cString(p, pos)
		if !ok {
			name, next = p[pos:], len(p)
		}
		r.plugin, pos = string(name), next
	}
	if r.caps&mysql.CLIENT_CONNECT_ATTRS != 0 && pos < len(p) {
		if r.attrs, _, ok = lenencBytes(p, pos); !ok {
			return r, errMalformed
		}
	}
	return r, nil
}

// encode writes the response; sslOnly writes just the SSLRequest head.
func (r response) encode(sslOnly bool) []byte {
	p := binary.LittleEndian.AppendUint32(nil, r.caps)
	p = binary.LittleEndian.AppendUint32(p, r.maxPacket)
	p = append(p, r.charset)
	p = append(p, make([]byte, 19)...)
	p = binary.LittleEndian.AppendUint32(p, r.extCaps)
	if sslOnly {
		return p
	}
	p = append(append(p, r.user...), 0)
	p = mysql.AppendLengthEncodedInteger(p, uint64(len(r.authData))) // LENENC_CLIENT_DATA is always set toward the proxy
	p = append(p, r.authData...)
	if r.caps&mysql.CLIENT_CONNECT_WITH_DB != 0 {
		p = append(append(p, r.db...), 0)
	}
	p = append(append(p, r.plugin...), 0) // PLUGIN_AUTH is always set toward the proxy
	if r.caps&mysql.CLIENT_CONNECT_ATTRS != 0 {
		p = mysql.AppendLengthEncodedInteger(p, uint64(len(r.attrs)))
		p = append(p, r.attrs...)
	}
	return p
}

// appendAttr adds one connection attribute.
func appendAttr(attrs []byte, k, v string) []byte {
	attrs = mysql.AppendLengthEncodedInteger(attrs, uint64(len(k)))
	attrs = append(attrs, k...)
	attrs = mysql.AppendLengthEncodedInteger(attrs, uint64(len(v)))
	return append(attrs, v...)
}

func errMessage(p []byte) string {
	if len(p) < 3 {
		return "malformed error packet"
	}
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		rest = rest[6:]
	}
	return string(rest)
}

func cString(p []byte, pos int) ([]byte, int, bool) {
	if pos > len(p) {
		return nil, pos, false
	}
	i := bytes.IndexByte(p[pos:], 0)
	if i < 0 {
		return nil, pos, false
	}
	return p[pos : pos+i], pos + i + 1, true
}

// lenencBytes reads a length-encoded string, never past the end.
func lenencBytes(p []byte, pos int) ([]byte, int, bool) {
	if pos >= len(p) {
		return nil, pos, false
	}
	var n uint64
	w := 1
	switch p[pos] {
	case 0xfb, 0xff:
		return nil, pos, false
	case 0xfc:
		w = 3
	case 0xfd:
		w = 4
	case 0xfe:
		w = 9
	default:
		n = uint64(p[pos])
	}
	if len(p)-pos < w {
		return nil, pos, false
	}
	for i := w - 1; i >= 1; i-- {
		n = n<<8 | uint64(p[pos+i])
	}
	if uint64(len(p)-pos-w) < n {
		return nil, pos, false
	}
	start := pos + w
	return p[start : start+int(n)], start + int(n), true
}
