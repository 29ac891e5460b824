package proxy

import (
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/username"
	"github.com/portcullisdb/portcullis/proxy/wire"
)

// Session is one authenticated, relaying client connection.
type Session struct {
	ID              uint32    `json:"id"`
	Identity        string    `json:"identity"`
	Issuer          string    `json:"issuer"`
	Role            string    `json:"role"`
	BackendUser     string    `json:"backend_user"`
	BackendThreadID uint32    `json:"backend_thread_id"`
	ClientAddr      string    `json:"client_addr"`
	Started         time.Time `json:"started"`
	// LoginID is the login (or workload exchange) the token came from
	// (its sid claim); "" for tokens without one.
	LoginID string `json:"login_id,omitempty"`

	who             auth.Identity // what the token said, to re-check the role later
	allowDynamicSQL bool          // the role lets PREPARE/EXECUTE IMMEDIATE take SQL from variables
	release         func()        // ends what the session acquired (a per-session backend user)
	endAt           time.Time     // when set, the session ends then (its token's expiry)
	pooled          *pooled       // the backend connection, when it may return to the pool
	poolKey         poolKey
	returned        bool // the relay ended with the backend connection back in the pool
	once            sync.Once
	killReason      string
	killedBy        atomic.Pointer[string] // set when a KILL CONNECTION for this session went to the backend
	client          net.Conn
	backend         net.Conn
	qa              *queryAudit // the role's query audit; nil when off (queryaudit.go)
}

// kill closes both legs once; the relay then ends with reason. A kill
// with a reason first tells the client why, as the answer to the command
// it is most likely waiting on (sequence id 1); if it was mid-result, the
// stream is being closed anyway.
func (s *Session) kill(reason string) {
	s.end(codeConnectionKilled, reason, "connection was killed: "+reason)
}

// end closes both legs once, first sending the client an ERR packet with
// code and message when reason is set.
func (s *Session) end(code uint16, reason, message string) {
	s.once.Do(func() {
		s.killReason = reason
		if reason != "" {
			s.client.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			wire.WritePacket(s.client, 1, wire.ErrPacket(code, "portcullis: "+message))
		}
		s.client.Close()
		s.backend.Close()
	})
}

// detach closes only the client leg, once, keeping the backend connection
// for the pool; it reports false when a kill got there first.
func (s *Session) detach() bool {
	done := false
	s.once.Do(func() {
		s.client.Close()
		done = true
	})
	return done
}

// Registry holds the live sessions of one proxy.
type Registry struct {
	mu         sync.Mutex
	sessions   map[uint32]*Session
	byIdentity map[string]int // live sessions per lowercased identity
}

func newRegistry() *Registry {
	return &Registry{sessions: map[uint32]*Session{}, byIdentity: map[string]int{}}
}

func (r *Registry) add(s *Session) {
	r.mu.Lock()
	r.sessions[s.ID] = s
	r.byIdentity[identityKey(s.Identity)]++
	r.mu.Unlock()
}

func (r *Registry) remove(id uint32) {
	r.mu.Lock()
	if s, ok := r.sessions[id]; ok {
		delete(r.sessions, id)
		key := identityKey(s.Identity)
		if r.byIdentity[key]--; r.byIdentity[key] <= 0 {
			delete(r.byIdentity, key)
		}
	}
	r.mu.Unlock()
}

// count is how many sessions identity has open.
func (r *Registry) count(identity string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byIdentity[identityKey(identity)]
}

// identityKey is the form identities are counted and matched by: the one
// user-name normalisation (auth/username); a name it refuses (never a
// verified token's) stands for itself.
func identityKey(name string) string {
	if key, err := username.Normalize(name); err == nil {
		return key
	}
	return name
}

func (r *Registry) get(id uint32) *Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[id]
}

// byBackendThread returns the live session on backend thread id, or nil.
func (r *Registry) byBackendThread(id uint32) *Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.sessions {
		if s.BackendThreadID == id {
			return s
		}
	}
	return nil
}

// List returns a snapshot of the live sessions, oldest first.
func (r *Registry) List() []*Session {
	r.mu.Lock()
	out := make([]*Session, 0, len(r.sessions))
	for _, s := range r.sessions {
		out = append(out, s)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Kill ends one session; it reports whether the session was live.
func (r *Registry) Kill(id uint32, reason string) bool {
	s := r.get(id)
	if s == nil {
		return false
	}
	s.kill(reason)
	return true
}

// KillIdentity ends every session of identity (compared as auth/username
// normalises user names) and returns how many it ended.
func (r *Registry) KillIdentity(identity, reason string) int {
	n := 0
	key := identityKey(identity)
	for _, s := range r.List() {
		if identityKey(s.Identity) == key {
			s.kill(reason)
			n++
		}
	}
	return n
}

// KillAll ends every session and returns how many it ended.
func (r *Registry) KillAll(reason string) int {
	list := r.List()
	for _, s := range list {
		s.kill(reason)
	}
	return len(list)
}
