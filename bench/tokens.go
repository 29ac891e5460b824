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

// guardResult is the statement guard's cost per statement (the slower of
// its fast and slow paths) in µs and allocations.
type guardResult struct {
	us, allocs float64
	err        error
}

// guardBenchmark runs the Go benchmarks of the statement guard in ./proxy.
func guardBenchmark(ctx context.Context) guardResult {
	out, err := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkGuard", "-benchmem", "-benchtime", "1s", "./proxy").CombinedOutput()
	if err != nil {
		return guardResult{err: fmt.Errorf("go test -bench BenchmarkGuard ./proxy: %w:\n%s", err, out)}
	}
	var r guardResult
	found := 0
	for _, m := range guardLine.FindAllStringSubmatch(string(out), -1) {
		ns, _ := strconv.ParseFloat(m[2], 64)
		allocs, _ := strconv.ParseFloat(m[3], 64)
		r.us, r.allocs = max(r.us, ns/1000), max(r.allocs, allocs)
		found++
	}
	if found == 0 {
		return guardResult{err: fmt.Errorf("go test -bench BenchmarkGuard ./proxy printed no ns/op and allocs/op:\n%s", out)}
	}
	return r
}

var guardLine = regexp.MustCompile(`BenchmarkGuard(\w+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op\s+[\d.]+ B/op\s+([\d.]+) allocs/op`)
