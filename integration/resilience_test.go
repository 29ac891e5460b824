package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestBackendRestartWithOpenSessions: a running query gets a clean error
// naming the backend when it goes away, and new sessions work once it is back.
func TestBackendRestartWithOpenSessions(t *testing.T) {
	gate := newGate(t, backendAddr)
	h := startHarness(t, harnessOpts{backend: gate.addr()})
	token := h.mint("ivo@example.com", []string{"reader"}, nil)
	db := h.open("ivo@example.com", token)
	db.SetMaxOpenConns(1)
	queryString(t, db, "SELECT 1")
	done := make(chan error, 1)
	go func() { _, err := db.Exec("SELECT SLEEP(10)"); done <- err }()
	waitSession(t, h, "ivo@example.com")
	time.Sleep(200 * time.Millisecond)
	gate.close() // the backend "restarts": every connection to it drops
	var me *mysql.MySQLError
	select {
	case err := <-done:
		if !errors.As(err, &me) || me.Number != 2013 || !strings.Contains(me.Message, "lost the connection to the backend") {
			t.Fatalf("running query when the backend went away: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the query did not end when the backend went away")
	}
	gate.open()
	fresh := h.open("ivo@example.com", token)
	if got := queryString(t, fresh, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
		t.Fatalf("after the backend came back: %q", got)
	}
}

// TestStoreUnavailable: without the store, new connections fail closed
// with a clear message (within one event poll), live sessions continue, and service resumes when
// the store is back.
func TestStoreUnavailable(t *testing.T) {
	dbName := "pcit_store_" + randomHex(4)
	if _, err := root.Exec("CREATE DATABASE " + dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec("DROP DATABASE IF EXISTS " + dbName) })
	gate := newGate(t, backendAddr)
	h := startHarness(t, harnessOpts{storeDSN: fmt.Sprintf("root@tcp(%s)/%s?timeout=1s&readTimeout=2s", gate.addr(), dbName)})
	token := h.mint("kai@example.com", []string{"reader"}, nil)
	live := h.open("kai@example.com", token)
	live.SetMaxOpenConns(1)
	queryString(t, live, "SELECT 1")

	gate.close()
	// The directory cache answers until the next event poll (200 ms)
	// finds the store gone; from then on new connections fail closed.
	var me *mysql.MySQLError
	for refuseBy := time.Now().Add(2 * time.Second); ; {
		err := h.open("kai@example.com", token).Ping()
		if errors.As(err, &me) && me.Number == 1045 && strings.Contains(me.Message, "directory is unavailable") {
			break
		}
		if time.Now().After(refuseBy) {
			t.Fatalf("new connection 2s after the store went away: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := queryString(t, live, "SELECT 'still here'"); got != "still here" {
		t.Fatal("the live session broke when the store went away")
	}
	gate.open()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := h.open("kai@example.com", token).Ping()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store back, new connections still refused: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestManyIdleFewBusy: 2,000 idle sessions do not make the 16 busy ones
// collapse (the proxy's per-session cost is goroutines and buffers, not
// polling).
func TestManyIdleFewBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	const idle = 2000
	// 2,000 backend connections: a server of its own, never a global
	// setting of the shared one.
	backend, _ := privateMariaDB(t, fmt.Sprintf("--max-connections=%d", idle+300))
	h := startHarness(t, harnessOpts{backend: backend, extraYAML: fmt.Sprintf("  max_connections: %d", idle+100)})
	token := h.mint("max@example.com", []string{"reader"}, nil)
	busyQPS := func() float64 {
		conns := make([]*sql.Conn, 16)
		db := h.open("max@example.com", token)
		db.SetMaxOpenConns(16)
		for i := range conns {
			c, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns[i] = c
		}
		var n atomic.Int64
		var wg sync.WaitGroup
		end := time.Now().Add(2 * time.Second)
		for _, c := range conns {
			wg.Go(func() {
				var v int
				for time.Now().Before(end) {
					if err := c.QueryRowContext(context.Background(), "SELECT 1").Scan(&v); err != nil {
						t.Error(err)
						return
					}
					n.Add(1)
				}
			})
		}
		wg.Wait()
		return float64(n.Load()) / 2
	}
	base := busyQPS()

	idleDB := h.open("max@example.com", token)
	idleDB.SetMaxOpenConns(idle)
	idleDB.SetMaxIdleConns(idle)
	held := make([]*sql.Conn, idle)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < idle; i += 8 {
				c, err := idleDB.Conn(context.Background())
				if err == nil {
					err = c.PingContext(context.Background())
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				held[i] = c
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d idle sessions failed to open", failed.Load(), idle)
	}
	t.Logf("opened %d idle sessions in %v", idle, time.Since(start).Round(time.Millisecond))
	loaded := busyQPS()
	t.Logf("16 busy sessions: %.0f QPS alone, %.0f QPS beside %d idle ones (%.2fx)", base, loaded, idle, loaded/base)
	for _, c := range held {
		c.Close()
	}
	if loaded < 0.5*base {
		t.Fatalf("busy QPS collapsed from %.0f to %.0f with %d idle sessions", base, loaded, idle)
	}
}
