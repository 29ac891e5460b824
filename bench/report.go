package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// report is what is printed and written to -out.
type report struct {
	Timestamp time.Time `json:"timestamp"`
	Machine   machine   `json:"machine"`
	Settings  settings  `json:"settings"`
	Rows      []row     `json:"rows"`
	CPU       []cpuUse  `json:"cpu_per_op_us"`
}

// cpuUse is the CPU time per operation (a connection or a query), in µs,
// of each process during one phase, and the machine's idle and stolen
// shares. It shows where an operation's cost goes, and whether the
// machine was saturated, which the rate alone hides on a shared machine.
type cpuUse struct {
	Phase    string   `json:"phase"`
	Unit     string   `json:"unit"` // "connection" or "query"
	Client   float64  `json:"client"`
	MariaDB  float64  `json:"mariadb"`
	Proxy    *float64 `json:"proxy,omitempty"` // portcullis, or haproxy in the reference rows
	IdlePct  float64  `json:"machine_idle_pct"`
	StealPct float64  `json:"machine_steal_pct"`
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

// measure is one value, or why there is none.
type measure struct {
	v   float64
	err error
}

// row is one figure: direct and through portcullis (or portcullis alone,
// or, in the reference rows, through haproxy), the ratio or the added
// latency, and the target it is held to. Null values mean the measurement
// failed (Error says why) or does not apply.
type row struct {
	Phase      string   `json:"phase"`
	Against    string   `json:"against,omitempty"` // what the direct column is: direct, direct over TLS, haproxy
	Direct     *float64 `json:"direct"`
	Portcullis *float64 `json:"portcullis"`
	Ratio      *float64 `json:"ratio,omitempty"`    // portcullis / direct
	AddedUS    *float64 `json:"added_us,omitempty"` // portcullis - direct, latency rows
	Target     string   `json:"target,omitempty"`
	Met        *bool    `json:"met,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func (m measure) ptr() *float64 {
	if m.err != nil {
		return nil
	}
	return &m.v
}

func rowOf(phase string, direct, proxy measure) row {
	r := row{Phase: phase, Direct: direct.ptr(), Portcullis: proxy.ptr()}
	for _, m := range []measure{direct, proxy} {
		if m.err != nil && r.Error == "" {
			r.Error = m.err.Error()
		}
	}
	return r
}

// rateRow is a higher-is-better figure held to ratio ≥ minRatio (0: none).
func rateRow(phase string, direct, proxy measure, target string, minRatio float64) row {
	r := rowOf(phase, direct, proxy)
	if r.Direct != nil && r.Portcullis != nil && *r.Direct > 0 {
		x := *r.Portcullis / *r.Direct
		r.Ratio = &x
		if minRatio > 0 {
			met := x >= minRatio
			r.Target, r.Met = target, &met
		}
	}
	return r
}

// latencyRow is a latency held to at most maxAdded µs over direct (0: none).
func latencyRow(phase string, direct, proxy measure, maxAdded float64) row {
	r := rowOf(phase, direct, proxy)
	if r.Direct != nil && r.Portcullis != nil && *r.Direct > 0 {
		x, added := *r.Portcullis / *r.Direct, *r.Portcullis-*r.Direct
		r.Ratio, r.AddedUS = &x, &added
		if maxAdded > 0 {
			met := added <= maxAdded
			r.Target, r.Met = fmt.Sprintf("≤ +%.0f µs", maxAdded), &met
		}
	}
	return r
}

// vs names what the row's reference column measured.
func (r row) vs(against string) row {
	r.Against = against
	return r
}

// costRow is a lower-is-better cost (CPU per query) held to at most the
// reference's: ratio ≤ 1.00x.
func costRow(phase string, ref, proxy measure) row {
	r := rowOf(phase, ref, proxy)
	if r.Direct != nil && r.Portcullis != nil && *r.Direct > 0 {
		x := *r.Portcullis / *r.Direct
		met := x <= 1.0
		r.Ratio, r.Target, r.Met = &x, "≤ 1.00x", &met
	}
	return r
}

// ownRow is a figure of portcullis alone, held to at most limit.
func ownRow(phase string, m measure, limit float64) row {
	r := row{Phase: phase, Portcullis: m.ptr(), Target: fmt.Sprintf("≤ %g", limit)}
	if m.err != nil {
		r.Error = m.err.Error()
	}
	if r.Portcullis != nil {
		met := *r.Portcullis <= limit
		r.Met = &met
	}
	return r
}

func (r *report) header() string {
	m := r.Machine
	cpu := ""
	if m.CPUModel != "" {
		cpu = ", " + m.CPUModel
	}
	return fmt.Sprintf("portcullis bench %s  %s %s/%s  GOMAXPROCS=%d (%d CPUs%s)  MariaDB %s\n"+
		"each phase: %v warm-up, then %v timed; the client, the portcullis process and MariaDB share this machine",
		r.Timestamp.Format(time.RFC3339), m.GoVersion, m.OS, m.Arch, m.GOMAXPROCS, m.NumCPU, cpu, m.MariaDB,
		r.Settings.Warmup, r.Settings.Duration)
}

func (r *report) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "figure\tagainst\treference\tproxied\tratio\ttarget\t")
	for _, x := range r.Rows {
		against := x.Against
		if against == "" {
			against = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", x.Phase, against, valueCell(x.Direct, x.Error), valueCell(x.Portcullis, x.Error), ratioCell(x), targetCell(x))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nratio = proxied / reference (portcullis, or haproxy or direct over TLS in the reference rows; the against column names the reference):\n"+
		"for conn/s, QPS and TPS 1.00x is as fast and lower is a cost; for CPU per query lower is cheaper;\n"+
		"for latency +µs is what the proxy adds. Absolute numbers vary from run to run: compare ratios.")
	if len(r.CPU) > 0 {
		fmt.Fprintln(w, "\nCPU time per connection or query (µs), by process, and the machine's idle and stolen shares:")
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "phase\tper\tclient (Go driver)\tproxy\tMariaDB\ttotal\tidle\tsteal\t")
		for _, c := range r.CPU {
			proxy, total := "-", c.Client+c.MariaDB
			if c.Proxy != nil {
				proxy, total = fmt.Sprintf("%.1f", *c.Proxy), total+*c.Proxy
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%.1f\t%.1f\t%.0f%%\t%.0f%%\t\n", c.Phase, c.Unit, c.Client, proxy, c.MariaDB, total, c.IdlePct, c.StealPct)
		}
		tw.Flush()
	}
	for _, x := range r.Rows {
		if x.Error != "" {
			fmt.Fprintf(w, "\nFAILED %s: %s\n", x.Phase, x.Error)
		}
	}
}

func valueCell(v *float64, err string) string {
	switch {
	case v != nil && *v < 10:
		return fmt.Sprintf("%.2f", *v)
	case v != nil:
		return fmt.Sprintf("%.0f", *v)
	case err != "":
		return "FAILED"
	}
	return "-"
}

func ratioCell(x row) string {
	switch {
	case x.Ratio == nil:
		return "-"
	case x.AddedUS != nil:
		return fmt.Sprintf("%.2fx (%+.0f µs)", *x.Ratio, *x.AddedUS)
	}
	return fmt.Sprintf("%.2fx", *x.Ratio)
}

func targetCell(x row) string {
	switch {
	case x.Target == "":
		return ""
	case x.Met == nil:
		return x.Target + "  ?"
	case *x.Met:
		return x.Target + "  met"
	}
	return x.Target + "  MISSED"
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

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
