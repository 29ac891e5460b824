package proxy

import (
	"encoding/binary"
	"errors"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// greeting is the server's Initial Handshake packet (protocol version 10).
// The proxy parses the backend's and sends its own in the same shape, so the
// client sees the backend's version, capabilities, collation and status.
type greeting struct {
	version string
	connID  uint32
	salt    []byte // auth-plugin-data, 20 bytes for the plugins we use
	caps    uint32
	extCaps uint32 // MariaDB's extended capabilities, when the CLIENT_MYSQL bit (bit 0) is clear
	charset byte
	status  uint16
	plugin  string
}

var errMalformed = errors.New("malformed packet")

func parseGreeting(p []byte) (greeting, error) {
	var g greeting
	if len(p) < 1 {
		return g, errMalformed
	}
	if p[0] == mysql.ERR_HEADER {
		code, msg := parseErrPacket(p)
		return g, &mysql.MyError{Code: code, Message: msg}
	}
	if p[0] != 10 {
		return g, errors.New("unsupported protocol version")
	}
	version, pos, ok := cString(p, 1)
	if !ok || len(p) < pos+4+8+1+2 {
		return g, errMalformed
	}
	g.version = string(version)
	g.connID = binary.LittleEndian.Uint32(p[pos:])
	pos += 4
	g.salt = append([]byte(nil), p[pos:pos+8]...)
	pos += 8 + 1
	g.caps = uint32(binary.LittleEndian.Uint16(p[pos:]))
	pos += 2
	if len(p) < pos+1+2+2+1+10 {
		return g, nil // pre-4.1 server: nothing more
	}
	g.charset = p[pos]
	g.status = binary.LittleEndian.Uint16(p[pos+1:])
	g.caps |= uint32(binary.LittleEndian.Uint16(p[pos+3:])) << 16
	saltLen := int(p[pos+5])
	pos += 6
	if g.caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		g.extCaps = binary.LittleEndian.Uint32(p[pos+6:])
	}
	pos += 10
	if g.caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		n := max(13, saltLen-8)
		if len(p) < pos+n {
			return g, errMalformed
		}
		part2 := p[pos : pos+n]
		if part2[len(part2)-1] == 0 {
			part2 = part2[:len(part2)-1]
		}
		g.salt = append(g.salt, part2...)
		pos += n
	}
	if g.caps&mysql.CLIENT_PLUGIN_AUTH != 0 {
		name, _, ok := cString(p, pos)
		if !ok { // some servers omit the final NUL
			name = p[pos:]
		}
		g.plugin = string(name)
	}
	return g, nil
}

func (g greeting) encode() []byte {
	p := make([]byte, 0, 128)
	p = append(p, 10)
	p = append(p, g.version...)
	p = append(p, 0)
	p = binary.LittleEndian.AppendUint32(p, g.connID)
	p = append(p, g.salt[:8]...)
	p = append(p, 0)
	p = binary.LittleEndian.AppendUint16(p, uint16(g.caps))
	p = append(p, g.charset)
	p = binary.LittleEndian.AppendUint16(p, g.status)
	p = binary.LittleEndian.AppendUint16(p, uint16(g.caps>>16))
	p = append(p, byte(len(g.salt)+1))
	p = append(p, 0, 0, 0, 0, 0, 0)
	p = binary.LittleEndian.AppendUint32(p, g.extCaps)
	p = append(p, g.salt[8:]...)
	p = append(p, 0)
	p = append(p, g.plugin...)
	return append(p, 0)
}

// handshakeResponse is a client's HandshakeResponse41 (or, with only the
// first 32 bytes, an SSLRequest). The proxy parses the client's and sends
// the backend the same one with the role's user name and credentials, so
// capabilities, collation, max packet size and attributes agree exactly on
// both legs, which the raw relay depends on.
type handshakeResponse struct {
	caps      uint32
	maxPacket uint32
	charset   byte
	extCaps   uint32
	user      string
	authData  []byte
	db        string
	plugin    string
	attrs     []byte // the key/value pairs, without their total length
}

// sslRequestLen is the size of an SSLRequest: the fixed head of a response.
const sslRequestLen = 32

// parseHandshakeResponse reads a HandshakeResponse41 or an SSLRequest from
// untrusted bytes. It must never panic: it is fuzzed.
func parseHandshakeResponse(p []byte) (handshakeResponse, error) {
	var r handshakeResponse
	if len(p) < sslRequestLen {
		return r, errMalformed
	}
	r.caps = binary.LittleEndian.Uint32(p)
	if r.caps&mysql.CLIENT_PROTOCOL_41 == 0 {
		return r, errors.New("client uses the pre-4.1 protocol, which is not supported")
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
		r.authData, pos, ok = p[pos+1:pos+1+int(p[pos])], pos+1+int(p[pos]), true
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
		attrs, _, ok := lenencBytes(p, pos)
		if !ok {
			return r, errMalformed
		}
		r.attrs = attrs
	}
	return r, nil
}

// encode writes the response; with sslOnly, just the SSLRequest head.
func (r handshakeResponse) encode(sslOnly bool) []byte {
	p := make([]byte, 0, 64+len(r.user)+len(r.authData)+len(r.db)+len(r.attrs))
	p = binary.LittleEndian.AppendUint32(p, r.caps)
	p = binary.LittleEndian.AppendUint32(p, r.maxPacket)
	p = append(p, r.charset)
	p = append(p, make([]byte, 19)...)
	p = binary.LittleEndian.AppendUint32(p, r.extCaps)
	if sslOnly {
		return p
	}
	p = append(p, r.user...)
	p = append(p, 0)
	switch {
	case r.caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		p = mysql.AppendLengthEncodedInteger(p, uint64(len(r.authData)))
		p = append(p, r.authData...)
	case r.caps&mysql.CLIENT_SECURE_CONNECTION != 0:
		p = append(p, byte(len(r.authData))) // scrambles are at most 32 bytes
		p = append(p, r.authData...)
	default:
		p = append(p, r.authData...)
		p = append(p, 0)
	}
	if r.caps&mysql.CLIENT_CONNECT_WITH_DB != 0 {
		p = append(p, r.db...)
		p = append(p, 0)
	}
	if r.caps&mysql.CLIENT_PLUGIN_AUTH != 0 {
		p = append(p, r.plugin...)
		p = append(p, 0)
	}
	if r.caps&mysql.CLIENT_CONNECT_ATTRS != 0 {
		p = mysql.AppendLengthEncodedInteger(p, uint64(len(r.attrs)))
		p = append(p, r.attrs...)
	}
	return p
}

// appendAttr adds one connection attribute (both parts length-encoded).
func appendAttr(attrs []byte, key, value string) []byte {
	attrs = mysql.AppendLengthEncodedInteger(attrs, uint64(len(key)))
	attrs = append(attrs, key...)
	attrs = mysql.AppendLengthEncodedInteger(attrs, uint64(len(value)))
	return append(attrs, value...)
}
