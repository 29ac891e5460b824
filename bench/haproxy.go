package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// haproxyProcess is Debian's haproxy relaying TCP to MariaDB: no TLS, no
// parsing, nothing but two sockets per client. It is the reference for
// what any user-space proxy costs on this machine, where the client and
// MariaDB share its cores.
type haproxyProcess struct {
	cmd  *exec.Cmd
	addr string
}

// startHAProxy runs haproxy in the foreground on a free port, writing its
// config into dir, until the port accepts.
func startHAProxy(ctx context.Context, dir string) (*haproxyProcess, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/haproxy"); err != nil {
			return nil, fmt.Errorf("haproxy is not installed: run `make bench`, which installs it")
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// No maxconn: haproxy derives it from the open-files limit.
	cfg := fmt.Sprintf(`defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen mysql
  bind %s
  server mariadb %s
`, addr, backendAddr)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	h := &haproxyProcess{cmd: cmd, addr: addr}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return h, nil
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("haproxy does not listen on %s after 10s", addr)
		}
	}
}

func (h *haproxyProcess) pid() int { return h.cmd.Process.Pid }

func (h *haproxyProcess) stop() {
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.cmd.Wait()
}
