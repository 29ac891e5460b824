package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MySQLOptions say how to run the database client.
type MySQLOptions struct {
	Address string   // host:port of the proxy
	Role    string   // optional: connect as username/role
	Args    []string // passed through to the client
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer

	// CA is the PEM CA to verify the proxy's certificate and name with
	// (ProxyCA); nil: encrypt without checking.
	CA []byte
}

// RunMySQL runs the installed mariadb (or mysql) client connected to the
// proxy with e's token. The token goes in a 0600 option file in a 0700
// folder, read by the client at start and removed when it exits: never in
// argv, where `ps` would show it.
func RunMySQL(ctx context.Context, e Entry, o MySQLOptions) error {
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		if bin, err = exec.LookPath("mysql"); err != nil {
			return fmt.Errorf("no mariadb or mysql client on PATH: install one (Debian: apt-get install mariadb-client)")
		}
	}
	host, port, err := net.SplitHostPort(o.Address)
	if err != nil {
		return fmt.Errorf("proxy address %q: %w", o.Address, err)
	}
	user := e.Username
	if o.Role != "" {
		user += "/" + o.Role
	}
	dir, err := os.MkdirTemp("", "portcullis-mysql-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out, _ := exec.CommandContext(ctx, bin, "--version").Output()
	oracle := !strings.Contains(string(out), "MariaDB") // Oracle's mysql client has ssl-mode
	tls := "ssl"
	if oracle {
		tls = "ssl-mode=REQUIRED"
	}
	if o.CA != nil {
		ca := filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(ca, o.CA, 0o600); err != nil {
			return err
		}
		tls = "ssl-ca=" + optValue(ca) + "\nssl-verify-server-cert"
		if oracle {
			tls = "ssl-ca=" + optValue(ca) + "\nssl-mode=VERIFY_IDENTITY"
		}
	}
	cnf := filepath.Join(dir, "client.cnf")
	opts := fmt.Sprintf("[client]\nhost=%s\nport=%s\nprotocol=tcp\nuser=%s\npassword=%s\n%s\n", host, port, optValue(user), optValue(e.AccessToken), tls)
	if err := os.WriteFile(cnf, []byte(opts), 0o600); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--defaults-extra-file=" + cnf}, o.Args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	return cmd.Run()
}

// optValue quotes a value for a MySQL option file.
func optValue(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
