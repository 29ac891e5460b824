package proxy

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/proxy/wire"
)

// TestQueryAuditFollowsSplitPackets feeds a backend answer one byte per
// read (as TLS records may cut it) and whole: the same outcome either way.
func TestQueryAuditFollowsSplitPackets(t *testing.T) {
	var stream bytes.Buffer
	pkt := func(seq byte, payload ...byte) { wire.WritePacket(&stream, seq, payload) }
	// A result set of one column and two rows, without CLIENT_DEPRECATE_EOF,
	// flagged "more results", then an OK with 5 rows affected.
	pkt(1, 1)                              // column count
	pkt(2, append([]byte{3}, "def"...)...) // a column definition (only its head matters)
	pkt(3, 0xfe, 0, 0, 0x0a, 0)            // EOF, status MORE_RESULTS | AUTOCOMMIT
	pkt(4, 1, 'x')                         // row
	pkt(5, 1, 'y')                         // row
	pkt(6, 0xfe, 0, 0, 0x0a, 0)            // EOF, more results
	pkt(7, 0x00, 5, 0, 0x02, 0, 0, 0)      // OK, 5 affected, no more
	for _, step := range []int{1, stream.Len()} {
		out := &lockedBuffer{}
		l := audit.NewQueued(out, 16)
		a := &queryAudit{log: l, stmts: map[uint32]preparedText{}}
		a.command(append([]byte{0x03}, "select 'a'; update t set x = 1"...), nil)
		b := stream.Bytes()
		for i := 0; i < len(b); i += step {
			a.resp.feed(a, b[i:min(i+step, len(b))])
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String(), "\n") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		var q map[string]any
		if err := json.Unmarshal([]byte(out.String()), &q); err != nil {
			t.Fatalf("step %d: %q: %v", step, out.String(), err)
		}
		if q["outcome"] != "result_set" || q["rows"] != 2.0 || q["rows_affected"] != 5.0 || q["results"] != 2.0 || len(a.pending) != 0 {
			t.Errorf("step %d: %v", step, q)
		}
	}
}

// lockedBuffer is a bytes.Buffer the audit writer goroutine and the test
// share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestUseDatabase(t *testing.T) {
	for q, want := range map[string]string{
		"USE sales": "sales", " use `Sales Db`": "Sales Db", "use x;": "x", "USE x; DROP TABLE t": "",
		"user_func()": "", "SELECT 1": "", "use": "", "USE 'x'": "",
	} {
		if got := useDatabase([]byte(q)); got != want {
			t.Errorf("useDatabase(%q) = %q, want %q", q, got, want)
		}
	}
}
