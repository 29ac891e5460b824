package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// mariadbProcess is the bench's own MariaDB server: its own datadir, port
// and socket under the bench's temporary directory, with TLS (the bench
// CA's server certificate) and a max_connections large enough for the
// memory phase. The shared server on 127.0.0.1:3306 is never touched,
// so other users of it see neither the load's accounts nor changed
// settings, and direct over TLS is a reference the bench can always
// measure.
type mariadbProcess struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

// startMariaDB installs a fresh datadir under dir and runs mariadbd on a
// free port until it answers, root with an empty password over TCP. The
// certificates are the bench CA's, written into certDir by writeCerts.
func startMariaDB(ctx context.Context, dir, certDir string, maxConns int) (*mariadbProcess, error) {
	if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
		return nil, errors.New("/usr/sbin/mariadbd is not installed: run `make bench`, which installs MariaDB")
	}
	data := filepath.Join(dir, "data")
	install := exec.CommandContext(ctx, "mariadb-install-db", append([]string{"--no-defaults", "--datadir=" + data,
		"--auth-root-authentication-method=normal", "--skip-test-db"}, asRoot()...)...)
	if out, err := install.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	errLog := filepath.Join(dir, "error.log")
	args := append([]string{"--no-defaults", "--datadir=" + data,
		"--bind-address=127.0.0.1", "--port=" + port, "--socket=" + filepath.Join(dir, "sock"),
		"--pid-file=" + filepath.Join(dir, "pid"), "--skip-log-bin", "--log-error=" + errLog,
		"--max-connections=" + strconv.Itoa(maxConns), "--thread-cache-size=64",
		"--ssl-ca=" + filepath.Join(certDir, "cacert.pem"),
		"--ssl-cert=" + filepath.Join(certDir, "proxy-cert.pem"),
		"--ssl-key=" + filepath.Join(certDir, "proxy-key.pem")}, asRoot()...)
	cmd := exec.Command("/usr/sbin/mariadbd", args...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	m := &mariadbProcess{cmd: cmd, addr: addr, dir: dir}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return m, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			m.stop()
			log, _ := os.ReadFile(errLog)
			return nil, fmt.Errorf("the bench's mariadbd on %s did not come up in 60s:\n%s", addr, log)
		}
	}
}

func (m *mariadbProcess) pid() int { return m.cmd.Process.Pid }

// stop shuts the server down cleanly (SIGTERM), killing it after 30s.
// The caller removes the datadir with the rest of the temporary directory.
func (m *mariadbProcess) stop() {
	m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		<-done
	}
}

// asRoot: mariadbd refuses to run as root unless told to.
func asRoot() []string {
	if os.Geteuid() == 0 {
		return []string{"--user=root"}
	}
	return nil
}
