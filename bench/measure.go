package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"
)

// selectOne runs SELECT 1 on a raw driver connection and checks the answer.
// dest is the caller's one-element row buffer, reused across calls.
func selectOne(ctx context.Context, c driver.Conn, dest []driver.Value) error {
	rows, err := c.(driver.QueryerContext).QueryContext(ctx, "SELECT 1", nil)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := rows.Next(dest); err != nil {
		return fmt.Errorf("SELECT 1: no row: %w", err)
	}
	switch v := dest[0].(type) {
	case int64:
		if v != 1 {
			return fmt.Errorf("SELECT 1 returned %d", v)
		}
	case []byte:
		if string(v) != "1" {
			return fmt.Errorf("SELECT 1 returned %q", v)
		}
	default:
		return fmt.Errorf("SELECT 1 returned %T %v", v, v)
	}
	if err := rows.Next(dest); !errors.Is(err, io.EOF) {
		return fmt.Errorf("SELECT 1: more than one row (%v)", err)
	}
	return nil
}

func connectOnce(ctx context.Context, c driver.Connector, dest []driver.Value) error {
	conn, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	err = selectOne(ctx, conn, dest)
	if cerr := conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// cpuResult is the CPU time each watched process (by pid) spent per
// operation in a timed window, and the machine's idle and stolen shares.
type cpuResult struct {
	perOp          map[int]time.Duration
	idlePct, steal float64
}

// connectResult is the connect phase's rate and CPU use.
type connectResult struct {
	rate float64
	cpu  cpuResult
}

// connectRate returns connect+auth+SELECT 1+close per second, one at a
// time, and the CPU per connection of the processes pids.
func connectRate(ctx context.Context, c driver.Connector, warmup, d time.Duration, pids ...int) (connectResult, error) {
	dest := make([]driver.Value, 1)
	for end := time.Now().Add(warmup); time.Now().Before(end); {
		if err := connectOnce(ctx, c, dest); err != nil {
			return connectResult{}, err
		}
	}
	before := sampleCPU(pids)
	n, start := 0, time.Now()
	for time.Since(start) < d {
		if err := connectOnce(ctx, c, dest); err != nil {
			return connectResult{}, err
		}
		n++
	}
	r := connectResult{rate: float64(n) / time.Since(start).Seconds()}
	r.cpu.perOp, r.cpu.idlePct, r.cpu.steal = usage(before, sampleCPU(pids), n)
	return r, nil
}

type steadyResult struct {
	qps, p50, p99 float64 // p50 and p99 in µs
	cpu           cpuResult
}

// steadyState opens n connections, then has each run SELECT 1 in a loop:
// warm-up first, then d timed, recording every query's latency and the
// CPU per query of the processes pids.
func steadyState(ctx context.Context, c driver.Connector, n int, warmup, d time.Duration, pids ...int) (steadyResult, error) {
	conns := make([]driver.Conn, 0, n)
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	for range n {
		conn, err := c.Connect(ctx)
		if err != nil {
			return steadyResult{}, err
		}
		conns = append(conns, conn)
	}

	start := time.Now().Add(warmup)
	end := start.Add(d)
	lats := make([][]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Go(func() {
			lats[i], errs[i] = worker(ctx, conn, warmup, start, end)
		})
	}
	time.Sleep(time.Until(start))
	before := sampleCPU(pids)
	time.Sleep(time.Until(end))
	after := sampleCPU(pids)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return steadyResult{}, err
	}

	all := slices.Concat(lats...)
	if len(all) == 0 {
		return steadyResult{}, errors.New("no query finished in the timed window")
	}
	slices.Sort(all)
	r := steadyResult{
		qps: float64(len(all)) / d.Seconds(),
		p50: micros(percentile(all, 0.50)),
		p99: micros(percentile(all, 0.99)),
	}
	r.cpu.perOp, r.cpu.idlePct, r.cpu.steal = usage(before, after, len(all))
	return r, nil
}

// worker runs SELECT 1 until end and returns the latencies of the queries
// started after start. The slice is sized from the warm-up rate before the
// timed window opens, so recording does not allocate while timing.
func worker(ctx context.Context, conn driver.Conn, warmup time.Duration, start, end time.Time) ([]time.Duration, error) {
	dest := make([]driver.Value, 1)
	warm := 0
	for time.Now().Before(start) {
		if err := selectOne(ctx, conn, dest); err != nil {
			return nil, err
		}
		warm++
	}
	estimate := 1024
	if warmup > 0 {
		estimate += int(float64(warm) * float64(end.Sub(start)) / float64(warmup) * 1.5)
	}
	lats := make([]time.Duration, 0, estimate)
	for {
		t0 := time.Now()
		if !t0.Before(end) {
			return lats, nil
		}
		if err := selectOne(ctx, conn, dest); err != nil {
			return nil, err
		}
		lats = append(lats, time.Since(t0))
	}
}

// percentile is the nearest-rank percentile of sorted, p in [0, 1].
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
