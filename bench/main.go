// Command bench measures what portcullis costs a MySQL client, against the
// same client talking to MariaDB directly. Run it with `make bench` (which
// starts MariaDB first) or `go run ./bench` when MariaDB already answers on
// 127.0.0.1:3306 as root with an empty password.
//
// It creates a throwaway backend account (pcbench, random password), writes
// a config to a temporary folder, mints a dev-issuer token, and starts two
// portcullis proxies in-process with service.Start: one with client TLS (a
// self-signed certificate, as with no tls: section) and one with
// InsecureNoTLS. Then, for three targets,
//
//	direct             MariaDB as pcbench with its password, no TLS
//	portcullis TLS     the proxy, the token as a cleartext password over TLS
//	portcullis no-TLS  the proxy, the token as a cleartext password in the clear
//
// it times two phases with github.com/go-sql-driver/mysql, each after a short
// warm-up:
//
//   - connect: one connection at a time does connect + auth + SELECT 1 +
//     close, on a raw driver connection (no database/sql pool to hide the
//     connect). Through the proxy this includes the TLS handshake, the JWT
//     verification, the role lookup, the backend dial and the backend's own
//     auth, so it is the cost a client pays per new connection.
//   - steady state: -conns connections, opened before timing, each running
//     SELECT 1 in a loop. It reports queries per second and the p50 and p99
//     latency of one query: the relay's cost on an open session.
//
// How to read the numbers: absolute values vary from run to run and machine
// to machine (the client, both proxies and MariaDB share the same cores, so
// the proxy's CPU is taken from MariaDB's), so compare the ratios. For
// throughput rows ratio = portcullis / direct: 1.00x means no cost, 0.50x
// means half the rate. For latency rows ratio = portcullis / direct as well
// (above 1 is slower), and +µs is the latency the proxy adds to one query.
// The table is printed and written as JSON to -out so runs can be compared.
// Anything else busy on the machine moves the numbers: if a ratio looks
// odd, run again before believing it. -cpuprofile shows where the time of
// the whole process (client and both proxies) went.
//
// A target that fails (cannot connect, a query errs) shows FAILED in its
// cells with the reason below the table, the other targets are still
// measured, and the command exits 1.
//
// JWT verification alone (ns/op per token) is measured by the Go benchmarks
// in ./auth (BenchmarkVerifyES256, BenchmarkVerifyRS256), which `make bench`
// runs after this command.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/service"
)

const (
	backendAddr = "127.0.0.1:3306"
	benchUser   = "pcbench" // the backend account the bench creates and drops
	benchRole   = "bench"
	benchEmail  = "bench@example.com"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "timed length of each phase, per target")
	conns := flag.Int("conns", 16, "concurrent connections in the steady-state phase")
	warmup := flag.Duration("warmup", 500*time.Millisecond, "untimed warm-up before each phase, per target")
	out := flag.String("out", "bench/results.json", "where to write the results as JSON")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (client and both proxies) to this file")
	noPool := flag.Bool("no-pool", false, "turn the proxy's warm backend connection pool off (pool.max_idle: -1)")
	flag.Parse()
	if *duration <= 0 || *warmup < 0 || *conns < 1 {
		fmt.Fprintln(os.Stderr, "bench: -duration must be positive, -warmup not negative, -conns at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -cpuprofile:", err)
			os.Exit(2)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if err := run(ctx, settings{Duration: *duration, Warmup: *warmup, Conns: *conns, Pool: !*noPool}, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		stop()
		os.Exit(1)
	}
}

type settings struct {
	Duration time.Duration `json:"duration_ns"`
	Warmup   time.Duration `json:"warmup_ns"`
	Conns    int           `json:"conns"`
	Pool     bool          `json:"pool"` // the proxy's backend connection pool
}

// target is one way of reaching MariaDB.
type target struct {
	name string
	conn driver.Connector
}

// run sets up the account and both proxies, measures, prints and writes the
// report. Everything it creates is removed on the way out, error or not.
func run(ctx context.Context, s settings, outPath string) (err error) {
	root, version, err := openRoot(ctx)
	if err != nil {
		return fmt.Errorf("MariaDB does not answer on %s as root with an empty password: %w\n"+
			"run `make bench`, which starts MariaDB (installing it if needed) before the benchmark", backendAddr, err)
	}
	defer root.Close()

	password := randomHex(16)
	if err := createAccount(ctx, root, password); err != nil {
		return err
	}
	defer func() {
		// A fresh context: the run's may be cancelled (Ctrl-C) by now.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, derr := root.ExecContext(cctx, "DROP USER IF EXISTS '"+benchUser+"'@'%'"); derr != nil && err == nil {
			err = fmt.Errorf("drop account %s: %w", benchUser, derr)
		}
	}()

	dir, err := os.MkdirTemp("", "portcullis-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg, token, err := writeConfig(dir, password, s.Pool)
	if err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	withTLS, err := startProxy(ctx, cfg, false, log)
	if err != nil {
		return err
	}
	defer shutdown(withTLS)
	noTLSCfg := *cfg
	noTLSCfg.Audit.File = filepath.Join(dir, "audit-notls.log")
	noTLS, err := startProxy(ctx, &noTLSCfg, true, log)
	if err != nil {
		return err
	}
	defer shutdown(noTLS)

	direct := mysqlConfig(backendAddr, benchUser, password)
	viaTLS := mysqlConfig(withTLS.MySQLAddr.String(), benchEmail, token)
	viaTLS.TLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the proxy's self-signed certificate
	viaTLS.AllowCleartextPasswords = true
	viaNoTLS := mysqlConfig(noTLS.MySQLAddr.String(), benchEmail, token)
	viaNoTLS.AllowCleartextPasswords = true
	var targets []target
	for _, t := range []struct {
		name string
		cfg  *mysql.Config
	}{{"direct", direct}, {"portcullis TLS", viaTLS}, {"portcullis no-TLS", viaNoTLS}} {
		c, err := mysql.NewConnector(t.cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		targets = append(targets, target{t.name, c})
	}

	rep := report{Timestamp: time.Now().UTC(), Machine: machineInfo(version), Settings: s}
	fmt.Println(rep.header())

	// A target that fails is reported as failed and the others still run:
	// one broken path must not hide the numbers of the rest.
	var conn, qps, p50, p99 [3]measure
	for i, t := range targets {
		fmt.Fprintf(os.Stderr, "connect+auth+SELECT 1+close: %s...\n", t.name)
		rate, err := connectRate(ctx, t.conn, s.Warmup, s.Duration)
		conn[i] = measure{rate, err}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
	}
	for i, t := range targets {
		fmt.Fprintf(os.Stderr, "%d conns SELECT 1: %s...\n", s.Conns, t.name)
		r, err := steadyState(ctx, t.conn, s.Conns, s.Warmup, s.Duration)
		qps[i], p50[i], p99[i] = measure{r.qps, err}, measure{r.p50, err}, measure{r.p99, err}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
	}

	rep.Rows = []row{
		newRow("connect+auth+SELECT 1+close (conn/s)", "conn/s", true, conn),
		newRow(fmt.Sprintf("%d conns SELECT 1 (QPS)", s.Conns), "queries/s", true, qps),
		newRow(fmt.Sprintf("%d conns p50 latency (µs)", s.Conns), "µs", false, p50),
		newRow(fmt.Sprintf("%d conns p99 latency (µs)", s.Conns), "µs", false, p99),
	}
	fmt.Println()
	rep.printTable(os.Stdout)
	if err := rep.write(outPath); err != nil {
		return err
	}
	fmt.Println("\nwritten to", outPath)
	var failed []error
	for i, t := range targets {
		if conn[i].err != nil {
			failed = append(failed, fmt.Errorf("%s, connect phase: %w", t.name, conn[i].err))
		}
		if qps[i].err != nil {
			failed = append(failed, fmt.Errorf("%s, %d conns phase: %w", t.name, s.Conns, qps[i].err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("some targets failed, their cells say so:\n%w", errors.Join(failed...))
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

// createAccount (re)creates the bench account. It holds only USAGE, which
// is all SELECT 1 needs.
func createAccount(ctx context.Context, root *sql.DB, password string) error {
	for _, q := range []string{
		"DROP USER IF EXISTS '" + benchUser + "'@'%'",
		"CREATE USER '" + benchUser + "'@'%' IDENTIFIED BY '" + password + "'",
	} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create backend account %s: %w", benchUser, err)
		}
	}
	return nil
}

// writeConfig writes a portcullis.yaml with the dev issuer and one role into
// dir, loads it as serve would, and mints a token for that role.
func writeConfig(dir, password string, pool bool) (*config.Config, string, error) {
	maxIdle := 16
	if !pool {
		maxIdle = -1
	}
	if err := os.WriteFile(filepath.Join(dir, benchUser+".pw"), []byte(password+"\n"), 0o600); err != nil {
		return nil, "", err
	}
	yaml := fmt.Sprintf(`
listen: {mysql: "127.0.0.1:0", http: "127.0.0.1:0"}
backend: {address: %q, tls: disabled}
dev_issuer: {enabled: true, key_file: dev.pem}
roles:
  %s: {backend_user: %s, backend_password: "file:%s.pw", pool: {max_idle: %d}}
audit: {file: audit.log}
log: {level: warn}
`, backendAddr, benchRole, benchUser, benchUser, maxIdle)
	path := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		return nil, "", err
	}
	if _, err := auth.InitDevKey(filepath.Join(dir, "dev.pem")); err != nil {
		return nil, "", err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, "", err
	}
	dev, err := auth.LoadDevIssuer(cfg.DevIssuer)
	if err != nil {
		return nil, "", err
	}
	token, err := dev.Mint(auth.MintRequest{Email: benchEmail, Roles: []string{benchRole}, TTL: 30 * time.Minute})
	if err != nil {
		return nil, "", err
	}
	return cfg, token, nil
}

func startProxy(ctx context.Context, cfg *config.Config, insecureNoTLS bool, log *slog.Logger) (*service.Service, error) {
	svc, err := service.Start(ctx, cfg, service.Options{InsecureNoTLS: insecureNoTLS, Log: log})
	if err != nil {
		return nil, fmt.Errorf("start portcullis (insecure no TLS: %v): %w", insecureNoTLS, err)
	}
	return svc, nil
}

func shutdown(svc *service.Service) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := svc.Shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "bench: shut down portcullis on %s: %v\n", svc.MySQLAddr, err)
	}
}

func mysqlConfig(addr, user, password string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd = "tcp", addr, user, password
	cfg.Timeout = 5 * time.Second
	return cfg
}

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

// connectRate returns connect+auth+SELECT 1+close per second, one at a time.
func connectRate(ctx context.Context, c driver.Connector, warmup, d time.Duration) (float64, error) {
	dest := make([]driver.Value, 1)
	for end := time.Now().Add(warmup); time.Now().Before(end); {
		if err := connectOnce(ctx, c, dest); err != nil {
			return 0, err
		}
	}
	n, start := 0, time.Now()
	for time.Since(start) < d {
		if err := connectOnce(ctx, c, dest); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

type steadyResult struct {
	qps, p50, p99 float64 // p50 and p99 in µs
}

// steadyState opens n connections, then has each run SELECT 1 in a loop:
// warm-up first, then d timed, recording every query's latency.
func steadyState(ctx context.Context, c driver.Connector, n int, warmup, d time.Duration) (steadyResult, error) {
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
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return steadyResult{}, err
	}

	all := slices.Concat(lats...)
	if len(all) == 0 {
		return steadyResult{}, errors.New("no query finished in the timed window")
	}
	slices.Sort(all)
	return steadyResult{
		qps: float64(len(all)) / d.Seconds(),
		p50: micros(percentile(all, 0.50)),
		p99: micros(percentile(all, 0.99)),
	}, nil
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

// report is what is printed and written to -out.
type report struct {
	Timestamp time.Time `json:"timestamp"`
	Machine   machine   `json:"machine"`
	Settings  settings  `json:"settings"`
	Rows      []row     `json:"rows"`
}

type machine struct {
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	Hostname   string `json:"hostname,omitempty"`
	MariaDB    string `json:"mariadb_version"`
}

// measure is one target's value in a row, or why it has none.
type measure struct {
	v   float64
	err error
}

// targetKeys name the three targets in the JSON rows, in table order.
var targetKeys = [3]string{"direct", "tls", "notls"}

// row is one measurement for the three targets. A null value means the
// target failed (Errors says why). Ratios are portcullis / direct; Added*
// (latency rows only) are portcullis - direct in µs.
type row struct {
	Phase          string            `json:"phase"`
	Unit           string            `json:"unit"`
	HigherIsBetter bool              `json:"higher_is_better"`
	Direct         *float64          `json:"direct"`
	TLS            *float64          `json:"tls"`
	NoTLS          *float64          `json:"notls"`
	RatioTLS       *float64          `json:"ratio_tls"`
	RatioNoTLS     *float64          `json:"ratio_notls"`
	AddedTLS       *float64          `json:"added_us_tls,omitempty"`
	AddedNoTLS     *float64          `json:"added_us_notls,omitempty"`
	Errors         map[string]string `json:"errors,omitempty"` // target key -> error
}

func newRow(phase, unit string, higherIsBetter bool, m [3]measure) row {
	r := row{Phase: phase, Unit: unit, HigherIsBetter: higherIsBetter}
	var v [3]*float64
	for i := range m {
		if m[i].err != nil {
			if r.Errors == nil {
				r.Errors = map[string]string{}
			}
			r.Errors[targetKeys[i]] = m[i].err.Error()
			continue
		}
		v[i] = &m[i].v
	}
	r.Direct, r.TLS, r.NoTLS = v[0], v[1], v[2]
	r.RatioTLS, r.RatioNoTLS = ratio(v[1], v[0]), ratio(v[2], v[0])
	if !higherIsBetter {
		r.AddedTLS, r.AddedNoTLS = diff(v[1], v[0]), diff(v[2], v[0])
	}
	return r
}

// ratio is a/b, or nil when either is missing or b is 0.
func ratio(a, b *float64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	x := *a / *b
	return &x
}

// diff is a-b, or nil when either is missing.
func diff(a, b *float64) *float64 {
	if a == nil || b == nil {
		return nil
	}
	x := *a - *b
	return &x
}

func machineInfo(mariadb string) machine {
	host, _ := os.Hostname()
	return machine{
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel: cpuModel(), Hostname: host, MariaDB: mariadb,
	}
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "" elsewhere.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (r *report) header() string {
	m := r.Machine
	cpu := ""
	if m.CPUModel != "" {
		cpu = ", " + m.CPUModel
	}
	return fmt.Sprintf("portcullis bench %s  %s %s/%s  GOMAXPROCS=%d (%d CPUs%s)  MariaDB %s\n"+
		"each phase: %v warm-up, then %v timed, per target; client, proxies and MariaDB share this machine; proxy backend pool: %s",
		r.Timestamp.Format(time.RFC3339), m.GoVersion, m.OS, m.Arch, m.GOMAXPROCS, m.NumCPU, cpu, m.MariaDB,
		r.Settings.Warmup, r.Settings.Duration, map[bool]string{true: "on", false: "off"}[r.Settings.Pool])
}

func (r *report) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "phase\tdirect\tportcullis TLS\tratio\tportcullis no-TLS\tratio")
	failed := false
	for _, x := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.Phase,
			valueCell(x.Direct), valueCell(x.TLS), ratioCell(x.RatioTLS, x.AddedTLS),
			valueCell(x.NoTLS), ratioCell(x.RatioNoTLS, x.AddedNoTLS))
		failed = failed || len(x.Errors) > 0
	}
	tw.Flush()
	fmt.Fprintln(w, "\nratio = portcullis / direct: for conn/s and QPS 1.00x is free and lower is a cost;\n"+
		"for latency higher is a cost, and +µs is what the proxy adds to one query.\n"+
		"Absolute numbers vary from run to run: compare ratios.")
	if failed {
		fmt.Fprintln(w, "\nFAILED cells (no number was measured):")
		for _, x := range r.Rows {
			for _, k := range targetKeys {
				if e, ok := x.Errors[k]; ok {
					fmt.Fprintf(w, "  %s, %s: %s\n", x.Phase, k, e)
				}
			}
		}
	}
}

func valueCell(v *float64) string {
	if v == nil {
		return "FAILED"
	}
	return fmt.Sprintf("%.0f", *v)
}

func ratioCell(ratio, added *float64) string {
	switch {
	case ratio == nil:
		return "-"
	case added == nil:
		return fmt.Sprintf("%.2fx", *ratio)
	}
	return fmt.Sprintf("%.2fx (%+.0f µs)", *ratio, *added)
}

func (r *report) write(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
