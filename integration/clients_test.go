package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// dial is one connection a client program makes through the proxy.
type dial struct {
	addr, user, password, db, query string
	tls                             string // "verify" (against ca, host name too), "skip" (encrypt, do not check) or "off"
	ca                              string // PEM file of the CA the client trusts, for "verify"
}

// realClient is one MySQL client as people run it: the real program or
// library, fed through its own options. run returns the query's first
// value, or an error whose text is what the client shows its user (for
// the programs: their stderr).
type realClient struct {
	name string
	run  func(t *testing.T, d dial) (string, error)
}

// missing fails the test: make test installs every client.
func missing(t *testing.T, what string) {
	t.Helper()
	t.Fatalf("%s is missing: `make test` installs it (scripts/ensure-clients.sh)", what)
}

// clientsDir is the test programs' folder, integration/clients.
func clientsDir(t *testing.T) string {
	dir, err := filepath.Abs("clients")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// runProgram runs a client program with the dial's settings in its
// environment (the token never goes on argv).
func runProgram(t *testing.T, d dial, dir string, name string, args ...string) (string, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(d.addr)
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PC_HOST="+host, "PC_PORT="+port, "PC_USER="+d.user, "PC_PASSWORD="+d.password,
		"PC_DB="+d.db, "PC_QUERY="+d.query, "PC_TLS="+d.tls, "PC_CA="+d.ca)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s%s", filepath.Base(name), err, errOut.String(), out.String())
	}
	return strings.TrimSpace(out.String()), nil
}

var mariadbClient = realClient{"mariadb CLI", func(t *testing.T, d dial) (string, error) {
	var args []string
	switch d.tls {
	case "verify":
		args = append(args, "--ssl-ca="+d.ca, "--ssl-verify-server-cert")
	case "skip":
		args = append(args, "--ssl")
	default:
		args = append(args, "--skip-ssl")
	}
	args = append(args, "-e", d.query)
	if d.db != "" {
		args = append(args, d.db)
	}
	return runMariaDB(t, d.addr, d.user, d.password, args...)
}}

// runMariaDB runs the mariadb CLI against addr; the password goes in a
// 0600 defaults file, as the README advises, never on argv.
func runMariaDB(t *testing.T, addr, user, password string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("mariadb")
	if err != nil {
		missing(t, "the mariadb client (Debian mariadb-client)")
	}
	cnf := filepath.Join(t.TempDir(), "client.cnf")
	if err := os.WriteFile(cnf, []byte(fmt.Sprintf("[client]\npassword=%s\n", password)), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	base := []string{"--defaults-extra-file=" + cnf, "--protocol=tcp", "-h", host, "-P", port, "-u", user, "--batch", "--skip-column-names", "--connect-timeout=10"}
	out, err := exec.Command(path, append(base, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mariadb: %w: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// goDriver is go-sql-driver/mysql in this process, with or without its
// allowCleartextPasswords flag (without it the token goes through
// caching_sha2_password's full authentication over TLS).
func goDriver(cleartext bool) realClient {
	name := "go-sql-driver"
	if cleartext {
		name += " allowCleartextPasswords"
	}
	return realClient{name, func(t *testing.T, d dial) (string, error) {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = d.user, d.password, "tcp", d.addr, d.db
		cfg.AllowCleartextPasswords = cleartext
		cfg.Timeout = 10 * time.Second
		switch d.tls {
		case "verify":
			pool := x509.NewCertPool()
			pem, err := os.ReadFile(d.ca)
			if err != nil || !pool.AppendCertsFromPEM(pem) {
				t.Fatalf("CA file %s: %v", d.ca, err)
			}
			host, _, _ := net.SplitHostPort(d.addr)
			cfg.TLS = &tls.Config{RootCAs: pool, ServerName: host}
		case "skip":
			cfg.TLS = &tls.Config{InsecureSkipVerify: true}
		}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return "", err
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		var s string
		if err := db.QueryRow(d.query).Scan(&s); err != nil {
			var me *mysql.MySQLError
			if errors.As(err, &me) {
				return "", fmt.Errorf("ERROR %d: %s", me.Number, me.Message)
			}
			return "", err
		}
		return s, nil
	}}
}

func python(driver, module, pkg string) realClient {
	return realClient{driver, func(t *testing.T, d dial) (string, error) {
		if err := exec.Command("/usr/bin/python3", "-c", "import "+module).Run(); err != nil {
			missing(t, driver+" (Debian "+pkg+", for /usr/bin/python3)")
		}
		return runProgram(t, d, clientsDir(t), "/usr/bin/python3", "python/client.py", module)
	}}
}

var (
	pymysqlClient     = python("PyMySQL", "pymysql", "python3-pymysql")
	mysqlclientClient = python("mysqlclient", "MySQLdb", "python3-mysqldb")
)

var nodeClient = realClient{"Node mysql2", func(t *testing.T, d dial) (string, error) {
	dir := filepath.Join(clientsDir(t), "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "mysql2")); err != nil {
		missing(t, "Node's mysql2 (npm ci in integration/clients/node)")
	}
	return runProgram(t, d, dir, "node", "client.js")
}}

var (
	javaOnce  sync.Once
	javaClass string // the compiled Client's folder
	javaErr   error
)

const connectorJ = "/usr/share/java/mariadb-java-client.jar"

var connectorJClient = realClient{"MariaDB Connector/J", func(t *testing.T, d dial) (string, error) {
	if _, err := os.Stat(connectorJ); err != nil {
		missing(t, "MariaDB Connector/J (Debian libmariadb-java)")
	}
	if _, err := exec.LookPath("javac"); err != nil {
		missing(t, "javac (Debian default-jdk-headless)")
	}
	javaOnce.Do(func() {
		dir, err := os.MkdirTemp("", "portcullis-java")
		if err != nil {
			javaErr = err
			return
		}
		javaClass = dir
		src := filepath.Join(clientsDir(t), "java", "Client.java")
		if out, err := exec.Command("javac", "-cp", connectorJ, "-d", dir, src).CombinedOutput(); err != nil {
			javaErr = fmt.Errorf("javac: %v\n%s", err, out)
		}
	})
	if javaErr != nil {
		t.Fatal(javaErr)
	}
	return runProgram(t, d, javaClass, "java", "-cp", javaClass+":"+connectorJ, "Client")
}}

var sysbenchClient = realClient{"sysbench", func(t *testing.T, d dial) (string, error) {
	path, err := exec.LookPath("sysbench")
	if err != nil {
		missing(t, "sysbench (Debian sysbench)")
	}
	// sysbench --mysql-ssl=on reads these three from its working directory:
	// the CA, and a client certificate and key it offers if asked (the
	// proxy does not ask, but libmariadb must load a matching pair).
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(d.addr)
	args := []string{"--db-driver=mysql", "--mysql-host=" + host, "--mysql-port=" + port,
		"--mysql-user=" + d.user, "--mysql-password=" + d.password, "--mysql-db=" + d.db}
	if d.tls != "off" {
		ca, err := os.ReadFile(d.ca)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "cacert.pem"), ca)
		certPEM, keyPEM := throwawayClientCert(t)
		writeFile(t, filepath.Join(dir, "client-cert.pem"), certPEM)
		writeFile(t, filepath.Join(dir, "client-key.pem"), keyPEM)
		args = append(args, "--mysql-ssl=on")
	}
	args = append(args, filepath.Join(clientsDir(t), "sysbench", "client.lua"))
	out, err := runProgram(t, d, dir, path, args...)
	if err != nil {
		return "", err
	}
	lines := strings.Split(out, "\n") // sysbench prints its banner first
	return strings.TrimSpace(lines[len(lines)-1]), nil
}}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// throwawayClientCert is a self-signed certificate and key, as sysbench
// wants a client pair to load even where no server asks for it.
func throwawayClientCert(t *testing.T) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sysbench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// matrixClients are the clients the README lists, each run as people run it.
var matrixClients = []realClient{
	mariadbClient, goDriver(false), goDriver(true), pymysqlClient, mysqlclientClient, nodeClient, connectorJClient, sysbenchClient,
}

// TestClientMatrix: every client connects with a token over verified TLS
// (the proxy's certificate against its CA, and the host name where the
// client checks it) and lands on the role's backend account; with another
// CA it refuses to connect, so it does verify; a role the
// identity lacks is refused with the proxy's own code and message, which
// the client shows.
func TestClientMatrix(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	for _, c := range matrixClients {
		t.Run(c.name, func(t *testing.T) {
			d := dial{addr: h.addr, user: "max@example.com", password: h.mint("max@example.com", []string{"reader"}, nil),
				db: testDB, query: "SELECT CURRENT_USER()", tls: "verify", ca: h.ca}
			if got, err := c.run(t, d); err != nil || got != readerUser+"@%" {
				t.Fatalf("%s: %v, CURRENT_USER() %q, want %s@%%", c.name, err, got, readerUser)
			}
			wrongCA := d
			wrongCA.ca = filepath.Join(t.TempDir(), "other-ca.pem")
			other, _ := throwawayClientCert(t)
			writeFile(t, wrongCA.ca, other)
			if got, err := c.run(t, wrongCA); err == nil {
				t.Fatalf("%s connected with an unrelated CA (%q): it does not verify the proxy", c.name, got)
			}
			d.user = "max@example.com/writer"
			got, err := c.run(t, d)
			readmeRow(t, `1045 ... no role "dba" for alice@example.com (holds: analyst)`,
				`"dba"`, `"writer"`, "alice@example.com", "max@example.com", "analyst", "reader").check(t, c, got, err)
		})
	}
}
