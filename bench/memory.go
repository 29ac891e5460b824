package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
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
