package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/metrics"
	"github.com/portcullisdb/portcullis/proxy/wire"
)

// Two budgets bound the client connections. A connection that has not
// authenticated holds a handshake slot: at most Options.MaxHandshakes of
// them, and at most Options.MaxHandshakesPerAddress from one source
// address (IPv6 by /64). Once its token is verified and its role resolved
// it trades that slot for a session slot, of which there are
// Options.MaxConnections. So strangers who open connections and never
// finish the handshake can fill only the handshake budget, and never
// take an authenticated session's place.
type budgets struct {
	maxHandshakes, maxPerAddr, maxSessions int

	mu         sync.Mutex
	handshakes int
	perAddr    map[string]int
	sessions   int
}

func newBudgets(maxHandshakes, maxPerAddr, maxSessions int) *budgets {
	return &budgets{maxHandshakes: maxHandshakes, maxPerAddr: maxPerAddr, maxSessions: maxSessions, perAddr: map[string]int{}}
}

// admission is one connection's place in the budgets.
type admission struct {
	b     *budgets
	addr  string // the per-address key
	stage int    // stageNone, stageHandshake or stageSession
}

const (
	stageNone = iota
	stageHandshake
	stageSession
)

// admit takes a handshake slot for a connection from remote, or says why
// there is none.
func (b *budgets) admit(remote net.Addr) (*admission, error) {
	key := addressKey(remote)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.handshakes >= b.maxHandshakes:
		return nil, &clientError{code: mysql.ER_CON_COUNT_ERROR, class: "too_many_handshakes",
			msg: fmt.Sprintf("too many connections still authenticating (limit %d, proxy.max_handshakes): try again in a moment", b.maxHandshakes)}
	case b.perAddr[key] >= b.maxPerAddr:
		return nil, &clientError{code: mysql.ER_CON_COUNT_ERROR, class: "too_many_handshakes",
			msg: fmt.Sprintf("too many connections still authenticating from %s (limit %d, proxy.max_handshakes_per_address): try again in a moment", key, b.maxPerAddr)}
	}
	b.handshakes++
	b.perAddr[key]++
	metrics.HandshakesOpen.Inc()
	return &admission{b: b, addr: key, stage: stageHandshake}, nil
}

// promote trades the handshake slot for a session slot; with none free it
// fails with 1040 and the connection keeps its handshake slot until
// release.
func (a *admission) promote() error {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.stage != stageHandshake {
		return nil
	}
	if b.sessions >= b.maxSessions {
		return &clientError{code: mysql.ER_CON_COUNT_ERROR, class: "too_many_connections",
			msg: fmt.Sprintf("too many connections to portcullis (limit %d, proxy.max_connections)", b.maxSessions)}
	}
	b.dropHandshake(a.addr)
	b.sessions++
	a.stage = stageSession
	return nil
}

// release gives back whichever slot the connection holds.
func (a *admission) release() {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	switch a.stage {
	case stageHandshake:
		b.dropHandshake(a.addr)
	case stageSession:
		b.sessions--
	}
	a.stage = stageNone
}

func (b *budgets) dropHandshake(key string) {
	b.handshakes--
	metrics.HandshakesOpen.Dec()
	if b.perAddr[key]--; b.perAddr[key] <= 0 {
		delete(b.perAddr, key)
	}
}

// addressKey is the per-address budget's key: the IPv4 address, or the
// IPv6 /64 (one host or one customer's link usually holds a whole /64).
func addressKey(remote net.Addr) string {
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return remote.String()
	}
	a := ap.Addr().Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// turnAway answers a connection that has no handshake slot with err's ERR
// packet, at once and without a greeting, as MySQL does at its own
// connection limit.
func (s *Server) turnAway(raw net.Conn, id uint32, err error, log *slog.Logger) {
	var ce *clientError
	if !errors.As(err, &ce) {
		ce = &clientError{code: mysql.ER_CON_COUNT_ERROR, class: "too_many_handshakes", msg: err.Error()}
	}
	raw.SetWriteDeadline(time.Now().Add(time.Second))
	wire.WritePacket(raw, 0, wire.ErrPacket(ce.code, "portcullis: "+ce.msg))
	s.record(audit.Event{Event: "connect", Outcome: "denied", Reason: ce.msg, SessionID: id, ClientAddr: raw.RemoteAddr().String()}, log)
	metrics.Connections.WithLabelValues("denied", ce.class).Inc()
}
