package proxy

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/portcullisdb/portcullis/auth/username"
	"github.com/portcullisdb/portcullis/proxy/wire"
)

// relay copies bytes both ways until either side closes, the session is
// killed or ctx ends. It returns the bytes each way and why it ended.
func (s *Server) relay(ctx context.Context, sess *Session, client, backend net.Conn) (up, down int64, reason string) {
	stop := context.AfterFunc(ctx, func() { sess.kill("proxy shutting down") })
	defer stop()
	type result struct {
		n    int64
		err  error
		side string
	}
	backendDone := make(chan result, 1)
	var fromBackend io.Reader = backend
	var lastBackend *atomic.Int64
	if s.opt.IdleTimeout > 0 {
		// Only with an idle timeout: note when the backend last sent, so a
		// client waiting on a long result is not idle.
		lastBackend = new(atomic.Int64)
		lastBackend.Store(time.Now().UnixNano())
		fromBackend = activityReader{backend, lastBackend}
	}
	if sess.qa != nil { // query audit follows the answers as they pass
		fromBackend = sess.qa.reader(fromBackend)
	}
	// The client-to-backend copier runs on this goroutine and only the
	// other direction gets one of its own: an idle session holds two
	// goroutine stacks (this one, shrunk by the GC, and the backend
	// reader's), not three. Whichever copier ends first ends the session
	// (or pools its backend), as it did when both had goroutines: the
	// backend copier does that itself when it wins, because this goroutine
	// is then still waiting on the client.
	var ended atomic.Bool
	go func() {
		n, err := copyToClient(client, backend, fromBackend)
		if ended.CompareAndSwap(false, true) {
			// The backend went away (restart, crash, its own KILL): say
			// so, rather than leave the client with a bare EOF; closing
			// both legs returns the client copier.
			if note := sess.killedBy.Load(); note != nil {
				// A KILL the proxy passed on ended it: say who, as MariaDB
				// closes a killed idle or sleeping thread without a word.
				sess.kill(*note)
			} else {
				sess.end(codeBackendLost, "backend closed the connection", "lost the connection to the backend "+s.opt.Backend.Address+": reconnect")
			}
			sess.kill("")
		}
		backendDone <- result{n, err, "backend"}
	}()
	n, err := s.copyClientToBackend(sess, client, backend, lastBackend)
	clientRes := result{n, err, "client"}
	clientFirst := ended.CompareAndSwap(false, true)
	first := clientRes
	if !clientFirst {
		first = <-backendDone
	}
	if errors.Is(first.err, errPoolReturn) {
		// The client quit cleanly, so the backend is idle: stop the other
		// copier without closing the backend, and pool the connection.
		backend.SetReadDeadline(time.Now())
		second := <-backendDone
		down = second.n
		up = first.n
		if errors.Is(second.err, os.ErrDeadlineExceeded) && sess.detach() {
			backend.SetReadDeadline(time.Time{})
			sess.returned = true
			return up, down, "client quit (backend connection pooled)"
		}
		sess.kill("")
		return up, down, "client quit"
	}
	if errors.Is(first.err, errIdle) {
		sess.kill(fmt.Sprintf("idle for %v (proxy.idle_timeout)", s.opt.IdleTimeout))
	}
	sess.kill("") // closes both legs; the other copier returns
	second := clientRes
	if clientFirst {
		second = <-backendDone
	}
	for _, r := range []result{first, second} {
		if r.side == "client" {
			up = r.n
		} else {
			down = r.n
		}
	}
	switch {
	case sess.killReason != "":
		reason = sess.killReason
	case errors.Is(first.err, errClientQuit):
		reason = "client quit"
	case first.side == "client":
		reason = "client closed the connection"
	default:
		reason = "backend closed the connection"
	}
	if first.err != nil && !errors.Is(first.err, io.EOF) && !errors.Is(first.err, net.ErrClosed) && !errors.Is(first.err, errClientQuit) && !errors.Is(first.err, errIdle) {
		reason += ": " + unwrapNetErr(first.err).Error()
	}
	return up, down, reason
}

// errClientQuit ends the client-to-backend copy after COM_QUIT; errIdle
// when neither side sent anything for proxy.idle_timeout.
var (
	errClientQuit = errors.New("client quit")
	errIdle       = errors.New("idle timeout")
	errPoolReturn = errors.New("client quit; backend connection to be pooled")
)

// activityReader notes the time of every read from the backend.
type activityReader struct {
	r    io.Reader
	last *atomic.Int64
}

func (a activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// clientReadBuffer is the client leg's read buffer while a command
// arrives. It holds a whole command the proxy looks into (at most
// commandPeekLimit); larger packets stream through it in chunks.
const clientReadBuffer = 16 << 10

// Both copiers take their buffers from pools only while there are bytes
// to move, so an idle session holds none (thousands of idle sessions are
// what a proxy mostly holds) and a connect allocates none. The copy
// buffer matches TLS's largest record.
var (
	clientReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, clientReadBuffer) }}
	copyBuffers   = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}
)

// clientReader is the client leg as the client-to-backend copier reads it:
// a pooled bufio.Reader while a command is arriving, none while the
// client is idle.
type clientReader struct {
	conn    net.Conn
	br      *bufio.Reader // nil while idle
	first   [1]byte       // the byte that ended the idle wait
	pending bool
}

// Read is what br reads from: the byte of the idle wait, then the conn.
func (r *clientReader) Read(p []byte) (int, error) {
	if r.pending && len(p) > 0 {
		p[0], r.pending = r.first[0], false
		return 1, nil
	}
	return r.conn.Read(p)
}

// peek returns the next n bytes. With nothing buffered it gives the
// buffer back and waits on a one-byte read. Over TLS that read takes in
// and decrypts a whole record, so the reads that follow are served from
// it without a system call; only a plain TCP client (--insecure-no-tls,
// development) pays one more read per command.
func (r *clientReader) peek(n int) ([]byte, error) {
	if r.br == nil || r.br.Buffered() == 0 {
		r.release()
		for {
			k, err := r.conn.Read(r.first[:])
			if k == 1 {
				break
			}
			if err != nil {
				return nil, err
			}
		}
		r.pending = true
		r.br = clientReaders.Get().(*bufio.Reader)
		r.br.Reset(r)
	}
	return r.br.Peek(n)
}

func (r *clientReader) release() {
	if r.br != nil {
		r.br.Reset(nil)
		clientReaders.Put(r.br)
		r.br = nil
	}
}

// copyToClient is the backend-to-client direction: a plain copy, no
// parsing. With both legs plain TCP, io.Copy splices in the kernel. With
// a TCP backend (what the proxy dials) it reads through the socket
// itself (rawBackendReader): a buffer is taken from the pool only once
// bytes are there, so an idle session holds none, and each read takes up
// to 16 KiB, a whole result of most commands in one system call.
func copyToClient(client, backend net.Conn, from io.Reader) (int64, error) {
	_, plainClient := client.(*net.TCPConn)
	if _, plainBackend := backend.(*net.TCPConn); plainClient && plainBackend && from == io.Reader(backend) {
		return io.Copy(client, backend)
	}
	if r, ok := newRawBackendReader(backend, from); ok {
		return r.copyTo(client)
	}
	small := make([]byte, smallRead)
	var total int64
	big := false
	for {
		buf, pooled := small, (*[]byte)(nil)
		if big {
			pooled = copyBuffers.Get().(*[]byte)
			buf = *pooled
		}
		n, rerr := from.Read(buf)
		var werr error
		if n > 0 {
			_, werr = client.Write(buf[:n])
			total += int64(n)
		}
		big = n == len(buf)
		if pooled != nil {
			copyBuffers.Put(pooled)
		}
		switch {
		case werr != nil:
			return total, werr
		case errors.Is(rerr, io.EOF):
			return total, nil
		case rerr != nil:
			return total, rerr
		}
	}
}

// smallRead is the fallback copier's own buffer (a backend that is not a
// TCP socket): enough for the OK packets and small result sets of most
// commands. A read that fills it takes a pooled 16 KiB buffer for the next
// read, until a read comes back short.
const smallRead = 1 << 10

// rawBackendReader reads the backend socket through syscall.RawConn:
// the runtime's poller waits for the socket to be readable, and only then
// does the read take a pooled buffer. The system calls are those of a
// net.Conn read (a read that finds nothing, the wait, the read), the
// deadlines and Close still end the wait.
type rawBackendReader struct {
	rc   syscall.RawConn
	last *atomic.Int64 // the idle timeout's note of backend activity, or nil
	buf  *[]byte
	n    int
	err  error
	fn   func(fd uintptr) bool
}

func newRawBackendReader(backend net.Conn, from io.Reader) (*rawBackendReader, bool) {
	tcp, ok := backend.(*net.TCPConn)
	if !ok {
		return nil, false
	}
	r := &rawBackendReader{}
	switch f := from.(type) {
	case *net.TCPConn:
		if f != tcp {
			return nil, false
		}
	case activityReader:
		if f.r != io.Reader(tcp) {
			return nil, false
		}
		r.last = f.last
	default:
		return nil, false
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		return nil, false
	}
	r.rc = rc
	r.fn = r.readFD
	return r, true
}

// readFD is the RawConn.Read callback: false (wait for the poller) when
// the socket has nothing yet, with the buffer given back.
func (r *rawBackendReader) readFD(fd uintptr) bool {
	if r.buf == nil {
		r.buf = copyBuffers.Get().(*[]byte)
	}
	for {
		n, err := syscall.Read(int(fd), *r.buf)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			copyBuffers.Put(r.buf)
			r.buf = nil
			return false
		case nil:
			r.n, r.err = n, nil
			if n == 0 {
				r.err = io.EOF
			}
		default:
			r.n, r.err = 0, os.NewSyscallError("read", err)
		}
		return true
	}
}

func (r *rawBackendReader) copyTo(client net.Conn) (int64, error) {
	var total int64
	for {
		r.n, r.err = 0, nil
		if err := r.rc.Read(r.fn); err != nil {
			r.release()
			return total, err // a deadline or Close ended the wait
		}
		var werr error
		if r.n > 0 {
			if r.last != nil {
				r.last.Store(time.Now().UnixNano())
			}
			_, werr = client.Write((*r.buf)[:r.n])
			total += int64(r.n)
		}
		r.release()
		switch {
		case werr != nil:
			return total, werr
		case errors.Is(r.err, io.EOF):
			return total, nil
		case r.err != nil:
			return total, r.err
		}
	}
}

func (r *rawBackendReader) release() {
	if r.buf != nil {
		copyBuffers.Put(r.buf)
		r.buf = nil
	}
}

// commandPeekLimit bounds the command packets the proxy looks into in its
// read buffer; a larger query or prepare is read whole (guardLarge), and
// any other larger command is forwarded as it streams.
const commandPeekLimit = 4 << 10

// copyClientToBackend forwards client packets, tracking packet boundaries
// only to find the commands the proxy must handle itself:
//   - COM_CHANGE_USER is refused: it would switch identity without a token;
//   - COM_QUERY and COM_STMT_PREPARE pass the statement guard (guard.go),
//     which refuses account statements and finds KILL;
//   - KILL and COM_PROCESS_KILL reach only the caller's own sessions
//     (ownKill).
func (s *Server) copyClientToBackend(sess *Session, client, backend net.Conn, lastBackend *atomic.Int64) (int64, error) {
	cr := &clientReader{conn: client}
	defer cr.release()
	var total int64
	lastSeq := byte(0)
	idle := s.opt.IdleTimeout
	var lastSent time.Time // when the client last sent anything (idle timeout only)
	for {
		if idle > 0 {
			client.SetReadDeadline(time.Now().Add(idle))
		}
		hdr, err := cr.peek(4)
		br := cr.br
		if idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			heard := time.Unix(0, lastBackend.Load())
			if lastSent.After(heard) || time.Since(heard) < idle {
				continue // a command awaits its answer, or the backend is still sending: not idle
			}
			return total, errIdle
		}
		if idle > 0 && err == nil {
			lastSent = time.Now()
		}
		if err != nil {
			return total, err
		}
		size := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		seq := hdr[3]
		// A packet with sequence id 0 starts a command, unless it is the
		// wrap-around of a long LOAD DATA LOCAL stream (previous seq 255).
		isCommand := seq == 0 && lastSeq != 255
		lastSeq = seq
		if isCommand && size > commandPeekLimit && sess.qa != nil {
			// Query audit of a large command other than a query or prepare
			// (those reach intercept): its command byte and statement id.
			if head, err := br.Peek(9); err == nil && head[4] != mysql.COM_QUERY && head[4] != mysql.COM_STMT_PREPARE {
				sess.qa.command(head[4:], nil)
			}
		}
		if isCommand && size > commandPeekLimit {
			if head, err := br.Peek(5); err == nil && (head[4] == mysql.COM_QUERY || head[4] == mysql.COM_STMT_PREPARE) {
				n, err := s.guardLarge(sess, br, client, backend, size)
				total += n
				if err != nil {
					return total, err
				}
				continue
			}
		}
		if isCommand && size > 0 && size <= commandPeekLimit {
			pkt, err := br.Peek(4 + size)
			if err != nil {
				return total, err
			}
			if pkt[4] == mysql.COM_QUIT {
				if sess.pooled != nil {
					return total, errPoolReturn // the backend connection stays open for the pool
				}
				n, err := backend.Write(pkt)
				return total + int64(n), cmp.Or(err, errClientQuit)
			}
			if reply, forward, handled := s.intercept(sess, pkt[4:]); handled {
				br.Discard(4 + size)
				if forward != nil {
					if err := wire.WritePacket(backend, 0, forward); err != nil {
						return total, err
					}
					total += int64(4 + len(forward))
					continue
				}
				// The backend is idle between commands, so writing the
				// reply to the client here cannot interleave with a
				// response the other copier is relaying.
				if err := wire.WritePacket(client, 1, reply); err != nil {
					return total, err
				}
				continue
			}
		}
		for remaining := 4 + size; remaining > 0; {
			chunk, err := br.Peek(min(remaining, br.Size()))
			if len(chunk) > 0 {
				if _, werr := backend.Write(chunk); werr != nil {
					return total, werr
				}
				br.Discard(len(chunk))
				remaining -= len(chunk)
				total += int64(len(chunk))
			}
			if err != nil {
				return total, err
			}
		}
	}
}

// intercept decides about one command packet. handled=false forwards it
// unchanged; otherwise the proxy either forwards a rewritten packet or
// answers the client with reply.
func (s *Server) intercept(sess *Session, cmd []byte) (reply, forward []byte, handled bool) {
	if sess.qa != nil { // query audit: the command, and the proxy's own reply if it answers
		defer sess.qa.command(cmd, &reply)
	}
	switch cmd[0] {
	case mysql.COM_CHANGE_USER:
		return wire.ErrPacket(mysql.ER_ACCESS_DENIED_ERROR, "portcullis: COM_CHANGE_USER is not supported: open a new connection with the other identity's token"), nil, true
	case mysql.COM_QUERY, mysql.COM_STMT_PREPARE:
		v := checkStatement(cmd[1:], guardPolicy{allowDynamicSQL: sess.allowDynamicSQL, prepared: cmd[0] == mysql.COM_STMT_PREPARE})
		switch {
		case v.code != 0:
			s.log.Info("statement refused", "conn_id", sess.ID, "user", sess.Identity, "role", sess.Role, "code", v.code, "reason", v.msg)
			return wire.ErrPacket(v.code, "portcullis: "+v.msg), nil, true
		case v.kill != nil:
			return s.ownKill(sess, v.kill)
		}
	case mysql.COM_PROCESS_KILL:
		if len(cmd) < 5 {
			return nil, nil, false // malformed: the backend says so
		}
		id := uint64(cmd[1]) | uint64(cmd[2])<<8 | uint64(cmd[3])<<16 | uint64(cmd[4])<<24
		return s.ownKill(sess, &killStatement{modifiers: "CONNECTION ", id: id})
	}
	return nil, nil, false
}

// ownKill lets a KILL through only for the caller's own sessions, named
// by proxy id (what the client saw in the greeting, and what the mariadb
// CLI sends on Ctrl-C) or by backend thread id (what CONNECTION_ID()
// shows); either is sent to the backend as the session's backend thread.
// Any other thread (another identity's session, a pooled or direct
// connection of the same account) gets 1095.
func (s *Server) ownKill(sess *Session, k *killStatement) (reply, forward []byte, handled bool) {
	var target *Session
	if k.id >= connIDBase && k.id <= 1<<32-1 {
		if target = s.Sessions.get(uint32(k.id)); target == nil {
			return wire.ErrPacket(mysql.ER_NO_SUCH_THREAD, fmt.Sprintf("Unknown thread id: %d", k.id)), nil, true
		}
	} else if k.id < connIDBase {
		target = s.Sessions.byBackendThread(uint32(k.id))
	}
	if target == nil || !username.Equal(target.Identity, sess.Identity) {
		s.log.Info("KILL refused", "conn_id", sess.ID, "user", sess.Identity, "thread", k.id)
		return wire.ErrPacket(mysql.ER_KILL_DENIED_ERROR, fmt.Sprintf("portcullis: thread %d is not one of your sessions (You are not owner of thread %d)", k.id, k.id)), nil, true
	}
	if !strings.Contains(strings.ToUpper(k.modifiers), "QUERY") {
		// The backend closes a killed idle thread without a word: the
		// session tells its client who ended it.
		note := fmt.Sprintf("KILL %d from another session of %s", k.id, sess.Identity)
		target.killedBy.Store(&note)
	}
	rewritten := fmt.Sprintf("KILL %s%d", k.modifiers, target.BackendThreadID)
	return nil, append([]byte{mysql.COM_QUERY}, rewritten...), true
}

// maxGuardedCommand bounds a query or prepare larger than
// commandPeekLimit, which the relay reads whole to guard it.
const maxGuardedCommand = 64 << 20

// guardLarge reads a COM_QUERY or COM_STMT_PREPARE of size bytes or more
// (more packets follow a full one) whole, guards it and forwards it
// packet by packet as it came, or answers the client.
func (s *Server) guardLarge(sess *Session, br *bufio.Reader, client, backend net.Conn, size int) (int64, error) {
	var cmd []byte
	seq := byte(0)
	for {
		hdr := make([]byte, 4)
		if _, err := io.ReadFull(br, hdr); err != nil {
			return 0, err
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		seq = hdr[3]
		if len(cmd)+n > maxGuardedCommand {
			// Read what the client still sends, then refuse.
			for more := true; more; {
				if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
					return 0, err
				}
				if more = n == 1<<24-1; more {
					if _, err := io.ReadFull(br, hdr); err != nil {
						return 0, err
					}
					n, seq = int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16, hdr[3]
				}
			}
			return 0, wire.WritePacket(client, seq+1, wire.ErrPacket(mysql.ER_NET_PACKET_TOO_LARGE,
				fmt.Sprintf("portcullis: a query over %d MiB cannot be checked, so it is not sent: split it", maxGuardedCommand>>20)))
		}
		cmd = append(cmd, make([]byte, n)...)
		if _, err := io.ReadFull(br, cmd[len(cmd)-n:]); err != nil {
			return 0, err
		}
		if n < 1<<24-1 {
			break
		}
	}
	reply, forward, handled := s.intercept(sess, cmd)
	if handled && forward == nil {
		return 0, wire.WritePacket(client, seq+1, reply)
	}
	if handled {
		cmd = forward
	}
	var total int64
	for seq, off := byte(0), 0; ; seq++ {
		n := min(len(cmd)-off, 1<<24-1)
		if err := wire.WritePacket(backend, seq, cmd[off:off+n]); err != nil {
			return total, err
		}
		total += int64(4 + n)
		if off += n; n < 1<<24-1 {
			return total, nil
		}
	}
}
