package main

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// idleSessionMemory opens n idle sessions through p and returns the
// growth of p's resident memory per session, in KiB. It measures from a
// baseline of 100 open sessions, so the runtime's one-off start-up
// allocations are not charged to sessions. MariaDB's max_connections is
// raised for the run (each session holds a backend connection) and put
// back after.
func idleSessionMemory(ctx context.Context, root *sql.DB, p *proxyProcess, c driver.Connector, n int) (float64, error) {
	const baseline = 100
	var old int
	if err := root.QueryRowContext(ctx, "SELECT @@GLOBAL.max_connections").Scan(&old); err != nil {
		return 0, err
	}
	if _, err := root.ExecContext(ctx, fmt.Sprintf("SET GLOBAL max_connections = %d", old+n+baseline+50)); err != nil {
		return 0, fmt.Errorf("raise MariaDB max_connections for %d sessions: %w", n, err)
	}
	defer root.ExecContext(context.Background(), fmt.Sprintf("SET GLOBAL max_connections = %d", old))

	var (
		mu    sync.Mutex
		conns []driver.Conn
	)
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	open := func(count int) error {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		per := (count + 7) / 8
		for w := 0; w < 8 && w*per < count; w++ {
			wg.Go(func() {
				for range min(per, count-w*per) {
					conn, err := c.Connect(ctx)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					conns = append(conns, conn)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	settledRSS := func() (int64, error) {
		time.Sleep(2 * time.Second) // let the pool's warm-up and the GC settle
		return p.rssKiB()
	}
	if err := open(baseline); err != nil {
		return 0, err
	}
	before, err := settledRSS()
	if err != nil {
		return 0, err
	}
	if err := open(n); err != nil {
		return 0, fmt.Errorf("after %d sessions: %w", len(conns), err)
	}
	after, err := settledRSS()
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}

// tokenBenchmarks runs the Go benchmarks of ./auth for a cached token
// check and a cold RS256 verification, in µs per check.
func tokenBenchmarks(ctx context.Context) (cached, coldRS256 float64, err error) {
	out, err := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkVerify(Cached|RS256)$", "-benchtime", "1s", "./auth").CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("go test -bench ./auth: %w:\n%s", err, out)
	}
	ns := map[string]float64{}
	for _, m := range benchLine.FindAllStringSubmatch(string(out), -1) {
		ns[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	if ns["Cached"] == 0 || ns["RS256"] == 0 {
		return 0, 0, fmt.Errorf("go test -bench ./auth printed no ns/op for both benchmarks:\n%s", out)
	}
	return ns["Cached"] / 1000, ns["RS256"] / 1000, nil
}

var benchLine = regexp.MustCompile(`BenchmarkVerify(\w+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op`)

// cpuTime is the user+system CPU time a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in ")".
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		return 0, errors.New("short /proc/<pid>/stat")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on Linux.
const clockTicks = 100

// mariadbPID finds the MariaDB server process, or 0.
func mariadbPID() int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "mariadbd" {
			return pid
		}
	}
	return 0
}
