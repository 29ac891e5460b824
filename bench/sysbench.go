package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// sysbench runs Debian's sysbench oltp_read_only, a C client on
// libmariadb, so one row of the table comes from a client that is not Go.
type sysbench struct {
	dir     string // working directory: sysbench --mysql-ssl=on loads its PEM files from here
	threads int
	time    time.Duration
}

// sysbenchTables is the workload's size: small enough to prepare in a
// second, large enough that the queries touch an index.
const sysbenchTables, sysbenchRows = 1, 10000

func (sb sysbench) args(cmd, host, port, user, password string, ssl bool) []string {
	return []string{
		"oltp_read_only", "--db-driver=mysql",
		"--mysql-host=" + host, "--mysql-port=" + port,
		"--mysql-user=" + user, "--mysql-password=" + password, "--mysql-db=" + benchDB,
		fmt.Sprintf("--mysql-ssl=%s", map[bool]string{true: "on", false: "off"}[ssl]),
		fmt.Sprintf("--tables=%d", sysbenchTables), fmt.Sprintf("--table-size=%d", sysbenchRows),
		fmt.Sprintf("--threads=%d", sb.threads), fmt.Sprintf("--time=%d", int(sb.time.Seconds())),
		"--report-interval=0", cmd,
	}
}

// prepare creates the tables directly as the bench account.
func (sb sysbench) prepare(ctx context.Context, password string) error {
	host, port, _ := strings.Cut(backendAddr, ":")
	_, err := sb.exec(ctx, sb.args("prepare", host, port, benchUser, password, false))
	return err
}

// tps runs the workload against addr and returns transactions per second.
func (sb sysbench) tps(ctx context.Context, addr, user, password string, ssl bool) (float64, error) {
	host, port, _ := strings.Cut(addr, ":")
	out, err := sb.exec(ctx, sb.args("run", host, port, user, password, ssl))
	if err != nil {
		return 0, err
	}
	m := tpsLine.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("sysbench printed no transactions line:\n%s", out)
	}
	if errs := errLine.FindStringSubmatch(out); errs != nil && errs[1] != "0" {
		return 0, fmt.Errorf("sysbench saw %s errors:\n%s", errs[1], out)
	}
	return strconv.ParseFloat(m[1], 64)
}

// libmariadbPlugins preloads the plugins a login through portcullis uses.
const libmariadbPlugins = "LIBMYSQL_PLUGINS=caching_sha2_password;mysql_clear_password"

var (
	tpsLine = regexp.MustCompile(`transactions:\s+\d+\s+\(([\d.]+) per sec\.\)`)
	errLine = regexp.MustCompile(`ignored errors:\s+(\d+)`)
)

func (sb sysbench) exec(ctx context.Context, args []string) (string, error) {
	cmd := exec.CommandContext(ctx, "sysbench", args...)
	cmd.Dir = sb.dir
	// libmariadb loads auth plugins on first use without a lock, so
	// threads doing their first login at once can fail with "Plugin ...
	// could not be loaded: it is already loaded"; loading them at library
	// init, as the README advises for such clients, avoids the race.
	cmd.Env = append(os.Environ(), libmariadbPlugins)
	out, err := cmd.CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		return "", errors.New("sysbench is not installed: run `make bench`, which installs it")
	}
	if err != nil {
		// The password argument (a token) is not in out: sysbench does
		// not echo its options.
		return "", fmt.Errorf("sysbench %s: %w:\n%s", args[len(args)-1], err, out)
	}
	return string(out), nil
}
