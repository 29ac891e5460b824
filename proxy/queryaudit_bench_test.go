package proxy

import (
	"io"
	"testing"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/proxy/wire"
)

// BenchmarkQueryAudit is the relay's cost per statement (a 40-byte
// COM_QUERY and its OK): off is the nil check; redacted is what the
// relay goroutines add (the command's note, the answer's follow). The
// redaction itself runs in the audit writer: BenchmarkAuditText.
func BenchmarkQueryAudit(b *testing.B) {
	query := []byte("\x03SELECT id, name FROM items WHERE id = 42")
	var ok bytesWriter
	wire.WritePacket(&ok, 1, []byte{0, 1, 0, 2, 0, 0, 0})
	for _, mode := range []string{"off", "redacted"} {
		b.Run(mode, func(b *testing.B) {
			s := &Server{Sessions: newRegistry()}
			sess := &Session{Identity: "bench@example.com"}
			if mode != "off" {
				sess.qa = &queryAudit{log: audit.NewQueued(io.Discard, 1<<16), redact: true, max: 4096, stmts: map[uint32]preparedText{}}
			}
			b.ReportAllocs()
			for b.Loop() {
				s.intercept(sess, query)
				if sess.qa != nil {
					sess.qa.resp.feed(sess.qa, ok)
				}
			}
		})
	}
}

type bytesWriter []byte

func (w *bytesWriter) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }

// BenchmarkAuditText is the audit writer's cost per statement: redaction
// by the TiDB lexer and the digest.
func BenchmarkAuditText(b *testing.B) {
	q := []byte("SELECT id, name FROM items WHERE id = 42 AND name = 'x'")
	b.ReportAllocs()
	for b.Loop() {
		audit.Text(q, true, 4096)
	}
}
