package integration

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// node is the real binary, `portcullis serve`, run on a copy of a
// harness's configuration with its own ports, store and audit log: for
// what only the process shows (signals, its fd limit, its start-up).
type node struct {
	t       *testing.T
	cmd     *exec.Cmd
	dir     string
	addr    string // the MySQL listener
	http    string // the portal's base URL
	started time.Time
	// listening is how long the process took to log "portcullis listening".
	listening time.Duration

	mu     sync.Mutex
	log    strings.Builder // stderr
	exited chan struct{}
	err    error // from Wait
	cas    *x509.CertPool
}

type nodeOpts struct {
	proxyYAML string            // lines added under proxy:, two spaces in
	topYAML   string            // added at the end
	replace   map[string]string // regexp -> replacement, applied to the harness's config
	nofile    int               // > 0: run under prlimit --nofile=N:N
}

// startNode starts the binary and waits for it to listen; it fails the
// test if the process ends first.
func startNode(t *testing.T, h *harness, opt nodeOpts) *node {
	t.Helper()
	n, err := launchNode(t, h, opt)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// launchNode is startNode that returns the log of a process that ended
// before listening as an error.
func launchNode(t *testing.T, h *harness, opt nodeOpts) (*node, error) {
	t.Helper()
	dir := t.TempDir()
	mysqlAddr, httpAddr := freeAddr(t), freeAddr(t)
	cfg := readFile(t, filepath.Join(h.dir, "portcullis.yaml"))
	cfg = strings.ReplaceAll(cfg, h.http[len("http://"):], httpAddr)
	cfg = strings.Replace(cfg, `listen: {mysql: "127.0.0.1:0"`, `listen: {mysql: "`+mysqlAddr+`"`, 1)
	cfg = strings.Replace(cfg, "log: {level: debug}", "log: {level: info}", 1)
	cfg = strings.Replace(cfg, "proxy:\n", "proxy:\n"+opt.proxyYAML+"\n", 1)
	for re, with := range opt.replace {
		cfg = regexp.MustCompile(re).ReplaceAllString(cfg, with)
	}
	cfg += "\n" + opt.topYAML + "\n"
	for _, f := range []string{"dev.pem", "kek", readerUser + ".pw", writerUser + ".pw", adminUser + ".pw"} {
		copyFile(t, filepath.Join(h.dir, f), filepath.Join(dir, f))
	}
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	secretsMu.Lock()
	logFiles = append(logFiles, filepath.Join(dir, "audit.log"), filepath.Join(dir, "stderr.log"))
	secretsMu.Unlock()

	args := []string{portcullisBin(t), "serve", "-c", cfgPath}
	if opt.nofile > 0 {
		args = append([]string{"prlimit", fmt.Sprintf("--nofile=%d:%d", opt.nofile, opt.nofile), "--"}, args...)
	}
	n := &node{t: t, dir: dir, addr: mysqlAddr, http: "http://" + httpAddr, exited: make(chan struct{})}
	n.cmd = exec.Command(args[0], args[1:]...)
	// If the test binary dies, the server must not outlive it.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.started = time.Now()
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logFile, _ := os.Create(filepath.Join(dir, "stderr.log"))
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stderr, logFile))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			n.mu.Lock()
			n.log.WriteString(sc.Text() + "\n")
			n.mu.Unlock()
			if strings.Contains(sc.Text(), "portcullis listening") {
				once.Do(func() { n.listening = time.Since(n.started); close(listening) })
			}
		}
		n.err = n.cmd.Wait()
		logFile.Close()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	})
	select {
	case <-listening:
		return n, nil
	case <-n.exited:
		return n, fmt.Errorf("portcullis ended before listening (%v):\n%s\nconfig:\n%s", n.err, n.logText(), readFile(t, cfgPath))
	case <-time.After(30 * time.Second):
		return n, fmt.Errorf("portcullis not listening after 30s:\n%s", n.logText())
	}
}

func (n *node) logText() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

// countLog counts the log lines that contain s.
func (n *node) countLog(s string) int {
	return strings.Count(n.logText(), s)
}

func (n *node) signal(sig os.Signal) {
	n.t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		n.t.Fatal(err)
	}
}

// alive reports whether the process is still running.
func (n *node) alive() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// waitExit waits up to d for the process to end; it reports whether it did.
func (n *node) waitExit(d time.Duration) bool {
	select {
	case <-n.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// clientConfig is the harness's driver config, pointed at this node and
// verifying it with the node's own CA (GET /v1/ca.pem): a node on a store
// of its own keeps a CA of its own.
func (n *node) clientConfig(h *harness, user, token string) *mysql.Config {
	cfg := h.clientConfig(user, token)
	cfg.Addr = n.addr
	if cfg.TLS != nil {
		cfg.TLS = &tls.Config{RootCAs: n.caPool(), ServerName: "127.0.0.1"}
	}
	return cfg
}

// caPool is the CA the node's portal hands out, fetched once.
func (n *node) caPool() *x509.CertPool {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cas == nil {
		status, body := n.get("/v1/ca.pem")
		pool := x509.NewCertPool()
		if status != http.StatusOK || !pool.AppendCertsFromPEM([]byte(body)) {
			n.t.Fatalf("GET /v1/ca.pem from the node: %d %q", status, body)
		}
		n.cas = pool
	}
	return n.cas
}

// get fetches path from the portal: status and body.
func (n *node) get(path string) (int, string) {
	n.t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(n.http + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric reads one sample of the portal's /metrics (0 when absent).
func (n *node) metric(name string) float64 {
	n.t.Helper()
	_, body := n.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// mariadb runs the real mariadb client against this node, the token in a
// 0600 defaults file.
func (n *node) mariadb(t *testing.T, user, token string, args ...string) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatal("the mariadb client is missing: `make test` installs it (apt-get install mariadb-client)")
	}
	cnf := filepath.Join(t.TempDir(), "client.cnf")
	if err := os.WriteFile(cnf, []byte(fmt.Sprintf("[client]\npassword=%s\n", token)), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(n.addr)
	base := []string{"--defaults-extra-file=" + cnf, "--protocol=tcp", "-h", host, "-P", port, "-u", user, "--batch", "--skip-column-names", "--ssl"}
	return exec.Command(path, append(base, args...)...)
}
