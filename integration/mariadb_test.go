package integration

import (
	"database/sql"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// privateMariaDB starts a MariaDB server of the test's own (its own datadir,
// port and socket, removed at the end) with extra server options, for the
// tests that need settings the shared server on backendAddr must never be
// changed to (a higher max_connections, TLS, ...). It is given the same
// role accounts, passwords and test database as the shared one, so a
// harness with backend set to the returned address works unchanged.
func privateMariaDB(t testing.TB, serverArgs ...string) (addr string, db *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	install := exec.Command("mariadb-install-db", append([]string{"--no-defaults", "--datadir=" + data,
		"--auth-root-authentication-method=normal", "--skip-test-db"}, asUser()...)...)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := freePort(t)
	args := append([]string{"--no-defaults", "--datadir=" + data,
		"--bind-address=127.0.0.1", "--port=" + strconv.Itoa(port), "--socket=" + filepath.Join(dir, "sock"),
		"--pid-file=" + filepath.Join(dir, "pid"), "--skip-log-bin", "--innodb-buffer-pool-size=32M",
		"--log-error=" + filepath.Join(dir, "error.log")}, asUser()...)
	args = append(args, serverArgs...)
	srv := exec.Command("/usr/sbin/mariadbd", args...)
	if err := srv.Start(); err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			srv.Process.Kill()
			<-done
		}
	})
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.MultiStatements = "root", "tcp", addr, true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for db.Ping() != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("private mariadbd on %s did not come up in 30s:\n%s", addr, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := provisionBackend(db); err != nil {
		t.Fatalf("provision private mariadbd: %v", err)
	}
	return addr, db
}

// asUser: mariadbd refuses to run as root unless told to.
func asUser() []string {
	if os.Geteuid() == 0 {
		return []string{"--user=root"}
	}
	return nil
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
