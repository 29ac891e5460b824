package integration

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/service"
)

// sharedStoreDSN makes a fresh MariaDB database for a store several
// harnesses (and child processes) share.
func sharedStoreDSN(t *testing.T) string {
	t.Helper()
	dbName := "pcit_store_" + randomHex(4)
	if _, err := root.Exec("CREATE DATABASE " + dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec("DROP DATABASE IF EXISTS " + dbName) })
	return fmt.Sprintf("root@tcp(%s)/%s", backendAddr, dbName)
}

// adminNode is the harness options of a node named name, with the admin
// API on, sharing the store dsn.
func adminNode(dsn, name string) harnessOpts {
	return harnessOpts{storeDSN: dsn, topYAML: "admin: {token: \"${env:PORTCULLIS_TEST_ADMIN_TOKEN}\"}\nnode: " + name}
}

// sleeper opens one connection for identity with token through h and runs
// SELECT SLEEP(30) on it; the channel gets the query's end.
func sleeper(t *testing.T, h *harness, identity, token string) (*sql.DB, chan error) {
	t.Helper()
	db := h.open(identity, token)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	queryString(t, db, "SELECT 1")
	done := make(chan error, 1)
	go func() { _, err := db.Exec("SELECT SLEEP(30)"); done <- err }()
	return db, done
}

// TestKillAcrossNodesEndsOnlyTheNamedSession: two nodes share a MariaDB
// store and each has served exactly one connection, so per-node counters
// would give both sessions the same id. `sessions kill` of node B's
// session, asked on node A, ends that session and no other.
func TestKillAcrossNodesEndsOnlyTheNamedSession(t *testing.T) {
	remember(adminToken)
	t.Setenv("PORTCULLIS_TEST_ADMIN_TOKEN", adminToken)
	dsn := sharedStoreDSN(t)
	a := startHarness(t, adminNode(dsn, "node-a"))
	b := startHarness(t, adminNode(dsn, "node-b"))
	_, onA := sleeper(t, a, "ann@example.com", a.mint("ann@example.com", nil, []string{"engineering"}))
	_, onB := sleeper(t, b, "bob@example.com", b.mint("bob@example.com", nil, []string{"engineering"}))
	idA, idB := waitSession(t, a, "ann@example.com"), waitSession(t, b, "bob@example.com")
	t.Logf("session ids: node-a %d, node-b %d", idA, idB)
	if idA == idB {
		t.Fatalf("both nodes gave out connection id %d", idA)
	}

	// The registry lists both, with their node, from either node.
	deadline := time.Now().Add(5 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		out, _, _ = admin(t, a, adminToken, "sessions", "list")
		if strings.Contains(out, "bob@example.com") && strings.Contains(out, "node-b") && strings.Contains(out, "node-a") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out, "bob@example.com") || !strings.Contains(out, "node-b") {
		t.Fatalf("node A's sessions list does not show node B's session:\n%s", out)
	}

	if _, errOut, err := admin(t, a, adminToken, "sessions", "kill", strconv.FormatUint(uint64(idB), 10)); err != nil {
		t.Fatalf("kill: %v %s", err, errOut)
	}
	select {
	case err := <-onB:
		if err == nil || !strings.Contains(err.Error(), "administrator") {
			t.Fatalf("node B's session: the client was not told: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("node B's session still running 3s after sessions kill")
	}
	select {
	case err := <-onA:
		t.Fatalf("node A's session of another user ended too: %v", err)
	case <-time.After(time.Second):
	}
}

// TestSessionRegistryForgetsAKilledNode: a node (the real binary, a
// child process) killed with SIGKILL cannot remove its sessions from the
// registry; they drop out of `sessions list` on the other node within
// the heartbeat window.
func TestSessionRegistryForgetsAKilledNode(t *testing.T) {
	remember(adminToken)
	t.Setenv("PORTCULLIS_TEST_ADMIN_TOKEN", adminToken)
	dsn := sharedStoreDSN(t)
	a := startHarness(t, adminNode(dsn, "node-a"))

	dir := t.TempDir()
	cfg := strings.NewReplacer(
		a.http[len("http://"):], freeAddr(t),
		`listen: {mysql: "127.0.0.1:0"`, `listen: {mysql: "`+freeAddr(t)+`"`,
		"node: node-a", "node: doomed-node",
	).Replace(readFile(t, filepath.Join(a.dir, "portcullis.yaml")))
	cfg = strings.Replace(cfg, "log: {level: debug}", "log: {level: info}", 1)
	for _, f := range []string{"dev.pem", "kek", readerUser + ".pw", writerUser + ".pw", adminUser + ".pw"} {
		copyFile(t, filepath.Join(a.dir, f), filepath.Join(dir, f))
	}
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	secretsMu.Lock()
	logFiles = append(logFiles, filepath.Join(dir, "audit.log"))
	secretsMu.Unlock()
	cmd := exec.Command(portcullisBin(t), "serve", "-c", cfgPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	started := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "portcullis listening") {
			started = true
			break
		}
	}
	if !started {
		t.Fatal("the child portcullis did not start")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	cc := a.clientConfig("cleo@example.com", a.mint("cleo@example.com", nil, []string{"engineering"}))
	cc.Addr = between(cfg, `listen: {mysql: "`, `"`)
	db := openConfig(t, cc)
	db.SetMaxOpenConns(1)
	queryString(t, db, "SELECT 1")

	listed := func() string {
		out, errOut, err := admin(t, a, adminToken, "sessions", "list")
		if err != nil {
			t.Fatalf("sessions list: %v %s", err, errOut)
		}
		return out
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(listed(), "doomed-node") {
		if time.Now().After(deadline) {
			t.Fatalf("node A never listed the other node's session:\n%s", listed())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed := time.Now()
	window := service.RegistryStale + 2*service.RegistryHeartbeat
	for strings.Contains(listed(), "doomed-node") {
		if time.Since(killed) > window {
			t.Fatalf("the killed node's session still listed %v after SIGKILL:\n%s", time.Since(killed).Round(time.Millisecond), listed())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the killed node's session left sessions list %v after SIGKILL (window %v)", time.Since(killed).Round(time.Millisecond), window)
}

// TestFailedAuthBudgetSharedAcrossNodes: failures spread over two nodes
// sharing a MariaDB store lock out at the same count as on one node,
// on the MySQL leg and at the token endpoint.
func TestFailedAuthBudgetSharedAcrossNodes(t *testing.T) {
	dsn := sharedStoreDSN(t)
	const budget = 4
	opts := harnessOpts{storeDSN: dsn, failedAuth: budget, topYAML: fmt.Sprintf("exchange: {failures_per_minute: %d}", budget)}
	a := startHarness(t, opts)
	b := startHarness(t, opts)
	nodes := []*harness{a, b}

	t.Run("MySQL leg", func(t *testing.T) {
		var me *mysql.MySQLError
		for i := range budget {
			if err := nodes[i%2].open("guess@example.com", "garbage").Ping(); !errors.As(err, &me) || !strings.Contains(me.Message, "malformed") {
				t.Fatalf("bad token %d: %v", i+1, err)
			}
		}
		good := a.mint("guess@example.com", []string{"reader"}, nil)
		if err := a.open("guess@example.com", good).Ping(); !errors.As(err, &me) || me.Number != 1045 || !strings.Contains(me.Message, "too many failed logins") {
			t.Fatalf("after %d failures spread over two nodes, node A: %v (want the budget spent)", budget, err)
		}
	})
	t.Run("token endpoint", func(t *testing.T) {
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "subject_token": {"garbage"}}
		for i := range budget {
			resp, err := http.PostForm(nodes[i%2].http+"/v1/token", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				t.Fatalf("refused token request %d already rate limited", i+1)
			}
		}
		resp, err := http.PostForm(a.http+"/v1/token", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("after %d refused token requests spread over two nodes, node A answered %d, want 429", budget, resp.StatusCode)
		}
	})
}

// TestTokensRevokeIdentity: `portcullis tokens revoke --identity` ends a
// workload identity's tokens (no directory user behind them) on every
// node: its live session on the other node ends and the token is refused.
func TestTokensRevokeIdentity(t *testing.T) {
	remember(adminToken)
	t.Setenv("PORTCULLIS_TEST_ADMIN_TOKEN", adminToken)
	dsn := sharedStoreDSN(t)
	a := startHarness(t, adminNode(dsn, "node-a"))
	b := startHarness(t, adminNode(dsn, "node-b"))
	const workload = "svc-etl@workloads.example.com"
	token := b.mint(workload, []string{"reader"}, nil)
	_, live := sleeper(t, b, workload, token)
	waitSession(t, b, workload)
	if _, errOut, err := admin(t, a, adminToken, "tokens", "revoke", "--identity", workload); err != nil {
		t.Fatalf("tokens revoke: %v %s", err, errOut)
	}
	select {
	case err := <-live:
		if err == nil || !strings.Contains(err.Error(), "login of "+workload+" was ended") {
			t.Fatalf("the client was not told: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the workload's session still running 3s after tokens revoke")
	}
	var me *mysql.MySQLError
	if err := b.open(workload, token).Ping(); !errors.As(err, &me) || me.Number != 1045 || !strings.Contains(me.Message, "were ended") {
		t.Fatalf("new connection with the revoked token: %v", err)
	}
	time.Sleep(1100 * time.Millisecond) // a token of the cutoff's second counts as before it
	if err := b.open(workload, b.mint(workload, []string{"reader"}, nil)).Ping(); err != nil {
		t.Fatalf("a token issued after the revocation: %v", err)
	}
}
