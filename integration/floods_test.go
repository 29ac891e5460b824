package integration

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestFDExhaustion: the real binary under `prlimit --nofile`. A config
// that cannot fit is refused at start with the numbers; one that fits
// survives running out of descriptors (the portal's connections eat them
// here): the excess clients are refused with a clear error, the live
// sessions keep working, and new clients get in once descriptors free up.
func TestFDExhaustion(t *testing.T) {
	h := startHarness(t, harnessOpts{})

	t.Run("a max_connections that cannot fit is refused at start", func(t *testing.T) {
		_, err := launchNode(t, h, nodeOpts{nofile: 1000, proxyYAML: "  max_connections: 1000"})
		// 2*1000 sessions + 512 handshakes + 32 pooled + 128 reserve = 2672; (1000-512-32-128)/2 = 164 fit.
		if err == nil || !strings.Contains(err.Error(), "1000 sessions do not fit the open-file limit of 1000: they need 2672") ||
			!strings.Contains(err.Error(), "LimitNOFILE") || !strings.Contains(err.Error(), "lower proxy.max_connections to 164") {
			t.Fatalf("want a refusal naming the numbers and the fix, got %v", err)
		}
	})

	const limit = 400 // 2*90 sessions + 40 handshakes + 32 pooled + 128 reserve = 380
	n := startNode(t, h, nodeOpts{nofile: limit, proxyYAML: "  max_connections: 90\n  max_handshakes: 40\n  max_handshakes_per_address: 40"})
	token := h.mint("fdlimit@example.com", []string{"reader"}, nil)
	var live []*sql.DB
	for range 5 {
		db := openConfig(t, n.clientConfig(h, "fdlimit@example.com", token))
		db.SetMaxOpenConns(1)
		queryString(t, db, "SELECT 1")
		live = append(live, db)
	}

	// Eat every descriptor the process has left with idle portal connections.
	var hogs []net.Conn
	defer func() {
		for _, c := range hogs {
			c.Close()
		}
	}()
	host := n.http[len("http://"):]
	for range limit + 50 {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err != nil {
			break
		}
		hogs = append(hogs, c)
	}
	pid := n.cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t, pid) < limit-2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d portal connections held; the proxy has %d of %d descriptors open", len(hogs), openFDs(t, pid), limit)

	// More clients than fit: each is refused with a clear error (or, if
	// it loses the race for the spare descriptor, times out), never crashes the node.
	const excess = 30
	var refused, named, other atomic.Int32
	var wg sync.WaitGroup
	start := time.Now()
	for range excess {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := n.clientConfig(h, "fdlimit@example.com", token)
			cfg.Timeout = 3 * time.Second
			cfg.ReadTimeout = 3 * time.Second
			db := openConfig(t, cfg)
			err := db.Ping()
			var me *mysql.MySQLError
			switch {
			case err == nil:
				other.Add(1) // got in: the test did not exhaust the descriptors
			case errors.As(err, &me) && me.Number == 1040 && strings.Contains(me.Message, "out of file descriptors"):
				named.Add(1)
				refused.Add(1)
			default:
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d excess clients: %d refused with 1040 'out of file descriptors', %d refused otherwise (timeout), %d got in, in %v",
		excess, named.Load(), refused.Load()-named.Load(), other.Load(), time.Since(start).Round(time.Millisecond))
	if !n.alive() {
		t.Fatalf("portcullis ended at the fd limit:\n%s", n.logText())
	}
	if named.Load() == 0 {
		t.Fatalf("no excess client was told why it was refused:\n%s", n.logText())
	}
	for i, db := range live {
		if got := queryString(t, db, "SELECT 40+2"); got != "42" {
			t.Fatalf("live session %d at the fd limit: %q", i, got)
		}
	}

	for _, c := range hogs {
		c.Close()
	}
	hogs = nil
	back := time.Now()
	for {
		cfg := n.clientConfig(h, "fdlimit@example.com", token)
		cfg.Timeout = 2 * time.Second
		db := openConfig(t, cfg)
		if err := db.Ping(); err == nil {
			break
		} else if time.Since(back) > 10*time.Second {
			t.Fatalf("no new client gets in 10s after descriptors were freed: %v\n%s", err, n.logText())
		}
		db.Close()
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("a new client got in %v after the descriptors were freed", time.Since(back).Round(time.Millisecond))
	if v := n.metric(`portcullis_accept_errors_total{reason="fd_limit"}`); v == 0 {
		t.Error(`portcullis_accept_errors_total{reason="fd_limit"} is 0`)
	}
	if c := n.countLog("accept MySQL connections: failing"); c != 1 {
		t.Errorf("the accept failure was logged %d times, want once (then a summary every 30s)", c)
	}
}

func openFDs(t *testing.T, pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestSlowHandshakeFlood: one source address re-opens hundreds of
// handshakes that send a byte a second; a legitimate client from another
// address connects again and again meanwhile and must get in every time.
func TestSlowHandshakeFlood(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	// max_connections as low as the flood is wide: before handshakes had
	// their own budget, the flood alone filled it.
	n := startNode(t, h, nodeOpts{
		proxyYAML: "  max_connections: 50\n  max_handshakes: 200\n  max_handshakes_per_address: 20",
		replace:   map[string]string{`handshake_timeout: 2s`: `handshake_timeout: 10s`},
	})
	token := h.mint("legit@example.com", []string{"reader"}, nil)

	const attackers = 300
	floodFor := 8 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), floodFor)
	defer cancel()
	var opened, turnedAway, held atomic.Int64
	var wg sync.WaitGroup
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: time.Second}
	for range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", n.addr)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				opened.Add(1)
				stop := context.AfterFunc(ctx, func() { c.Close() })
				buf := make([]byte, 5)
				c.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := c.Read(buf); err == nil && buf[4] == 0xff { // ERR instead of a greeting
					turnedAway.Add(1)
					time.Sleep(200 * time.Millisecond) // and re-open: bounded, on a shared machine
				} else {
					held.Add(1)
					// The handshake response, one byte a second.
					for i := 0; ctx.Err() == nil; i++ {
						if _, err := c.Write([]byte{0x20}); err != nil {
							break
						}
						time.Sleep(time.Second)
					}
				}
				stop()
				c.Close()
			}
		}()
	}

	time.Sleep(1500 * time.Millisecond) // the flood is at full width
	if open := n.metric("portcullis_handshakes_open"); open < 10 || open > 21 {
		t.Errorf("portcullis_handshakes_open = %v in the flood, want the attacker's 20 (max_handshakes_per_address)", open)
	}
	var lat []time.Duration
	var failures []string
	for ctx.Err() == nil && len(lat)+len(failures) < 25 {
		start := time.Now()
		cfg := n.clientConfig(h, "legit@example.com", token)
		cfg.Timeout = 5 * time.Second
		db := openConfig(t, cfg)
		var one string
		if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
			failures = append(failures, err.Error())
		} else {
			lat = append(lat, time.Since(start))
		}
		db.Close()
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, worst := time.Duration(0), time.Duration(0)
	if len(lat) > 0 {
		p50, worst = lat[len(lat)/2], lat[len(lat)-1]
	}
	t.Logf("flood: %d attackers from 127.0.0.2 opened %d connections in %v: %d held a handshake slot, %d turned away at once (1040)",
		attackers, opened.Load(), floodFor, held.Load(), turnedAway.Load())
	t.Logf("legitimate client from 127.0.0.1: %d of %d connections succeeded, median %v, slowest %v",
		len(lat), len(lat)+len(failures), p50.Round(time.Millisecond), worst.Round(time.Millisecond))
	if len(failures) > 0 {
		t.Fatalf("the legitimate client was locked out by the flood: %d failures, first: %v", len(failures), failures[0])
	}
	if len(lat) < 5 {
		t.Fatalf("the legitimate client made only %d connections in the flood", len(lat))
	}
	if turnedAway.Load() == 0 {
		t.Fatal("no flood connection was turned away by max_handshakes_per_address")
	}
}

// TestFirstPacketTimeout: a connection that sends nothing after the
// greeting is dropped at first_packet_timeout, long before
// handshake_timeout; one that sends its first packet in time gets the
// whole handshake_timeout for the rest.
func TestFirstPacketTimeout(t *testing.T) {
	h := startHarness(t, harnessOpts{extraYAML: "  first_packet_timeout: 400ms"})
	held := func(send []byte) time.Duration {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err != nil { // the greeting
			t.Fatal(err)
		}
		if send != nil {
			c.Write(send)
		}
		for {
			if _, err := c.Read(buf); err != nil {
				return time.Since(start)
			}
		}
	}
	if d := held(nil); d > 1500*time.Millisecond {
		t.Fatalf("a silent connection was held %v; first_packet_timeout is 400ms", d)
	}
	// An SSLRequest (32 bytes, CLIENT_SSL set), then silence in the TLS
	// handshake: handshake_timeout (2s) applies, not first_packet_timeout.
	ssl := make([]byte, 36)
	ssl[0], ssl[3] = 32, 1
	binary.LittleEndian.PutUint32(ssl[4:], 0x0800|0x0200|0x8000) // CLIENT_SSL | PROTOCOL_41 | SECURE_CONNECTION
	ssl[12] = 45
	if d := held(ssl); d < 1500*time.Millisecond || d > 5*time.Second {
		t.Fatalf("a connection that sent its first packet in time was held %v; want handshake_timeout, 2s", d)
	}
}

// TestDrainOnSignal: SIGTERM to the real binary stops accepting at once,
// turns /readyz to 503, lets a running query finish within
// shutdown_timeout, ends one that runs longer with a message, and logs how
// many it ended; a second signal ends them at once.
func TestDrainOnSignal(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	token := h.mint("drain@example.com", []string{"reader"}, nil)

	t.Run("a query shorter than shutdown_timeout completes", func(t *testing.T) {
		n := startNode(t, h, nodeOpts{proxyYAML: "  shutdown_timeout: 10s"})
		db := openConfig(t, n.clientConfig(h, "drain@example.com", token))
		db.SetMaxOpenConns(1)
		queryString(t, db, "SELECT 1")
		done := make(chan error, 1)
		start := time.Now()
		go func() { _, err := db.Exec("SELECT SLEEP(3)"); done <- err }()
		time.Sleep(500 * time.Millisecond)
		n.signal(syscall.SIGTERM)
		time.Sleep(300 * time.Millisecond)
		if c, err := net.DialTimeout("tcp", n.addr, time.Second); err == nil {
			c.Close()
			t.Error("the MySQL listener still accepts while draining")
		}
		if code, body := n.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
			t.Errorf("/readyz while draining: %d %q", code, body)
		}
		if err := <-done; err != nil {
			t.Fatalf("the running query was ended by SIGTERM after %v: %v", time.Since(start), err)
		}
		t.Logf("SELECT SLEEP(3) completed %v after it started, through SIGTERM", time.Since(start).Round(time.Millisecond))
		db.Close() // an idle pooled session is still a session: the drain waits for it
		closed := time.Now()
		if !n.waitExit(5 * time.Second) {
			t.Fatal("portcullis still running 5s after its last session ended")
		}
		t.Logf("portcullis exited %v after its last session ended", time.Since(closed).Round(time.Millisecond))
		if !strings.Contains(n.logText(), "every session finished") {
			t.Fatalf("no drain line in the log:\n%s", n.logText())
		}
	})

	t.Run("a query longer than shutdown_timeout ends with a message; the count is logged", func(t *testing.T) {
		n := startNode(t, h, nodeOpts{proxyYAML: "  shutdown_timeout: 2s"})
		cmd := n.mariadb(t, "drain@example.com", token, "-e", "SELECT SLEEP(20)")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitNodeSession(t, n)
		n.signal(syscall.SIGTERM)
		signalled := time.Now()
		if err := cmd.Wait(); err == nil {
			t.Fatalf("SLEEP(20) completed through a 2s drain:\n%s", out.String())
		}
		ended := time.Since(signalled)
		if !strings.Contains(out.String(), "shutting down") || !strings.Contains(out.String(), "shutdown_timeout") {
			t.Fatalf("the client was not told why (after %v):\n%s", ended, out.String())
		}
		if ended < 1500*time.Millisecond {
			t.Fatalf("the session ended %v after SIGTERM, before shutdown_timeout (2s)", ended)
		}
		if !n.waitExit(5 * time.Second) {
			t.Fatal("portcullis still running after the drain")
		}
		if !strings.Contains(n.logText(), "1 connection(s) still open after waiting 2") {
			t.Fatalf("the count is not logged:\n%s", n.logText())
		}
		t.Logf("ended %v after SIGTERM; client output: %s", ended.Round(time.Millisecond), strings.TrimSpace(out.String()))
	})

	t.Run("a second signal ends the sessions at once", func(t *testing.T) {
		n := startNode(t, h, nodeOpts{proxyYAML: "  shutdown_timeout: 30s"})
		cmd := n.mariadb(t, "drain@example.com", token, "-e", "SELECT SLEEP(20)")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitNodeSession(t, n)
		n.signal(syscall.SIGTERM)
		time.Sleep(500 * time.Millisecond)
		n.signal(syscall.SIGINT)
		if !n.waitExit(3 * time.Second) {
			t.Fatal("portcullis still running 3s after a second signal")
		}
		cmd.Wait()
		if !strings.Contains(out.String(), "shutting down") {
			t.Fatalf("the client was not told why:\n%s", out.String())
		}
	})
}

// waitNodeSession waits for the node's audit log to record a granted
// session, and a moment for its query to reach the backend.
func waitNodeSession(t *testing.T, n *node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if data, _ := os.ReadFile(n.dir + "/audit.log"); strings.Contains(string(data), `"outcome":"granted"`) {
			time.Sleep(300 * time.Millisecond)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no session started:\n%s", n.logText())
}

// TestStoreDownLogRate: while the store is unreachable (its database
// dropped under a running node), the event poll logs once, not 5 times a
// second, and counts each failure.
func TestStoreDownLogRate(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	dbName := "pcit_store_" + randomHex(4)
	if _, err := root.Exec("CREATE DATABASE " + dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec("DROP DATABASE IF EXISTS " + dbName) })
	t.Setenv("PORTCULLIS_TEST_STORE_DSN", fmt.Sprintf("root@tcp(%s)/%s", backendAddr, dbName)) // the child inherits it
	n := startNode(t, h, nodeOpts{topYAML: storeYAML("the env var above")})
	time.Sleep(500 * time.Millisecond) // the event poll has found where "now" is (else it retries once a second)
	if _, err := root.Exec("DROP DATABASE " + dbName); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second) // 20 polls at 200ms
	lines := n.countLog("poll event log")
	failures := n.metric("portcullis_event_poll_failures_total")
	t.Logf("store down 4s: %d log lines about the event poll, %v failed polls counted", lines, failures)
	if lines != 1 {
		t.Fatalf("%d event-poll lines in 4s, want 1:\n%s", lines, n.logText())
	}
	if failures < 3 { // 20 at 200ms (4 if it was still starting); more than the lines logged either way
		t.Fatalf("portcullis_event_poll_failures_total = %v after 4s down, want about 20", failures)
	}
	if !strings.Contains(n.logText(), "poll event log: store unreachable") {
		t.Fatalf("the line does not say what is wrong:\n%s", n.logText())
	}
}

// TestStartWithHangingJWKS: an issuer whose JWKS hangs does not hold up
// start-up: the portal answers at once, /readyz names the issuer, and
// tokens of that issuer work within seconds of the JWKS answering again.
func TestStartWithHangingJWKS(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	var hang atomic.Bool
	hang.Store(true)
	good := corpJWKS(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		resp, err := http.Get(good)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			k, err := resp.Body.Read(buf)
			b.Write(buf[:k])
			if err != nil {
				break
			}
		}
		w.Write([]byte(b.String()))
	}))
	t.Cleanup(func() { close(release); slow.Close() })

	n := startNode(t, h, nodeOpts{replace: map[string]string{`jwks_url: "[^"]*"`: `jwks_url: "` + slow.URL + `/jwks.json"`}})
	code, _ := n.get("/healthz")
	answered := time.Since(n.started)
	t.Logf("hanging JWKS: listening %v after exec, portal answered %v after exec", n.listening.Round(time.Millisecond), answered.Round(time.Millisecond))
	if code != http.StatusOK || n.listening > 3*time.Second {
		t.Fatalf("start-up waited on the hanging JWKS: listening after %v, /healthz %d", n.listening, code)
	}
	if code, body := n.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "issuer corp") {
		t.Fatalf("/readyz with corp's keys not fetched: %d %q", code, body)
	}

	hang.Store(false)
	back := time.Now()
	for {
		code, body := n.get("/readyz")
		if !strings.Contains(body, "issuer corp") {
			break
		}
		if time.Since(back) > 10*time.Second {
			t.Fatalf("corp's keys not back 10s after its JWKS answered: %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("corp's keys back %v after its JWKS answered again", time.Since(back).Round(time.Millisecond))
	tok := h.sign(corpClaims("hang@example.com", "db-readers"))
	db := openConfig(t, n.clientConfig(h, "hang@example.com", tok))
	if got := queryString(t, db, "SELECT 1"); got != "1" {
		t.Fatalf("a corp token after recovery: %q", got)
	}
}
