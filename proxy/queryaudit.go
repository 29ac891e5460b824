package proxy

import (
	"encoding/binary"
	"io"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/proxy/wire"
	"github.com/portcullisdb/portcullis/rbac"
)

// Query audit (roles.<role>.query_audit). A session whose role audits
// queries has a queryAudit; every other session has none, and the relay
// pays one nil check per command. The relay reports each command packet
// (intercept calls command, before the packet is sent on) and passes the
// backend's bytes through reader, which follows packet boundaries and
// reads the first bytes of each packet, nothing more: rows are counted,
// never copied or held. A command's line is queued when its answer is
// complete (audit.Logger.Query, which never blocks).
//
// Commands are answered in order, so the commands awaiting an answer are
// a queue: a client that pipelines (MariaDB Connector/C sends
// COM_STMT_PREPARE and COM_STMT_EXECUTE together) is followed too.
type queryAudit struct {
	log          *audit.Logger
	base         audit.Query // who, where: copied into each line
	redact       bool
	max          int
	deprecateEOF bool

	mu      sync.Mutex
	pending []*pendingCommand
	stmts   map[uint32]preparedText
	last    preparedText // the latest prepare, for statement id 0xffffffff (MariaDB's "the one just prepared")
	db      string

	resp respParser // only the backend-to-client copier touches it
}

// preparedText is what a prepared statement's executes are recorded with.
type preparedText struct {
	statement, digest   string
	redacted, truncated bool
}

// answer kinds: how the backend answers a command.
const (
	answerResult    = iota // OK, ERR, LOCAL INFILE or result sets, possibly several (COM_QUERY, COM_STMT_EXECUTE)
	answerPrepare          // COM_STMT_PREPARE's OK and definitions, or ERR
	answerSimple           // one OK, ERR or EOF packet
	answerFields           // column definitions until EOF (COM_FIELD_LIST)
	answerRows             // rows until EOF (COM_STMT_FETCH)
	answerOnePacket        // any one packet (COM_STATISTICS)
	answerNone             // no answer (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA)
	answerUnknown          // a command the audit cannot follow: stop following
)

// pendingCommand is a command waiting for (or reading) its answer.
type pendingCommand struct {
	q      *audit.Query
	start  time.Time
	answer int
	quiet  bool   // followed but not recorded (COM_PING, COM_STATISTICS)
	text   []byte // a prepare's text, kept for its statement id
	initDB string // COM_INIT_DB's database, current once OK
}

// newQueryAudit is the query audit of a session whose role turns it on;
// nil otherwise.
func (s *Server) newQueryAudit(sess *Session, grant rbac.Grant, resp wire.HandshakeResponse, g wire.Greeting) *queryAudit {
	qc := grant.QueryAudit
	if !qc.On() || s.opt.Audit == nil {
		return nil
	}
	return &queryAudit{
		log: s.opt.Audit,
		base: audit.Query{Event: "query", SessionID: sess.ID, Node: s.opt.Node, Identity: sess.Identity, Issuer: sess.Issuer,
			Role: sess.Role, BackendUser: sess.BackendUser, BackendThread: sess.BackendThreadID},
		redact:       qc.Mode == config.QueryAuditRedacted,
		max:          qc.MaxStatementBytes,
		deprecateEOF: backendResponse(resp, g, "").Caps&mysql.CLIENT_DEPRECATE_EOF != 0,
		stmts:        map[uint32]preparedText{},
		db:           resp.DB,
	}
}

var commandNames = map[byte]string{
	mysql.COM_QUERY: "COM_QUERY", mysql.COM_STMT_PREPARE: "COM_STMT_PREPARE", mysql.COM_STMT_EXECUTE: "COM_STMT_EXECUTE",
	mysql.COM_INIT_DB: "COM_INIT_DB", mysql.COM_STMT_CLOSE: "COM_STMT_CLOSE", mysql.COM_STMT_RESET: "COM_STMT_RESET",
	mysql.COM_STMT_FETCH: "COM_STMT_FETCH", mysql.COM_FIELD_LIST: "COM_FIELD_LIST", mysql.COM_PROCESS_KILL: "COM_PROCESS_KILL",
	mysql.COM_RESET_CONNECTION: "COM_RESET_CONNECTION", mysql.COM_SET_OPTION: "COM_SET_OPTION", mysql.COM_PING: "COM_PING",
	mysql.COM_STATISTICS: "COM_STATISTICS", mysql.COM_STMT_SEND_LONG_DATA: "COM_STMT_SEND_LONG_DATA", mysql.COM_DEBUG: "COM_DEBUG",
	mysql.COM_REFRESH: "COM_REFRESH", mysql.COM_SHUTDOWN: "COM_SHUTDOWN", mysql.COM_PROCESS_INFO: "COM_PROCESS_INFO",
}

// command notes one command packet (cmd: the payload, the command byte
// first). reply is the proxy's own answer when the guard refused it.
func (a *queryAudit) command(cmd []byte, reply *[]byte) {
	if len(cmd) == 0 {
		return
	}
	q := a.base
	q.Command = commandNames[cmd[0]]
	if q.Command == "" {
		q.Command = "COM_0x" + string("0123456789abcdef"[cmd[0]>>4]) + string("0123456789abcdef"[cmd[0]&15])
	}
	p := &pendingCommand{q: &q, start: time.Now()}
	switch cmd[0] {
	case mysql.COM_QUERY:
		q.SetText(cmd[1:], a.redact, a.max)
		p.initDB = useDatabase(cmd[1:])
	case mysql.COM_STMT_PREPARE:
		p.answer = answerPrepare
		p.text = append([]byte(nil), cmd[1:]...)
	case mysql.COM_STMT_EXECUTE, mysql.COM_STMT_CLOSE, mysql.COM_STMT_RESET, mysql.COM_STMT_FETCH, mysql.COM_STMT_SEND_LONG_DATA:
		if len(cmd) >= 5 {
			id := binary.LittleEndian.Uint32(cmd[1:5])
			a.mu.Lock()
			t, ok := a.stmts[id]
			if id == 0xffffffff {
				t, ok = a.last, true
			}
			if cmd[0] == mysql.COM_STMT_CLOSE {
				delete(a.stmts, id)
			}
			a.mu.Unlock()
			q.StatementID = &id
			if ok {
				q.Statement, q.Digest, q.Redacted, q.Truncated = t.statement, t.digest, t.redacted, t.truncated
			}
		}
		switch cmd[0] {
		case mysql.COM_STMT_CLOSE:
			p.answer = answerNone
		case mysql.COM_STMT_SEND_LONG_DATA:
			p.answer, p.quiet = answerNone, true
		case mysql.COM_STMT_RESET:
			p.answer = answerSimple
		case mysql.COM_STMT_FETCH:
			p.answer = answerRows
		}
	case mysql.COM_INIT_DB:
		p.answer = answerSimple
		p.initDB = string(cmd[1:])
		q.Database = p.initDB
	case mysql.COM_PING, mysql.COM_STATISTICS:
		p.answer, p.quiet = answerSimple, true
		if cmd[0] == mysql.COM_STATISTICS {
			p.answer = answerOnePacket
		}
	case mysql.COM_FIELD_LIST:
		p.answer = answerFields
	case mysql.COM_RESET_CONNECTION, mysql.COM_SET_OPTION, mysql.COM_PROCESS_KILL, mysql.COM_DEBUG, mysql.COM_REFRESH:
		p.answer = answerSimple
	default:
		p.answer = answerUnknown
	}
	if q.Database == "" {
		a.mu.Lock()
		q.Database = a.db
		a.mu.Unlock()
	}
	if reply != nil && *reply != nil {
		// The proxy answered it: the backend never saw it.
		if p.text != nil {
			q.SetText(p.text, a.redact, a.max)
		}
		q.Outcome = "refused"
		if r := *reply; len(r) >= 3 && r[0] == 0xff {
			q.ErrorCode = binary.LittleEndian.Uint16(r[1:3])
		}
		a.record(p)
		return
	}
	if p.answer == answerNone {
		if !p.quiet {
			q.Outcome = "ok"
			a.record(p)
		}
		return
	}
	a.mu.Lock()
	a.pending = append(a.pending, p)
	a.mu.Unlock()
}

// record queues p's line.
func (a *queryAudit) record(p *pendingCommand) {
	if p.quiet {
		return
	}
	p.q.Time = p.start.UTC()
	p.q.DurationUS = time.Since(p.start).Microseconds()
	a.log.Query(p.q)
}

// close records the commands still waiting when the session ends (the
// connection was killed, or the backend went away).
func (a *queryAudit) close() {
	a.mu.Lock()
	rest := a.pending
	a.pending = nil
	a.mu.Unlock()
	for _, p := range rest {
		if p.q.Outcome == "" {
			p.q.Outcome = "unfinished"
		}
		a.record(p)
	}
}

// reader wraps the backend leg: what the relay reads from it is followed
// as it passes.
func (a *queryAudit) reader(r io.Reader) io.Reader { return auditReader{r, a} }

type auditReader struct {
	r io.Reader
	a *queryAudit
}

func (r auditReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.a.resp.feed(r.a, p[:n])
	}
	return n, err
}

// respParser finds packet boundaries in the backend's byte stream and
// keeps the first bytes of each packet.
type respParser struct {
	hdr       [4]byte
	hdrN      int
	size      int
	left      int
	inPayload bool
	prevFull  bool     // the previous packet was 0xffffff bytes: this one continues it
	head      [32]byte // the packet's first bytes: enough for OK, ERR, EOF and counts
	headN     int

	// The answer being read.
	phase                int
	cols                 uint64 // column definitions still to come
	params               uint64 // a prepare's parameter definitions still to come
	prepParams, prepCols uint64 // what a prepare's OK announced
	lost                 bool   // a command the audit cannot follow came by: stop following
}

// phases of an answer.
const (
	phaseStart      = iota // the first packet of a result
	phaseColumns           // column definitions
	phaseColumnsEOF        // the EOF after them (without CLIENT_DEPRECATE_EOF)
	phaseRows              // rows until the terminator
	phasePrepParams        // a prepare's parameter definitions
	phasePrepParamsEOF
	phasePrepCols
	phasePrepColsEOF
)

func (p *respParser) feed(a *queryAudit, b []byte) {
	for len(b) > 0 {
		if !p.inPayload {
			n := copy(p.hdr[p.hdrN:], b)
			p.hdrN += n
			b = b[n:]
			if p.hdrN < 4 {
				return
			}
			p.hdrN = 0
			p.size = int(p.hdr[0]) | int(p.hdr[1])<<8 | int(p.hdr[2])<<16
			p.left, p.headN, p.inPayload = p.size, 0, true
			if p.size == 0 {
				p.packetDone(a)
			}
			continue
		}
		n := min(p.left, len(b))
		if p.headN < len(p.head) {
			p.headN += copy(p.head[p.headN:], b[:n])
		}
		p.left -= n
		b = b[n:]
		if p.left == 0 {
			p.packetDone(a)
		}
	}
}

func (p *respParser) packetDone(a *queryAudit) {
	p.inPayload = false
	cont := p.prevFull
	p.prevFull = p.size == 1<<24-1
	if cont || p.lost {
		return
	}
	a.mu.Lock()
	var cur *pendingCommand
	if len(a.pending) > 0 {
		cur = a.pending[0]
	}
	a.mu.Unlock()
	if cur == nil {
		return // not an answer the audit waits for
	}
	if p.answerPacket(a, cur, p.head[:p.headN], p.size) {
		a.mu.Lock()
		a.pending = a.pending[1:]
		if cur.initDB != "" && cur.q.Outcome == "ok" {
			a.db = cur.initDB
		}
		a.mu.Unlock()
		p.phase = phaseStart
		a.record(cur)
	}
}

// isEOF reports whether a packet ends a list of definitions or rows: an
// EOF packet, or (CLIENT_DEPRECATE_EOF) an OK packet with header 0xfe.
func (p *respParser) isEOF(a *queryAudit, head []byte, size int) bool {
	if len(head) == 0 || head[0] != 0xfe {
		return false
	}
	if a.deprecateEOF {
		return size < 1<<24-1
	}
	return size < 9
}

// answerPacket reads one packet of cur's answer; done when it was the last.
func (p *respParser) answerPacket(a *queryAudit, cur *pendingCommand, head []byte, size int) (done bool) {
	q := cur.q
	if len(head) > 0 && head[0] == 0xff && p.phase != phaseColumns && p.phase != phasePrepParams && p.phase != phasePrepCols {
		q.Outcome = "error"
		if len(head) >= 3 {
			q.ErrorCode = binary.LittleEndian.Uint16(head[1:3])
		}
		return true
	}
	switch cur.answer {
	case answerUnknown:
		p.lost = true
		q.Outcome = "unknown"
		return true
	case answerOnePacket:
		q.Outcome = "ok"
		return true
	case answerSimple:
		q.Outcome = "ok"
		if len(head) > 0 && head[0] == 0x00 {
			q.RowsAffected, _ = lenenc(head[1:])
		}
		return true
	case answerFields:
		if p.isEOF(a, head, size) {
			q.Outcome = "ok"
			return true
		}
		return false
	case answerRows:
		if p.isEOF(a, head, size) {
			q.Outcome = "result_set"
			return true
		}
		q.Rows++
		return false
	case answerPrepare:
		return p.prepare(a, cur, head, size)
	}
	// answerResult
	switch p.phase {
	case phaseStart:
		switch {
		case len(head) > 0 && head[0] == 0x00:
			q.Results++
			affected, n := lenenc(head[1:])
			q.RowsAffected += affected
			if q.Outcome == "" {
				q.Outcome = "ok"
			}
			_, m := lenenc(head[1+n:])
			return !moreResults(head, 1+n+m)
		case len(head) > 0 && head[0] == 0xfb:
			q.LoadDataLocal = true // the client sends the file; the backend then answers OK or ERR
			return false
		case len(head) > 0 && head[0] == 0xfe && size < 9:
			q.Outcome = "ok"
			return true
		}
		count, n := lenenc(head)
		q.Results++
		q.ResultSets++
		q.Outcome = "result_set"
		p.cols = count
		if size > n && n < len(head) && head[n] == 0 {
			p.cols = 0 // metadata_follows = 0: the client has the columns cached
		}
		p.phase = phaseColumns
		if p.cols == 0 {
			p.phase = p.afterColumns(a)
		}
	case phaseColumns:
		if p.cols--; p.cols == 0 {
			p.phase = p.afterColumns(a)
		}
	case phaseColumnsEOF:
		p.phase = phaseRows
		if len(head) >= 5 && binary.LittleEndian.Uint16(head[3:5])&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 {
			return true // a cursor: the rows come with COM_STMT_FETCH
		}
	case phaseRows:
		if !p.isEOF(a, head, size) {
			q.Rows++
			return false
		}
		p.phase = phaseStart
		if a.deprecateEOF {
			_, n := lenenc(head[1:])
			_, m := lenenc(head[1+n:])
			return !moreResults(head, 1+n+m)
		}
		return !moreResults(head, 3)
	}
	return false
}

// afterColumns is the phase after a result's column definitions.
func (p *respParser) afterColumns(a *queryAudit) int {
	if a.deprecateEOF {
		return phaseRows
	}
	return phaseColumnsEOF
}

// prepare follows COM_STMT_PREPARE's answer: OK with the statement id and
// counts, then the parameter and column definitions.
func (p *respParser) prepare(a *queryAudit, cur *pendingCommand, head []byte, size int) bool {
	q := cur.q
	switch p.phase {
	case phaseStart:
		if len(head) < 9 || head[0] != 0x00 {
			q.Outcome = "unknown"
			return true
		}
		id := binary.LittleEndian.Uint32(head[1:5])
		q.StatementID = &id
		q.Outcome = "ok"
		p.cols = uint64(binary.LittleEndian.Uint16(head[5:7]))
		p.params = uint64(binary.LittleEndian.Uint16(head[7:9]))
		p.prepCols, p.prepParams = p.cols, p.params
		st, dg, red, tr := audit.Text(cur.text, a.redact, a.max)
		q.Statement, q.Digest, q.Redacted, q.Truncated = st, dg, red, tr
		t := preparedText{st, dg, red, tr}
		a.mu.Lock()
		a.stmts[id], a.last = t, t
		a.mu.Unlock()
		p.phase = phasePrepParams
		return p.prepNext(a)
	case phasePrepParams:
		p.params--
		return p.prepNext(a)
	case phasePrepParamsEOF:
		p.phase = phasePrepCols
		return p.prepNext(a)
	case phasePrepCols:
		p.cols--
		return p.prepNext(a)
	case phasePrepColsEOF:
		return true
	}
	return true
}

// prepNext moves past finished parts of a prepare's answer; true when
// nothing more comes.
func (p *respParser) prepNext(a *queryAudit) bool {
	for {
		switch p.phase {
		case phasePrepParams:
			if p.params > 0 {
				return false
			}
			p.phase = phasePrepCols
			if !a.deprecateEOF && p.hadParams() {
				p.phase = phasePrepParamsEOF
				return false
			}
		case phasePrepParamsEOF:
			return false
		case phasePrepCols:
			if p.cols > 0 {
				return false
			}
			if !a.deprecateEOF && p.hadCols() {
				p.phase = phasePrepColsEOF
				return false
			}
			return true
		default:
			return false
		}
	}
}

// hadParams/hadCols: whether the prepare's OK announced any, read from
// the head of its OK (still in p.head while the definitions stream).
func (p *respParser) hadParams() bool { return p.prepParams > 0 }
func (p *respParser) hadCols() bool   { return p.prepCols > 0 }

// moreResults reads the status flags at off of an OK or EOF packet.
func moreResults(head []byte, off int) bool {
	return off+2 <= len(head) && binary.LittleEndian.Uint16(head[off:off+2])&mysql.SERVER_MORE_RESULTS_EXISTS != 0
}

// lenenc reads a length-encoded integer; n is its size (0 when cut off).
func lenenc(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	switch c := b[0]; {
	case c < 0xfb:
		return uint64(c), 1
	case c == 0xfc && len(b) >= 3:
		return uint64(binary.LittleEndian.Uint16(b[1:3])), 3
	case c == 0xfd && len(b) >= 4:
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4
	case c == 0xfe && len(b) >= 9:
		return binary.LittleEndian.Uint64(b[1:9]), 9
	}
	return 0, 1
}

// useDatabase is the database of a `USE db` query (which changes the
// session's database as COM_INIT_DB does), or "". Only a text that starts
// with USE is lexed.
func useDatabase(q []byte) string {
	i := 0
	for i < len(q) && (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r') {
		i++
	}
	if len(q) < i+4 || !upperEqual(q[i:i+3], "USE") {
		return ""
	}
	toks, ok := lexSQL(string(q), 0)
	if !ok || len(toks) < 2 || !toks[0].is("USE") || (toks[1].kind != tokWord && toks[1].kind != tokQuoted) {
		return ""
	}
	if rest := toks[2:]; len(rest) > 0 && rest[0].kind == tokSemi {
		rest = rest[1:]
		if len(rest) > 0 && rest[0].kind != tokEnd {
			return "" // more statements follow: which one ran is not known here
		}
	} else if len(rest) > 0 && rest[0].kind != tokEnd {
		return ""
	}
	return toks[1].text
}
