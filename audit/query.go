package audit

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pingcap/tidb/pkg/parser"
)

// Query is one query-audit line: a command a person sent through the
// proxy and how the backend answered it.
type Query struct {
	Time      time.Time `json:"time"`
	Event     string    `json:"event"` // "query"
	SessionID uint32    `json:"session_id"`
	Node      string    `json:"node,omitempty"`
	Identity  string    `json:"identity"`
	Issuer    string    `json:"issuer,omitempty"`
	Role      string    `json:"role"`
	// BackendUser and BackendThread name the backend session that ran it,
	// which is what the database's own logs show.
	BackendUser   string `json:"backend_user,omitempty"`
	BackendThread uint32 `json:"backend_thread,omitempty"`
	Database      string `json:"database,omitempty"`
	Command       string `json:"command"` // COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_INIT_DB, ...
	// Statement is the text (full or redacted), Digest the hash of its
	// redacted shape: equal shapes have equal digests.
	Statement string `json:"statement,omitempty"`
	Redacted  bool   `json:"redacted,omitempty"`
	Truncated bool   `json:"truncated,omitempty"` // Statement was cut at max_statement_bytes
	Digest    string `json:"digest,omitempty"`
	// StatementID is a prepared statement's id (COM_STMT_PREPARE's answer,
	// COM_STMT_EXECUTE's argument); an execute carries its prepare's text
	// and digest.
	StatementID   *uint32 `json:"statement_id,omitempty"`
	DurationUS    int64   `json:"duration_us"`
	Outcome       string  `json:"outcome"` // "ok", "result_set", "error", "refused" (by portcullis), "unfinished"
	RowsAffected  uint64  `json:"rows_affected,omitempty"`
	Rows          uint64  `json:"rows,omitempty"`        // rows of all result sets
	ResultSets    int     `json:"result_sets,omitempty"` // more than one: multi-statements, CALL
	Results       int     `json:"results,omitempty"`     // OKs and result sets, when more than one
	ErrorCode     uint16  `json:"error_code,omitempty"`
	LoadDataLocal bool    `json:"load_data_local,omitempty"` // the backend asked the client for a local file

	// raw is the text before redaction; the writer redacts it, off the relay.
	raw      []byte
	redact   bool
	maxBytes int
}

// SetText gives q its statement text, redacted or not, and cut to maxBytes.
// text is copied; the (costly) redaction runs in the writer, off the relay.
func (q *Query) SetText(text []byte, redact bool, maxBytes int) {
	q.raw = bytes.Clone(text)
	q.redact, q.maxBytes = redact, maxBytes
}

// Redact is the redacted form of sql (literals replaced by ?, by the TiDB
// lexer the statement guard uses, as MySQL's statement digests) and its
// digest.
func Redact(sql string) (redacted, digest string) {
	n, d := parser.NormalizeDigest(sql)
	return n, d.String()
}

// finish redacts, digests and caps the text.
func (q *Query) finish() {
	if q.raw == nil {
		return
	}
	q.Statement, q.Digest, q.Redacted, q.Truncated = Text(q.raw, q.redact, q.maxBytes)
	q.raw = nil
}

// Text is what a line holds of a statement: the text (redacted when
// redact is set, or when it sets a password, whose literal it holds),
// cut to maxBytes (0: no cap) at a character boundary, and the digest of
// its redacted shape.
func Text(raw []byte, redact bool, maxBytes int) (statement, digest string, redacted, truncated bool) {
	text := string(raw)
	shape, digest := Redact(text)
	if redact || holdsSecret(shape) {
		text, redacted = shape, true
		if strings.Contains(string(raw), `\`) {
			// The session's sql_mode decides whether a backslash escapes a
			// quote (NO_BACKSLASH_ESCAPES), and the proxy does not know it.
			// Read without escapes too: if the shapes differ, some word is
			// a literal in one reading, so the text is withheld.
			if other, _ := Redact(strings.ReplaceAll(string(raw), `\`, " ")); other != shape {
				text = withheld
			}
		}
	}
	if maxBytes > 0 && len(text) > maxBytes {
		cut := maxBytes
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text, truncated = text[:cut], true
	}
	return text, digest, redacted, truncated
}

// withheld replaces a redacted text whose literals depend on sql_mode.
const withheld = "(withheld: the literals depend on the session's sql_mode)"

// holdsSecret reports whether a redacted text (tokens separated by
// spaces, lower case) has a word that introduces a password.
func holdsSecret(redacted string) bool {
	for _, w := range strings.Fields(redacted) {
		switch w {
		case "password", "identified", "`password`", "`identified`":
			return true
		}
	}
	return false
}

// QueueSize is how many query lines wait for the writer; more are
// dropped (and counted), so a slow sink never stalls the relay.
const QueueSize = 4096

// queue is the Logger's asynchronous path for query lines.
type queue struct {
	once    sync.Once
	ch      chan *Query
	dropped atomic.Uint64 // since the last audit_dropped line
	total   atomic.Uint64 // since the Logger opened
	onDrop  func()
}

// Dropped is the Logger's count of query lines dropped since it opened.
func (l *Logger) Dropped() uint64 { return l.q.total.Load() }

// OnDrop sets a function called for each dropped line (the
// portcullis_audit_dropped_total metric).
func (l *Logger) OnDrop(f func()) { l.q.onDrop = f }

// Query queues q to be written, without waiting: when the writer is
// behind by QueueSize lines, q is dropped and counted, and a line saying
// how many were dropped is written once the writer catches up.
func (l *Logger) Query(q *Query) {
	l.q.once.Do(func() {
		l.q.ch = make(chan *Query, cmpSize(l.queueSize))
		go l.writeQueries()
	})
	select {
	case l.q.ch <- q:
	default:
		l.q.dropped.Add(1)
		l.q.total.Add(1)
		if l.q.onDrop != nil {
			l.q.onDrop()
		}
	}
}

func cmpSize(n int) int {
	if n <= 0 {
		return QueueSize
	}
	return n
}

// Dropped is the audit line that reports lines lost to a slow sink.
type Dropped struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"` // "audit_dropped"
	Dropped uint64    `json:"dropped"`
	Reason  string    `json:"reason"`
}

func (l *Logger) writeQueries() {
	for q := range l.q.ch {
		q.finish()
		if q.Time.IsZero() {
			q.Time = time.Now().UTC()
		}
		l.write(q)
		if n := l.q.dropped.Swap(0); n > 0 {
			l.write(Dropped{Time: time.Now().UTC(), Event: "audit_dropped", Dropped: n,
				Reason: "the audit sink could not keep up: query lines were dropped"})
		}
	}
}

func (l *Logger) write(v any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.enc.Encode(v)
}
