package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// maxPayload is the largest payload of one MySQL packet; a longer one is
// split and continued in the next packet.
const maxPayload = 1<<24 - 1

// readPacket reads one whole MySQL packet and returns its payload and
// sequence id. A payload longer than limit is refused without reading it,
// so a hostile client cannot make the proxy buffer megabytes before auth.
func readPacket(r io.Reader, limit int) (payload []byte, seq byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, err
	}
	n := int(uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16)
	if n > limit {
		return nil, hdr[3], &tooLargeError{size: n, limit: limit}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, 0, err
	}
	return payload, hdr[3], nil
}

// tooLargeError reports a handshake packet over the proxy's limit.
type tooLargeError struct{ size, limit int }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("packet of %d bytes exceeds the %d-byte limit", e.size, e.limit)
}

// writePacket frames payload (shorter than maxPayload: handshake packets
// are) and writes it in one call.
func writePacket(w io.Writer, seq byte, payload []byte) error {
	buf := make([]byte, 4, 4+len(payload))
	buf[0], buf[1], buf[2], buf[3] = byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), seq
	_, err := w.Write(append(buf, payload...))
	return err
}

// errPacket builds an ERR packet. The message is what a person reads in
// their client: it must never carry a token, password or key.
func errPacket(code uint16, message string) []byte {
	state, ok := mysql.MySQLState[code]
	if !ok {
		state = mysql.DEFAULT_MYSQL_STATE
	}
	p := []byte{mysql.ERR_HEADER, byte(code), byte(code >> 8), '#'}
	p = append(p, state...)
	return append(p, message...)
}

// okPacket builds a plain OK packet with the given status flags.
func okPacket(status uint16) []byte {
	return []byte{mysql.OK_HEADER, 0, 0, byte(status), byte(status >> 8), 0, 0}
}

// parseErrPacket reads the code and message of an ERR packet.
func parseErrPacket(p []byte) (code uint16, message string) {
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

// cString reads a NUL-terminated string starting at p[pos:].
func cString(p []byte, pos int) (s []byte, next int, ok bool) {
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

// Client-library error codes the proxy sends as server errors: the go-mysql
// constants stop at the server range, and clients print these as their
// familiar "can't connect" errors.
const (
	codeBackendUnreachable uint16 = 2003 // CR_CONN_HOST_ERROR
	codeBackendTLS         uint16 = 2026 // CR_SSL_CONNECTION_ERROR
	codeConnectionKilled   uint16 = 1927 // MariaDB's ER_CONNECTION_KILLED
	codeServerLost         uint16 = 2013 // CR_SERVER_LOST
)
