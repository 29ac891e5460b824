// Command bench measures what portcullis costs a MySQL client, against the
// same client talking to MariaDB directly, and checks each figure against
// its target. Run it with `make bench`, which builds the binary and starts
// MariaDB (installing MariaDB, sysbench and haproxy when missing).
//
// It creates throwaway backend accounts and a database (pcbench), mints a
// dev-issuer token, and runs the real `portcullis serve` binary twice, each
// in its own process as deployed: once with client TLS (a certificate from
// a throwaway CA) and once with --insecure-no-tls. Two roles, each with an
// account of its own (pools belong to accounts), have the warm pool
// (min_idle 2) and the pool off. The Go client is
// github.com/go-sql-driver/mysql on raw driver connections (no
// database/sql pool to hide a connect); sysbench is Debian's, on
// libmariadb. Direct means MariaDB itself, without TLS; direct over TLS
// the same with the Go driver's TLS.
//
// MariaDB is the bench's own: mariadbd with its own datadir, port and
// socket in a temporary directory (removed afterwards), TLS with the
// bench CA's certificate, and max_connections for the memory phase. The
// shared server on 127.0.0.1:3306 and its settings are not touched.
//
// Rows, each after a short warm-up:
//
//   - connect: one connection at a time does connect + auth + SELECT 1 +
//     close. Through the proxy that is the TLS handshake, the token check,
//     the role lookup and a backend connection (from the pool, or a new
//     login with the pool off).
//   - steady state: -conns connections each run SELECT 1 in a loop (QPS),
//     and one connection alone (its p50 is the latency the proxy adds to
//     one query when the machine is not saturated).
//   - sysbench oltp_read_only, the token as password over TLS.
//   - memory: the proxy's RSS growth per idle session, over -sessions
//     sessions.
//   - token checks: the Go benchmarks of ./auth (cached, cold RS256).
//   - -tls-key-exchange classical runs the proxy with tls.key_exchange:
//     classical (no post-quantum hybrid), to see what the hybrid costs a
//     connect.
//   - statement guard: the Go benchmarks BenchmarkGuard* of ./proxy
//     (its fast path, a plain SELECT, and its slow path, two statements
//     in one text: µs and allocations each).
//   - reference: the connect, SELECT 1 and sysbench phases through
//     Debian's haproxy as a plain TCP relay to MariaDB (no TLS, no auth):
//     the floor any user-space proxy pays on this machine.
//
// The proxy's CPU profiles of the warm-pool connect, 16-connection and
// one-connection phases (through listen.pprof) are written next to -out,
// and their top entries printed.
//
// The client, the proxy and MariaDB share this machine's cores, so the
// proxy's CPU is taken from MariaDB's and the client's; absolute numbers
// vary from run to run, so compare ratios. The table is printed and
// written as JSON to -out. A failed measurement shows FAILED with the
// reason below the table, the rest is still measured, and bench exits 1.
package main

import (
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/go-sql-driver/mysql"
)

// keyExchange is the proxy's tls.key_exchange (-tls-key-exchange; "" is
// the default, hybrid).
var keyExchange string

// backendAddr is the bench's own MariaDB server (startMariaDB), set once
// it runs.
var backendAddr string

const (
	benchUser  = "pcbench" // the backend account and database the bench creates and drops
	benchDB    = "pcbench"
	poolRole   = "bench"
	noPoolRole = "nopool"
	benchEmail = "bench@example.com"

	// noPoolUser is the pool-off role's account: pools belong to accounts,
	// so a role without a pool needs an account of its own.
	noPoolUser = "pcbench_nopool"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "timed length of each phase, per target")
	conns := flag.Int("conns", 16, "concurrent connections in the steady-state phase")
	warmup := flag.Duration("warmup", 500*time.Millisecond, "untimed warm-up before each phase, per target")
	sessions := flag.Int("sessions", 9000, "idle sessions held open for the memory row (0 skips it)")
	binary := flag.String("portcullis", "bin/portcullis", "the portcullis binary to measure")
	out := flag.String("out", "bench/results.json", "where to write the results as JSON")
	flag.StringVar(&keyExchange, "tls-key-exchange", "", "the proxy's tls.key_exchange: hybrid (default) or classical")
	flag.Parse()
	if *duration <= 0 || *warmup < 0 || *conns < 1 || *sessions < 0 {
		fmt.Fprintln(os.Stderr, "bench: -duration must be positive, -warmup and -sessions not negative, -conns at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s := settings{Duration: *duration, Warmup: *warmup, Conns: *conns, Sessions: *sessions}
	if err := run(ctx, s, *binary, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

type settings struct {
	Duration time.Duration `json:"duration_ns"`
	Warmup   time.Duration `json:"warmup_ns"`
	Conns    int           `json:"conns"`
	Sessions int           `json:"idle_sessions"`
}

// run sets up the account and both proxies, measures, prints and writes the
// report. Everything it creates is removed on the way out, error or not.
func run(ctx context.Context, s settings, binary, outPath string) (err error) {
	dir, err := os.MkdirTemp("", "portcullis-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tlsDir, plainDir, dbDir := filepath.Join(dir, "tls"), filepath.Join(dir, "notls"), filepath.Join(dir, "mariadb")
	for _, d := range []string{tlsDir, plainDir, dbDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	if err := writeCerts(dir, tlsDir, plainDir); err != nil {
		return err
	}
	// The bench's own MariaDB: TLS for the direct-over-TLS reference, and
	// room for every idle session of the memory phase (each holds a
	// backend connection), without touching the shared server's settings.
	step := func(name string) bool {
		fmt.Fprintln(os.Stderr, name+"...")
		return ctx.Err() == nil
	}
	step("starting the bench's own MariaDB (TLS, own datadir and port)")
	server, err := startMariaDB(ctx, dbDir, dir, s.Sessions+500)
	if err != nil {
		return err
	}
	defer server.stop()
	backendAddr = server.addr
	root, version, err := openRoot(ctx)
	if err != nil {
		return fmt.Errorf("the bench's MariaDB does not answer on %s as root with an empty password: %w", backendAddr, err)
	}
	defer root.Close()
	password := randomHex(16)
	if err := createAccount(ctx, root, password); err != nil {
		return err
	}
	token, err := mintToken(dir)
	if err != nil {
		return err
	}
	withTLS, err := startProxy(ctx, binary, tlsDir, password, s.Sessions+200, false)
	if err != nil {
		return err
	}
	defer withTLS.stop()
	noTLS, err := startProxy(ctx, binary, plainDir, password, s.Sessions+200, true)
	if err != nil {
		return err
	}
	defer noTLS.stop()

	skipVerify := func() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } //nolint:gosec // the bench CA is throwaway
	direct := connector(backendAddr, benchUser, password, nil)
	directTLS := connector(backendAddr, benchUser, password, skipVerify())
	viaTLS := connector(withTLS.mysqlAddr, benchEmail+"/"+poolRole, token, skipVerify())
	viaTLSNoPool := connector(withTLS.mysqlAddr, benchEmail+"/"+noPoolRole, token, skipVerify())
	resumed := skipVerify()
	resumed.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	viaTLSResumed := connector(withTLS.mysqlAddr, benchEmail+"/"+poolRole, token, resumed)
	viaNoTLS := connector(noTLS.mysqlAddr, benchEmail+"/"+poolRole, token, nil)

	rep := report{Timestamp: time.Now().UTC(), Machine: machineInfo(version), Settings: s}
	fmt.Println(rep.header())
	// CPU per connection or query of the client (this process), the proxy
	// and MariaDB: where the cost goes, whatever else runs.
	self, db := os.Getpid(), server.pid()
	var cpuRows []cpuUse
	// proxyPID is the proxy in the path (portcullis or haproxy), 0 for none.
	noteCPU := func(phase, unit string, r cpuResult, proxyPID int) {
		use := cpuUse{Phase: phase, Unit: unit, Client: micros(r.perOp[self]), MariaDB: micros(r.perOp[db]), IdlePct: r.idlePct, StealPct: r.steal}
		if proxyPID != 0 {
			us := micros(r.perOp[proxyPID])
			use.Proxy = &us
		}
		cpuRows = append(cpuRows, use)
	}
	connect := func(name string, c driver.Connector, proxyPID int) measure {
		r, err := connectRate(ctx, c, s.Warmup, s.Duration, self, db, proxyPID)
		if err == nil {
			noteCPU("connect: "+name, "connection", r.cpu, proxyPID)
		}
		return measure{r.rate, err}
	}
	steady := func(name string, c driver.Connector, n int, proxyPID int) (steadyResult, error) {
		r, err := steadyState(ctx, c, n, s.Warmup, s.Duration, self, db, proxyPID)
		if err == nil {
			conns := fmt.Sprintf("%d conns", n)
			if n == 1 {
				conns = "1 conn"
			}
			noteCPU(conns+" SELECT 1: "+name, "query", r.cpu, proxyPID)
		}
		return r, err
	}

	// A fresh process pays for growing its heap and stacks and for the
	// first TLS handshakes: keep that out of whichever phase comes first.
	step("warm-up: 2s of connects through each proxy")
	for _, c := range []driver.Connector{viaTLS, viaTLSNoPool, viaNoTLS} {
		if _, err := connectRate(ctx, c, 2*time.Second/3, time.Millisecond); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	step("connect: direct")
	connDirect := connect("direct", direct, 0)
	step("connect: direct over TLS")
	connDirectTLS := connect("direct over TLS", directTLS, 0)
	// The proxy's CPU profiles of the phases whose targets are hardest.
	profDir := filepath.Dir(outPath)
	step("connect: portcullis, warm pool")
	connectProfile := startProfile(ctx, withTLS, profDir, "connect", s.Warmup+s.Duration)
	connPool := connect("portcullis, warm pool", viaTLS, withTLS.pid())
	step("connect: portcullis, pool off")
	connNoPool := connect("portcullis, pool off", viaTLSNoPool, withTLS.pid())
	step("connect: portcullis, TLS session resumed")
	connResumed := connect("portcullis, TLS resumed", viaTLSResumed, withTLS.pid())
	step("connect: portcullis, no client TLS")
	connPlain := connect("portcullis, no client TLS", viaNoTLS, noTLS.pid())

	step(fmt.Sprintf("%d conns SELECT 1: direct", s.Conns))
	steadyDirect, errSD := steady("direct", direct, s.Conns, 0)
	step(fmt.Sprintf("%d conns SELECT 1: direct over TLS", s.Conns))
	steadyDirectTLS, errSDT := steady("direct over TLS", directTLS, s.Conns, 0)
	step(fmt.Sprintf("%d conns SELECT 1: portcullis", s.Conns))
	steadyProfile := startProfile(ctx, withTLS, profDir, "steady", s.Warmup+s.Duration)
	steadyProxy, errSP := steady("portcullis", viaTLS, s.Conns, withTLS.pid())
	step("1 conn SELECT 1: direct")
	oneDirect, errOD := steady("direct", direct, 1, 0)
	step("1 conn SELECT 1: portcullis")
	latencyProfile := startProfile(ctx, withTLS, profDir, "one-conn", s.Warmup+s.Duration)
	oneProxy, errOP := steady("portcullis", viaTLS, 1, withTLS.pid())

	// The reference: a plain TCP relay in C, no TLS, same machine.
	var connHA, steadyHA, oneHA, sbHA measure
	ha, errHA := startHAProxy(ctx, dir)
	if errHA != nil {
		connHA.err, steadyHA.err, oneHA.err, sbHA.err = errHA, errHA, errHA, errHA
	} else {
		defer ha.stop()
		viaHA := connector(ha.addr, benchUser, password, nil)
		step("reference: haproxy TCP relay, connect")
		connHA = connect("haproxy TCP relay, no TLS", viaHA, ha.pid())
		step(fmt.Sprintf("reference: haproxy TCP relay, %d conns SELECT 1", s.Conns))
		r, err := steady("haproxy", viaHA, s.Conns, ha.pid())
		steadyHA = measure{r.qps, err}
		step("reference: haproxy TCP relay, 1 conn SELECT 1")
		r, err = steady("haproxy", viaHA, 1, ha.pid())
		oneHA = measure{r.p50, err}
	}

	sb := sysbench{dir: dir, threads: 8, time: max(s.Duration*2, 10*time.Second)}
	var sbDirect, sbProxy measure
	step("sysbench oltp_read_only: prepare")
	if err := sb.prepare(ctx, password); err != nil {
		sbDirect.err, sbProxy.err, sbHA.err = err, err, err
	} else {
		step("sysbench oltp_read_only: direct")
		sbDirect.v, sbDirect.err = sb.tps(ctx, backendAddr, benchUser, password, false)
		step("sysbench oltp_read_only: portcullis")
		sbProxy.v, sbProxy.err = sb.tps(ctx, withTLS.mysqlAddr, benchEmail+"/"+poolRole, token, true)
		if errHA == nil {
			step("reference: sysbench oltp_read_only through haproxy")
			sbHA.v, sbHA.err = sb.tps(ctx, ha.addr, benchUser, password, false)
		}
	}

	var mem, memGC measure
	var heap *profile
	if s.Sessions > 0 {
		step(fmt.Sprintf("memory: %d idle sessions", s.Sessions))
		mem.v, memGC.v, heap, mem.err = idleSessionMemory(ctx, withTLS, viaTLS, s.Sessions, profDir)
		memGC.err = mem.err
	}
	step("token checks: go test -bench ./auth")
	cached, coldRS256, errJWT := tokenBenchmarks(ctx)
	step("statement guard: go test -bench ./proxy")
	guard := guardBenchmark(ctx)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}

	// haAdded is the latency haproxy adds to one query: portcullis is held
	// to it. The CPU rows hold portcullis's and MariaDB's CPU per query in
	// the 16-connection phase to the same figures behind haproxy.
	var haAdded float64
	if errOD == nil && oneHA.err == nil {
		haAdded = oneHA.v - oneDirect.p50
	}
	cpuOf := func(phase string, proxy bool) measure {
		for _, c := range cpuRows {
			if c.Phase == phase {
				if !proxy {
					return measure{c.MariaDB, nil}
				}
				if c.Proxy != nil {
					return measure{*c.Proxy, nil}
				}
			}
		}
		return measure{err: fmt.Errorf("no CPU sample for %q", phase)}
	}
	steadyPhase := fmt.Sprintf("%d conns SELECT 1: ", s.Conns)
	rep.Rows = []row{
		rateRow("connect + TLS token auth + SELECT 1 + close, warm pool (conn/s)", connDirectTLS, connPool, "≥ 1.00x", 1.0).vs("direct over TLS"),
		rateRow("same, pool off (conn/s)", connDirectTLS, connNoPool, "≥ 0.50x", 0.5).vs("direct over TLS"),
		rateRow("same, warm pool, client resumes its TLS session (conn/s)", connDirectTLS, connResumed, "", 0).vs("direct over TLS"),
		rateRow("same, warm pool, no client TLS (conn/s)", connDirect, connPlain, "", 0).vs("direct"),
		rateRow(fmt.Sprintf("%d conns SELECT 1 over TLS (QPS)", s.Conns), steadyHA, measure{steadyProxy.qps, errSP}, "≥ 1.00x", 1.0).vs("haproxy"),
		rateRow("same, against direct over TLS (QPS)", measure{steadyDirectTLS.qps, errSDT}, measure{steadyProxy.qps, errSP}, "", 0).vs("direct over TLS"),
		latencyRow(fmt.Sprintf("%d conns SELECT 1 p99 (µs)", s.Conns), measure{steadyDirect.p99, errSD}, measure{steadyProxy.p99, errSP}, 0).vs("direct"),
		latencyRow("1 conn SELECT 1 p50: latency added per query (µs), target: haproxy's", measure{oneDirect.p50, errOD}, measure{oneProxy.p50, errOP}, haAdded).vs("direct"),
		rateRow(fmt.Sprintf("sysbench oltp_read_only, %d threads, --mysql-ssl=on (TPS)", sb.threads), sbHA, sbProxy, "≥ 1.00x", 1.0).vs("haproxy"),
		costRow(fmt.Sprintf("proxy CPU per query, %d conns SELECT 1 (µs)", s.Conns), cpuOf(steadyPhase+"haproxy", true), cpuOf(steadyPhase+"portcullis", true)).vs("haproxy"),
		costRow(fmt.Sprintf("MariaDB CPU per query behind the proxy, %d conns (µs)", s.Conns), cpuOf(steadyPhase+"haproxy", false), cpuOf(steadyPhase+"portcullis", false)).vs("haproxy"),
		rateRow("reference, direct over TLS: connect (conn/s)", connDirect, connDirectTLS, "", 0).vs("direct"),
		rateRow(fmt.Sprintf("reference, direct over TLS: %d conns SELECT 1 (QPS)", s.Conns), measure{steadyDirect.qps, errSD}, measure{steadyDirectTLS.qps, errSDT}, "", 0).vs("direct"),
		rateRow("reference, haproxy TCP relay (no TLS, no auth): connect (conn/s)", connDirect, connHA, "", 0).vs("direct"),
		rateRow(fmt.Sprintf("reference, haproxy TCP relay: %d conns SELECT 1 (QPS)", s.Conns), measure{steadyDirect.qps, errSD}, steadyHA, "", 0).vs("direct"),
		latencyRow("reference, haproxy TCP relay: 1 conn SELECT 1 p50 (µs)", measure{oneDirect.p50, errOD}, oneHA, 0).vs("direct"),
		rateRow(fmt.Sprintf("reference, haproxy TCP relay: sysbench oltp_read_only, %d threads (TPS)", sb.threads), sbDirect, sbHA, "", 0).vs("direct"),
	}
	if s.Sessions > 0 {
		rep.Rows = append(rep.Rows, ownRow(fmt.Sprintf("RSS per idle TLS session at %d sessions (KiB)", s.Sessions), mem, 32),
			row{Phase: "same, right after a forced GC (KiB, diagnostic: the live share)", Portcullis: memGC.ptr()})
	}
	rep.Rows = append(rep.Rows,
		ownRow("cached token check (µs)", measure{cached, errJWT}, 1),
		ownRow("cold RS256 token verification (µs)", measure{coldRS256, errJWT}, 50),
		ownRow("statement guard, one SELECT, fast path (µs)", measure{guard.fastUS, guard.err}, 1),
		ownRow("statement guard, one SELECT, fast path (allocs)", measure{guard.fastAllocs, guard.err}, 0),
		ownRow("statement guard, two statements in one text, slow path (µs)", measure{guard.slowUS, guard.err}, 1),
		ownRow("statement guard, two statements in one text, slow path (allocs)", measure{guard.slowAllocs, guard.err}, 0),
	)
	rep.CPU = cpuRows
	fmt.Println()
	rep.printTable(os.Stdout)
	if err := rep.write(outPath); err != nil {
		return err
	}
	fmt.Println("\nwritten to", outPath)
	profiles := []*profile{connectProfile, steadyProfile, latencyProfile}
	if heap != nil {
		profiles = append(profiles, heap)
	}
	for _, pr := range profiles {
		kind := "CPU"
		if pr.args != nil {
			kind = "heap (in use, idle sessions open)"
		}
		fmt.Printf("\nportcullis %s profile, phase %q (%s; go tool pprof -top):\n%s", kind, pr.name, pr.path, pr.top(ctx, 15))
	}
	var failed []error
	for _, r := range rep.Rows {
		if r.Error != "" {
			failed = append(failed, fmt.Errorf("%s: %s", r.Phase, r.Error))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("some measurements failed, their cells say so:\n%w", errors.Join(failed...))
	}
	return nil
}

// openRoot connects to MariaDB as root and returns its version.
func openRoot(ctx context.Context) (*sql.DB, string, error) {
	cfg := mysqlConfig(backendAddr, "root", "")
	cfg.Timeout = 2 * time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, "", err
	}
	db := sql.OpenDB(c)
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		db.Close()
		return nil, "", err
	}
	return db, version, nil
}

// createAccount (re)creates the bench accounts (one password for both)
// and their database, which sysbench fills.
func createAccount(ctx context.Context, root *sql.DB, password string) error {
	for _, q := range []string{
		"DROP USER IF EXISTS '" + benchUser + "'@'%', '" + noPoolUser + "'@'%'",
		"DROP DATABASE IF EXISTS " + benchDB,
		"CREATE DATABASE " + benchDB,
		"CREATE USER '" + benchUser + "'@'%' IDENTIFIED BY '" + password + "'",
		"GRANT ALL ON " + benchDB + ".* TO '" + benchUser + "'@'%'",
		"CREATE USER '" + noPoolUser + "'@'%' IDENTIFIED BY '" + password + "'",
		"GRANT ALL ON " + benchDB + ".* TO '" + noPoolUser + "'@'%'",
	} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create the bench's backend accounts: %w", err)
		}
	}
	return nil
}

func mysqlConfig(addr, user, password string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd = "tcp", addr, user, password
	cfg.Timeout = 5 * time.Second
	return cfg
}

// connector is a go-sql-driver connector; through the proxy the token goes
// as a cleartext password, which needs TLS unless the proxy runs without.
func connector(addr, user, password string, tlsCfg *tls.Config) driver.Connector {
	cfg := mysqlConfig(addr, user, password)
	cfg.TLS = tlsCfg
	cfg.AllowCleartextPasswords = addr != backendAddr
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		panic(err) // only for an invalid config, which the code above never makes
	}
	return c
}
