package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portcullisdb/portcullis/metrics"
)

// queryLines waits for at least n query-audit lines (they are written
// off the relay) and returns them.
func (h *harness) queryLines(n int) []map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out []map[string]any
		for _, l := range h.auditLines() {
			if l["event"] == "query" {
				out = append(out, l)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestQueryAudit runs each kind of command through a role with redacted
// query audit, against MariaDB, and checks each one's line: who, where,
// the command, the shape without any literal, and the backend's answer
// as followed in the relay (rows, affected rows, result sets, error code,
// LOAD DATA LOCAL, a killed query).
func TestQueryAudit(t *testing.T) {
	user := backendAccount(t, "pcit_qa", fmt.Sprintf("SELECT, INSERT, EXECUTE ON %s.*", testDB))
	table, proc := "qa_"+randomHex(3), "qa_p_"+randomHex(3)
	for _, s := range []string{
		fmt.Sprintf("CREATE TABLE %s.%s (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64))", testDB, table),
		fmt.Sprintf("INSERT INTO %s.%s (name) VALUES ('a'), ('b'), ('c')", testDB, table),
		fmt.Sprintf("CREATE PROCEDURE %s.%s() BEGIN SELECT 1; SELECT 2 UNION SELECT 3; END", testDB, proc),
	} {
		if _, err := root.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() {
		root.Exec(fmt.Sprintf("DROP TABLE IF EXISTS %s.%s", testDB, table))
		root.Exec(fmt.Sprintf("DROP PROCEDURE IF EXISTS %s.%s", testDB, proc))
	})
	h := startHarness(t, harnessOpts{roles: fmt.Sprintf(`  audited: {backend_user: %s, backend_password: "file:%s.pw", pool: {max_idle: -1}, query_audit: {mode: redacted}}`, user, user)})
	token := h.mint("quinn@example.com", []string{"audited"}, nil)
	mysql.RegisterReaderHandler("qa_rows", func() io.Reader { return strings.NewReader("lit-load-1\nlit-load-2\n") })
	t.Cleanup(func() { mysql.DeregisterReaderHandler("qa_rows") })
	db := h.open("quinn@example.com/audited", token, func(c *mysql.Config) {
		c.MultiStatements = true
		c.DBName = testDB
	})
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	drain := func(q string, args ...any) error {
		rows, err := conn.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for {
			for rows.Next() {
			}
			if !rows.NextResultSet() {
				return rows.Err()
			}
		}
	}
	mustDrain := func(q string, args ...any) {
		t.Helper()
		if err := drain(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustDrain(fmt.Sprintf("SELECT id, name FROM %s WHERE name <> 'lit-plain-1'", table))
	mustDrain(fmt.Sprintf("INSERT INTO %s (name) VALUES ('lit-multi-2'); SELECT COUNT(*) FROM %s WHERE name = 'lit-multi-3'", table, table))
	mustDrain("CALL " + proc + "()")
	stmt, err := conn.PrepareContext(ctx, fmt.Sprintf("SELECT name FROM %s WHERE id = ? AND name <> 'lit-prep-4'", table))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int{1, 2} {
		var name string
		if err := stmt.QueryRowContext(ctx, id).Scan(&name); err != nil {
			t.Fatal(err)
		}
	}
	stmt.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("LOAD DATA LOCAL INFILE 'Reader::qa_rows' INTO TABLE %s (name)", table)); err != nil {
		t.Fatalf("LOAD DATA LOCAL: %v", err)
	}
	if err := drain("SELECT * FROM no_such_table_qa WHERE x = 'lit-error-5'"); err == nil {
		t.Fatal("a missing table was found")
	}
	// A killed query: KILL QUERY from a second session of the same person.
	var thread int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&thread); err != nil {
		t.Fatal(err)
	}
	killed := make(chan error, 1)
	go func() { killed <- drain("SELECT SLEEP(20), 'lit-killed-6'") }()
	other, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		var n int
		other.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE id = ? AND info LIKE 'SELECT SLEEP%'", thread).Scan(&n)
		if n == 1 {
			break
		}
		if i > 100 {
			t.Fatal("the sleep never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := other.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", thread)); err != nil {
		t.Fatal(err)
	}
	if err := <-killed; err == nil {
		t.Fatal("the killed query succeeded")
	}
	other.Close()
	conn.Close()

	lines := h.queryLines(12)
	byShape := map[string][]map[string]any{}
	for _, l := range lines {
		if l["identity"] != "quinn@example.com" || l["role"] != "audited" || l["session_id"] == nil || l["backend_thread"] == nil || l["database"] != testDB || l["backend_user"] != user {
			t.Errorf("line without who and where: %v", l)
		}
		s, _ := l["statement"].(string)
		byShape[s] = append(byShape[s], l)
	}
	find := func(command, contains string) map[string]any {
		t.Helper()
		for _, l := range lines {
			if s, _ := l["statement"].(string); l["command"] == command && strings.Contains(s, contains) {
				return l
			}
		}
		t.Fatalf("no %s line with %q in %v", command, contains, lines)
		return nil
	}
	num := func(l map[string]any, k string) float64 { f, _ := l[k].(float64); return f }

	plain := find("COM_QUERY", "select `id` , `name` from")
	if plain["outcome"] != "result_set" || num(plain, "rows") != 3 || plain["redacted"] != true || len(plain["digest"].(string)) != 64 {
		t.Errorf("plain query: %v", plain)
	}
	multi := find("COM_QUERY", "insert into")
	if multi["outcome"] != "result_set" || num(multi, "rows_affected") != 1 || num(multi, "rows") != 1 || num(multi, "results") != 2 {
		t.Errorf("multi-statement: %v", multi)
	}
	call := find("COM_QUERY", "call `"+proc+"`")
	if num(call, "result_sets") != 2 || num(call, "rows") != 3 || num(call, "results") != 3 {
		t.Errorf("CALL with two result sets and its final OK: %v", call)
	}
	prep := find("COM_STMT_PREPARE", "where `id` = ?")
	if prep["outcome"] != "ok" || prep["statement_id"] == nil {
		t.Fatalf("prepare: %v", prep)
	}
	var execs int
	for _, l := range lines {
		if l["command"] == "COM_STMT_EXECUTE" && l["session_id"] == prep["session_id"] {
			execs++
			if l["statement_id"] != prep["statement_id"] || l["digest"] != prep["digest"] || l["statement"] != prep["statement"] || l["outcome"] != "result_set" || num(l, "rows") != 1 {
				t.Errorf("execute not linked to its prepare %v: %v", prep, l)
			}
		}
	}
	if execs != 2 {
		t.Errorf("%d execute lines, want 2", execs)
	}
	load := find("COM_QUERY", "load data local infile")
	if load["load_data_local"] != true || load["outcome"] != "ok" || num(load, "rows_affected") != 2 {
		t.Errorf("LOAD DATA LOCAL: %v", load)
	}
	bad := find("COM_QUERY", "no_such_table_qa")
	if bad["outcome"] != "error" || num(bad, "error_code") != 1146 {
		t.Errorf("error statement: %v", bad)
	}
	kill := find("COM_QUERY", "sleep")
	if kill["outcome"] != "error" || num(kill, "error_code") != 1317 {
		t.Errorf("killed query: %v", kill)
	}
	data, err := os.ReadFile(h.audit)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"lit-", token, token[strings.LastIndex(token, ".")+1:], passwords[user]} {
		if strings.Contains(string(data), secret) {
			t.Errorf("the audit file holds %q", secret[:min(len(secret), 12)])
		}
	}
}

// TestQueryAuditFullAndRefused: mode full keeps the text as sent, cut at
// max_statement_bytes with the cut marked; a statement the guard refuses
// is a line with its code, and a password in it never shows.
func TestQueryAuditFullAndRefused(t *testing.T) {
	user := backendAccount(t, "pcit_qaf", fmt.Sprintf("SELECT ON %s.*", testDB))
	h := startHarness(t, harnessOpts{roles: fmt.Sprintf(`  fullaudit: {backend_user: %s, backend_password: "file:%s.pw", pool: {max_idle: -1}, query_audit: {mode: full, max_statement_bytes: 64}}`, user, user)})
	db := h.open("fay@example.com/fullaudit", h.mint("fay@example.com", []string{"fullaudit"}, nil))
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	long := "SELECT 'visible-literal', '" + strings.Repeat("y", 100) + "'"
	var a, b string
	if err := conn.QueryRowContext(ctx, long).Scan(&a, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "SET PASSWORD = PASSWORD('pw-in-the-text-7')"); err == nil {
		t.Fatal("SET PASSWORD passed the guard")
	}
	if err := conn.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "USE information_schema"); err != nil {
		t.Fatal(err)
	}
	queryString(t, conn, "SELECT 'after-use'")
	conn.Close()
	lines := h.queryLines(4)
	var sawLong, sawRefused bool
	for _, l := range lines {
		s, _ := l["statement"].(string)
		switch {
		case strings.HasPrefix(s, "SELECT 'visible-literal'"):
			sawLong = true
			if l["truncated"] != true || len(s) != 64 || l["redacted"] == true || l["outcome"] != "result_set" {
				t.Errorf("long statement in full mode: %v", l)
			}
		case strings.Contains(s, "password"):
			sawRefused = true
			if l["outcome"] != "refused" || l["error_code"].(float64) != 1227 || l["redacted"] != true {
				t.Errorf("refused statement: %v", l)
			}
		case s == "SELECT 'after-use'":
			if l["database"] != "information_schema" {
				t.Errorf("after USE: %v", l)
			}
		case l["command"] == "COM_PING":
			t.Errorf("pings are not recorded: %v", l)
		}
	}
	if !sawLong || !sawRefused {
		t.Errorf("lines %v: want the long select and the refused SET PASSWORD", lines)
	}
	data, _ := os.ReadFile(h.audit)
	if strings.Contains(string(data), "pw-in-the-text-7") {
		t.Error("the password of a refused SET PASSWORD is in the audit file")
	}
}

// TestQueryAuditOffWritesNothing: a role without query_audit writes only
// connect and disconnect.
func TestQueryAuditOffWritesNothing(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	db := h.open("otto@example.com/reader", h.mint("otto@example.com", []string{"reader"}, nil))
	queryString(t, db, "SELECT 'lit-off-8'")
	db.Close()
	time.Sleep(200 * time.Millisecond)
	for _, l := range h.auditLines() {
		if l["event"] == "query" {
			t.Fatalf("query line with audit off: %v", l)
		}
	}
	_ = sql.ErrNoRows
}

// TestQueryAuditSlowSink: the audit file is a pipe whose reader stops
// reading. Statements still run (the relay never waits for the sink),
// the lines that do not fit are dropped and counted in
// portcullis_audit_dropped_total, and once the reader reads again the
// drop is itself a line.
func TestQueryAuditSlowSink(t *testing.T) {
	user := backendAccount(t, "pcit_qas", fmt.Sprintf("SELECT ON %s.*", testDB))
	var fifo string
	var paused atomic.Bool
	resume := make(chan struct{})
	got := make(chan []byte, 1)
	h := startHarness(t, harnessOpts{
		roles: fmt.Sprintf(`  slowaudit: {backend_user: %s, backend_password: "file:%s.pw", pool: {max_idle: -1}, query_audit: {mode: redacted}}`, user, user),
		beforeStart: func(dir string) {
			fifo = filepath.Join(dir, "audit.log")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			go func() {
				f, err := os.Open(fifo) // until the service opens it to write
				if err != nil {
					got <- nil
					return
				}
				defer f.Close()
				var all []byte
				buf := make([]byte, 4096)
				for {
					if paused.Load() {
						<-resume
					}
					n, err := f.Read(buf)
					all = append(all, buf[:n]...)
					if err != nil {
						got <- all
						return
					}
				}
			}()
		},
	})
	// The pipe stays readable by the leak check only as long as the
	// service writes to it: remove it before the service stops.
	t.Cleanup(func() { os.Remove(fifo) })
	token := h.mint("sam@example.com", []string{"slowaudit"}, nil)
	db := h.open("sam@example.com/slowaudit", token)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := testutil.ToFloat64(metrics.AuditDropped)
	paused.Store(true) // the reader stops after its next read; the pipe's 64 KiB fill up
	pad := strings.Repeat("z", 2000)
	qctx, cancel := context.WithTimeout(ctx, 20*time.Second) // a stalled relay fails here, not by hanging
	defer cancel()
	const n = 6000 // lines of ~2 KiB: far more than the pipe and the queue hold
	for i := 0; i < n; i++ {
		var s string
		if err := conn.QueryRowContext(qctx, "SELECT '"+pad+"'").Scan(&s); err != nil {
			t.Fatalf("statement %d with the sink stalled: %v", i, err)
		}
	}
	dropped := testutil.ToFloat64(metrics.AuditDropped) - before
	if dropped < 1 {
		t.Fatalf("portcullis_audit_dropped_total rose by %v with the sink stalled for %d lines", dropped, n)
	}
	paused.Store(false)
	close(resume)
	conn.Close()
	db.Close()
	h.svc.Shutdown(ctx) // closes the audit file: the reader sees EOF
	all := <-got
	var reported float64
	for _, line := range splitLines(all) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("audit line is not JSON: %q", line)
		}
		if m["event"] == "audit_dropped" {
			reported += m["dropped"].(float64)
		}
	}
	if reported != dropped {
		t.Errorf("audit_dropped lines report %v dropped, the metric %v", reported, dropped)
	}
	if strings.Contains(string(all), token[strings.LastIndex(token, ".")+1:]) || strings.Contains(string(all), passwords[user]) {
		t.Error("a token or password is in the audit stream")
	}
}
