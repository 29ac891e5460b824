package integration

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// backendUsers lists the backend accounts whose names start with prefix.
func backendUsers(t *testing.T, prefix string) []string {
	rows, err := root.Query("SELECT User FROM mysql.user WHERE User LIKE ?", prefix+"%")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		rows.Scan(&u)
		out = append(out, u)
	}
	return out
}

func waitNoBackendUsers(t *testing.T, prefix string, within time.Duration) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if len(backendUsers(t, prefix)) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("backend users %v still exist after %v", backendUsers(t, prefix), within)
}

// TestEphemeralUsers: the backend shows a user named after the identity
// while connected, with the role's grants only, and it is gone after.
func TestEphemeralUsers(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	token := h.mint("Tara.Lee@example.com", []string{"temp"}, nil)
	db := h.open("tara.lee@example.com/temp", token)
	db.SetMaxOpenConns(1)
	who := queryString(t, db, "SELECT CURRENT_USER()")
	if !strings.HasPrefix(who, "tara_lee_example_com_") {
		t.Fatalf("CURRENT_USER() = %q, want a session user named after the identity", who)
	}
	if users := backendUsers(t, "tara_lee_example_com_"); len(users) != 1 {
		t.Fatalf("backend users while connected: %v", users)
	}
	var pl int
	if err := root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER LIKE 'tara_lee_example_com_%'").Scan(&pl); err != nil || pl != 1 {
		t.Fatalf("the backend's process list shows %d sessions of the person (%v)", pl, err)
	}
	if got := queryString(t, db, "SELECT COUNT(*) FROM "+testDB+".items"); got == "" {
		t.Fatal("the granted SELECT does not work")
	}
	if _, err := db.Exec("INSERT INTO " + testDB + ".items (name) VALUES ('no')"); err == nil {
		t.Fatal("the session user could write: it has more than its grants")
	}
	db.Close()
	waitNoBackendUsers(t, "tara_lee_example_com_", 3*time.Second)
}

// TestEphemeralSweeperAfterCrash: a proxy killed with SIGKILL leaves its
// session user; the next start of that node drops it.
func TestEphemeralSweeperAfterCrash(t *testing.T) {
	h := startHarness(t, harnessOpts{}) // for its config, passwords and dev key
	dir := t.TempDir()
	cfg := strings.NewReplacer(
		h.http[len("http://"):], freeAddr(t),
		`listen: {mysql: "127.0.0.1:0"`, `listen: {mysql: "`+freeAddr(t)+`"`,
	).Replace(readFile(t, filepath.Join(h.dir, "portcullis.yaml")))
	cfg = strings.Replace(cfg, "log: {level: debug}", "log: {level: info}\nnode: crash-test-node", 1)
	for _, f := range []string{"dev.pem", "kek", readerUser + ".pw", writerUser + ".pw", adminUser + ".pw"} {
		copyFile(t, filepath.Join(h.dir, f), filepath.Join(dir, f))
	}
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	secretsMu.Lock()
	logFiles = append(logFiles, filepath.Join(dir, "audit.log"))
	secretsMu.Unlock()

	start := func() (*exec.Cmd, string) {
		cmd := exec.Command(portcullisBin(t), "serve", "-c", cfgPath)
		// If the test binary dies (a timeout panic skips deferred
		// cleanup), the server must not outlive it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stderr)
		var lines strings.Builder
		for sc.Scan() {
			lines.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "portcullis listening") {
				go func() {
					for sc.Scan() {
					}
				}()
				return cmd, lines.String()
			}
		}
		t.Fatalf("portcullis did not start:\n%s", lines.String())
		return nil, ""
	}
	proc, _ := start()
	addr := between(cfg, `listen: {mysql: "`, `"`)
	token := h.mint("uma@example.com", []string{"temp"}, nil)
	cc := h.clientConfig("uma@example.com/temp", token)
	cc.Addr = addr
	// That process keeps its own store, so its own CA: verify it with that.
	ca, errOut, code := run(t, "cert", "-c", cfgPath)
	pool := x509.NewCertPool()
	if code != 0 || !pool.AppendCertsFromPEM([]byte(ca)) {
		t.Fatalf("portcullis cert: exit %d\n%s", code, errOut)
	}
	cc.TLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	db := openConfig(t, cc)
	if who := queryString(t, db, "SELECT CURRENT_USER()"); !strings.HasPrefix(who, "uma_example_com_") {
		t.Fatalf("CURRENT_USER() = %q", who)
	}
	proc.Process.Signal(syscall.SIGKILL)
	proc.Wait()
	if len(backendUsers(t, "uma_example_com_")) != 1 {
		t.Fatal("expected the killed proxy to leave its session user behind")
	}
	proc, out := start()
	defer func() { proc.Process.Signal(syscall.SIGTERM); proc.Wait() }()
	waitNoBackendUsers(t, "uma_example_com_", 3*time.Second)
	if !strings.Contains(out, "dropped session users left by an earlier run") {
		t.Logf("start log:\n%s", out)
	}
}

func readFile(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func copyFile(t *testing.T, from, to string) {
	if err := os.WriteFile(to, []byte(readFile(t, from)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func between(s, start, end string) string {
	_, rest, _ := strings.Cut(s, start)
	v, _, _ := strings.Cut(rest, end)
	return v
}

// TestEphemeralDropEndsDirectConnections: DROP USER leaves a user's live
// connections open; when a session ends, its session user's other
// connections (here one a DBA opened directly after setting a password)
// are killed with it.
func TestEphemeralDropEndsDirectConnections(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	db := h.open("uma@example.com/temp", h.mint("uma@example.com", []string{"temp"}, nil))
	db.SetMaxOpenConns(1)
	who := queryString(t, db, "SELECT CURRENT_USER()")
	user := strings.TrimSuffix(who, "@%")
	pw := randomHex(12)
	remember(pw)
	if _, err := root.Exec(fmt.Sprintf("ALTER USER '%s'@'%%' IDENTIFIED BY '%s'", user, pw)); err != nil {
		t.Fatal(err)
	}
	direct := mysql.NewConfig()
	direct.User, direct.Passwd, direct.Net, direct.Addr = user, pw, "tcp", backendAddr
	ddb := openConfig(t, direct)
	ddb.SetMaxOpenConns(1)
	done := make(chan error, 1)
	go func() {
		_, err := ddb.Exec("SELECT SLEEP(30)")
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	db.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the direct connection's query finished normally")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a connection of the dropped session user is still running 5s after the session ended")
	}
	waitNoBackendUsers(t, user, 3*time.Second)
}
