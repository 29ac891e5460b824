package main

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync"
	"time"
)

// idleSessionMemory opens n idle sessions through p and returns the
// growth of p's resident memory per session, in KiB. It measures from a
// baseline of 100 open sessions, so the runtime's one-off start-up
// allocations are not charged to sessions. Each session holds a backend
// connection: the bench's own MariaDB is started with max_connections
// for them (startMariaDB), the shared server's settings are never changed.
//
// With the sessions still open it also takes the heap profile (heap) and
// the RSS after the GC that profile forces (afterGC, KiB per session):
// how much of the RSS is live, and what holds it.
func idleSessionMemory(ctx context.Context, p *proxyProcess, c driver.Connector, n int, profDir string) (perSession, afterGC float64, heap *profile, err error) {
	const baseline = 100
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
		return 0, 0, nil, err
	}
	before, err := settledRSS()
	if err != nil {
		return 0, 0, nil, err
	}
	if err := open(n); err != nil {
		return 0, 0, nil, fmt.Errorf("after %d sessions: %w", len(conns), err)
	}
	after, err := settledRSS()
	if err != nil {
		return 0, 0, nil, err
	}
	heap = heapProfile(ctx, p, profDir, "memory-heap")
	collected, err := p.rssKiB()
	if err != nil {
		return 0, 0, nil, err
	}
	return float64(after-before) / float64(n), float64(collected-before) / float64(n), heap, nil
}
