package audit_test

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/audit"
)

func TestTextRedacts(t *testing.T) {
	tests := []struct {
		sql, want string
		secrets   []string
	}{
		{"SELECT * FROM t WHERE id = 42 AND name='bob'", "select * from `t` where `id` = ? and `name` = ?", []string{"42", "bob"}},
		{"select 1; select 'x7q'; insert into t values (1,'a9z'),(2,'b8y')", "select ? ; select ? ; insert into `t` values ( ... )", []string{"x7q", "a9z", "b8y"}},
		{"select 0x414243, x'41', b'0110', 1.5e3, _utf8mb4'zz9', \"dq8\"", "select ...", []string{"414243", "0110", "zz9", "dq8", "1.5e3"}},
		{"select /*M! 'hidden5' */ 1", "select ?", []string{"hidden5"}},
		// With NO_BACKSLASH_ESCAPES, 'secret4' below is a literal; without, an identifier.
		{`select 'a\' , 'secret4'`, "(withheld: the literals depend on the session's sql_mode)", []string{"secret4"}},
	}
	for _, tt := range tests {
		got, digest, redacted, _ := audit.Text([]byte(tt.sql), true, 0)
		if got != tt.want || !redacted || len(digest) != 64 {
			t.Errorf("Text(%q) = %q, %q, %v; want %q", tt.sql, got, digest, redacted, tt.want)
		}
		for _, s := range tt.secrets {
			if strings.Contains(got, s) {
				t.Errorf("Text(%q) = %q holds the literal %q", tt.sql, got, s)
			}
		}
	}
}

func TestTextDigestGroupsShapes(t *testing.T) {
	_, a, _, _ := audit.Text([]byte("SELECT name FROM users WHERE id = 1"), true, 0)
	_, b, _, _ := audit.Text([]byte("select name from users where id=99"), false, 0)
	_, c, _, _ := audit.Text([]byte("select name from users where id > 99"), false, 0)
	if a != b || a == c {
		t.Errorf("digests: equal shapes %s %s, other shape %s", a, b, c)
	}
}

func TestTextFullModeRedactsPasswords(t *testing.T) {
	for _, sql := range []string{"SET PASSWORD = PASSWORD('hunter2x')", "create user bob identified by 'hunter2x'", "ALTER USER bob IDENTIFIED BY 'hunter2x'"} {
		got, _, redacted, _ := audit.Text([]byte(sql), false, 0)
		if strings.Contains(got, "hunter2x") || !redacted {
			t.Errorf("full mode Text(%q) = %q: the password shows", sql, got)
		}
	}
	got, _, redacted, _ := audit.Text([]byte("select 'visible'"), false, 0)
	if got != "select 'visible'" || redacted {
		t.Errorf("full mode changed a plain statement: %q", got)
	}
}

func TestTextTruncates(t *testing.T) {
	got, _, _, truncated := audit.Text([]byte("select 'ééééééé'"), false, 10)
	if !truncated || len(got) > 10 || !strings.HasPrefix(got, "select '") || !json.Valid([]byte(`"`+got+`"`)) {
		t.Errorf("Text cut to 10 = %q, truncated %v", got, truncated)
	}
	if _, _, _, truncated := audit.Text([]byte("select 1"), false, 64); truncated {
		t.Error("a short text was marked truncated")
	}
}

// A sink that does not read (a pipe nobody drains) must not block
// Query: lines are dropped and counted, and once the sink reads again
// the drop is itself a line.
func TestQueryNeverBlocksAndCountsDrops(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	l := audit.NewQueued(w, 8)
	var metric int
	l.OnDrop(func() { metric++ })
	big := strings.Repeat("x", 8<<10) // a few lines fill the pipe's buffer
	const n = 2000
	for i := 0; i < n; i++ {
		q := &audit.Query{Event: "query", Identity: "alice", Command: "COM_QUERY", Outcome: "ok"}
		q.SetText([]byte("select '"+big+"'"), false, 0)
		l.Query(q) // would hang here if the queue blocked
	}
	if l.Dropped() == 0 || uint64(metric) != l.Dropped() {
		t.Fatalf("dropped %d, metric %d: want drops counted", l.Dropped(), metric)
	}
	// Drain: the drop is reported in the stream.
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		if line["event"] == "audit_dropped" {
			if line["dropped"].(float64) < 1 {
				t.Fatalf("audit_dropped line without a count: %v", line)
			}
			return
		}
	}
	t.Fatal("no audit_dropped line")
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/audit.log"
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Record(audit.Event{Event: "connect", Outcome: "granted"})
	if err := os.Rename(path, path+".1"); err != nil { // as logrotate does
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Record(audit.Event{Event: "disconnect", Outcome: "closed"})
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), "disconnect") || strings.Contains(string(data), "connect\"") && strings.Contains(string(data), `"event":"connect"`) {
		t.Fatalf("after Reopen the new file holds %q, %v", data, err)
	}
}
