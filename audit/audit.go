package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Event is one audit line. Empty fields are left out.
type Event struct {
	Time            time.Time `json:"time"`
	Event           string    `json:"event"`   // "connect" | "disconnect"
	Outcome         string    `json:"outcome"` // "granted" | "denied" | "error" | "closed"
	Reason          string    `json:"reason,omitempty"`
	SessionID       uint32    `json:"session_id,omitempty"`
	ClientAddr      string    `json:"client_addr,omitempty"`
	User            string    `json:"user,omitempty"` // the MySQL user name as sent, without the role
	Identity        string    `json:"identity,omitempty"`
	Issuer          string    `json:"issuer,omitempty"`
	Subject         string    `json:"subject,omitempty"`
	RequestedRole   string    `json:"requested_role,omitempty"`
	Role            string    `json:"role,omitempty"`
	BackendUser     string    `json:"backend_user,omitempty"`
	DurationMS      int64     `json:"duration_ms,omitempty"`
	BytesFromClient int64     `json:"bytes_from_client,omitempty"`
	BytesToClient   int64     `json:"bytes_to_client,omitempty"`
}

// Logger appends events as JSON lines. It is safe for concurrent use.
type Logger struct {
	mu  sync.Mutex
	enc *json.Encoder
	c   io.Closer

	path      string // the file Open opened, which Reopen opens again
	q         queue  // query lines (query.go)
	queueSize int    // default QueueSize
}

// Open appends to path ("-" is stdout), creating it with mode 0600.
func Open(path string) (*Logger, error) {
	if path == "-" {
		return New(os.Stdout), nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	l := New(f)
	l.c, l.path = f, path
	return l, nil
}

// Reopen opens the file again (after logrotate moved it; SIGHUP), so
// lines go to a new file at the same path. Stdout and writers given to
// New are left as they are.
func (l *Logger) Reopen() error {
	if l.path == "" {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("reopen audit log: %w", err)
	}
	l.mu.Lock()
	old := l.c
	l.enc, l.c = json.NewEncoder(f), f
	l.mu.Unlock()
	return old.Close()
}

// NewQueued writes events to w with a query-line queue of size lines
// (tests use a small one to see drops).
func NewQueued(w io.Writer, size int) *Logger {
	return &Logger{enc: json.NewEncoder(w), queueSize: size}
}

// New writes events to w.
func New(w io.Writer) *Logger {
	return &Logger{enc: json.NewEncoder(w)}
}

// Record writes e, stamping the time if unset. A failed write is returned
// so the caller can log it; the event is not retried.
func (l *Logger) Record(e Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.enc.Encode(e)
}

// Close closes the underlying file, if Open opened one.
func (l *Logger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c == nil {
		return nil
	}
	return l.c.Close()
}
