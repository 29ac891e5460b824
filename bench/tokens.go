package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
)

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

// guardResult is the statement guard's cost per statement, in µs and
// allocations, on its fast path (a statement with nothing the guard must
// read closely: what nearly every query is) and its slow path (a
// multi-statement text, lexed whole).
type guardResult struct {
	fastUS, fastAllocs, slowUS, slowAllocs float64
	err                                    error
}

// guardBenchmark runs the Go benchmarks of the statement guard in ./proxy.
func guardBenchmark(ctx context.Context) guardResult {
	out, err := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkGuard(FastPath|SlowPath)$", "-benchmem", "-benchtime", "1s", "./proxy").CombinedOutput()
	if err != nil {
		return guardResult{err: fmt.Errorf("go test -bench BenchmarkGuard ./proxy: %w:\n%s", err, out)}
	}
	var r guardResult
	found := map[string]bool{}
	for _, m := range guardLine.FindAllStringSubmatch(string(out), -1) {
		ns, _ := strconv.ParseFloat(m[2], 64)
		allocs, _ := strconv.ParseFloat(m[3], 64)
		if m[1] == "FastPath" {
			r.fastUS, r.fastAllocs = ns/1000, allocs
		} else {
			r.slowUS, r.slowAllocs = ns/1000, allocs
		}
		found[m[1]] = true
	}
	if !found["FastPath"] || !found["SlowPath"] {
		return guardResult{err: fmt.Errorf("go test -bench BenchmarkGuard ./proxy printed no ns/op and allocs/op for both paths:\n%s", out)}
	}
	return r
}

var guardLine = regexp.MustCompile(`BenchmarkGuard(FastPath|SlowPath)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op\s+[\d.]+ B/op\s+([\d.]+) allocs/op`)
