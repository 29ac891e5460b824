package integration

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mariadbCLI runs the real mariadb client through the proxy. The token
// goes in a 0600 defaults file, as the README advises, never in argv.
func (h *harness) mariadbCLI(t *testing.T, user, token string, args ...string) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatal("the mariadb client is missing: `make test` installs it (apt-get install mariadb-client)")
	}
	cnf := filepath.Join(t.TempDir(), "client.cnf")
	if err := os.WriteFile(cnf, []byte(fmt.Sprintf("[client]\npassword=%s\n", token)), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(h.addr)
	base := []string{"--defaults-extra-file=" + cnf, "--protocol=tcp", "-h", host, "-P", port, "-u", user, "--batch", "--skip-column-names"}
	return exec.Command(path, append(base, args...)...)
}

func TestMariaDBCLI(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	token := h.mint("lea@example.com", []string{"reader", "writer"}, nil)
	tests := []struct {
		name string
		user string
		args []string
		want string
	}{
		{"--ssl, caching_sha2_password full auth", "lea@example.com", []string{"--ssl"}, readerUser + "@%"},
		{"--ssl, client starts with mysql_clear_password", "lea@example.com", []string{"--ssl", "--default-auth=mysql_clear_password"}, readerUser + "@%"},
		{"--ssl, client starts with mysql_native_password (switched to cleartext)", "lea@example.com", []string{"--ssl", "--default-auth=mysql_native_password"}, readerUser + "@%"},
		{"identity/role and a default database", "lea@example.com/writer", []string{"--ssl", testDB}, writerUser + "@%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := h.mariadbCLI(t, tt.user, token, append(tt.args, "-e", "SELECT CURRENT_USER()")...).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != tt.want {
				t.Fatalf("mariadb %v: %v\n%s", tt.args, err, out)
			}
		})
	}
	t.Run("without --ssl: refused with a hint", func(t *testing.T) {
		out, err := h.mariadbCLI(t, "lea@example.com", token, "--skip-ssl", "-e", "SELECT 1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "1045") || !strings.Contains(string(out), "--ssl") {
			t.Fatalf("got %v\n%s", err, out)
		}
	})
	t.Run("Ctrl-C kills the running query", func(t *testing.T) {
		cmd := h.mariadbCLI(t, "lea@example.com", token, "--ssl", "-e", "SELECT SLEEP(20)")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitSession(t, h, "lea@example.com")
		time.Sleep(300 * time.Millisecond) // let the query reach the backend
		start := time.Now()
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("mariadb still running 5s after Ctrl-C\n%s", out.String())
		}
		if !strings.Contains(out.String(), "Query execution was interrupted") {
			t.Fatalf("the query was not killed (%v):\n%s", time.Since(start), out.String())
		}
	})
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// portcullisBin builds the real binary once per test run.
func portcullisBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "portcullis-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "portcullis")
		// The build information `make build` stamps (Makefile: ldflags).
		commit, _ := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
		ldflags := fmt.Sprintf("-X main.version=test -X main.commit=%s -X main.date=%s",
			strings.TrimSpace(string(commit)), time.Now().UTC().Format("2006-01-02T15:04:05Z"))
		out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", binPath, "../cmd/portcullis").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(portcullisBin(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestBinary(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	cfg := filepath.Join(h.dir, "portcullis.yaml")

	t.Run("version and --version: commit, build date, Go version", func(t *testing.T) {
		want := regexp.MustCompile(`^portcullis \S+ \(commit [0-9a-f]{12}(-dirty)?, built \d{4}-\d\d-\d\dT[0-9:]+Z, go1\.\S+ \w+/\w+\)\n$`)
		for _, arg := range []string{"version", "--version"} {
			if out, errOut, code := run(t, arg); code != 0 || !want.MatchString(out) || !strings.Contains(out, runtime.Version()) {
				t.Fatalf("portcullis %s: %d %q %q", arg, code, out, errOut)
			}
		}
	})
	t.Run("shell completion and man pages", func(t *testing.T) {
		for shell, want := range map[string]string{"bash": "__start_portcullis", "zsh": "#compdef portcullis", "fish": "complete -c portcullis"} {
			if out, errOut, code := run(t, "completion", shell); code != 0 || !strings.Contains(out, want) {
				t.Fatalf("completion %s: %d %q", shell, code, errOut)
			}
		}
		dir := t.TempDir()
		if out, errOut, code := run(t, "man", "--dir", dir); code != 0 || !strings.Contains(out, "wrote the man pages") {
			t.Fatalf("man: %d %q %q", code, out, errOut)
		}
		for page, want := range map[string]string{"portcullis.1": `.TH "PORTCULLIS" "1"`, "portcullis-login.1": "--no-browser", "portcullis-users-list.1": "--json"} {
			data, err := os.ReadFile(filepath.Join(dir, page))
			if err != nil || !strings.Contains(string(data), want) {
				t.Fatalf("man page %s: %v, no %q", page, err, want)
			}
		}
	})
	t.Run("make build stamps the same build information", func(t *testing.T) {
		mk, err := os.ReadFile("../Makefile")
		if err != nil || !regexp.MustCompile(`-X main\.version=\S+ -X main\.commit=\S+ -X main\.date=\S+`).Match(mk) {
			t.Fatalf("the Makefile's build does not set main.version, main.commit and main.date: %v", err)
		}
	})
	t.Run("serve without a config: a hint about -c and the examples", func(t *testing.T) {
		_, errOut, code := run(t, "serve", "-c", filepath.Join(t.TempDir(), "portcullis.yaml"))
		if code != 2 || !strings.Contains(errOut, "name one with -c FILE") || !strings.Contains(errOut, "examples/portcullis.yaml") {
			t.Fatalf("%d %q", code, errOut)
		}
	})
	t.Run("serve --check accepts a valid config", func(t *testing.T) {
		if out, errOut, code := run(t, "serve", "--check", "-c", cfg); code != 0 || !strings.Contains(out, "configuration OK") {
			t.Fatalf("%d %q %q", code, out, errOut)
		}
	})
	t.Run("serve --check names every problem and exits 2", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		os.WriteFile(bad, []byte("listen: {mysql: nope}\nroles:\n  dba: {backend_user: \"\", backend_password: \"${env:PORTCULLIS_TEST_UNSET}\"}\nbogus: 1\n"), 0o600)
		_, errOut, code := run(t, "serve", "--check", "-c", bad)
		for _, want := range []string{"listen.mysql", "roles.dba.backend_user", "PORTCULLIS_TEST_UNSET is not set", "bogus"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
		if code != 2 {
			t.Fatalf("exit code %d, want 2", code)
		}
	})
	t.Run("token mint signs a token the proxy accepts", func(t *testing.T) {
		out, errOut, code := run(t, "token", "mint", "-c", cfg, "--email", "mo@example.com", "--roles", "reader", "--ttl", "5m")
		token := strings.TrimSpace(out)
		remember(token)
		if code != 0 || strings.Count(token, ".") != 2 {
			t.Fatalf("mint: %d %q %q", code, out, errOut)
		}
		db := h.open("mo@example.com", token)
		if got := queryString(t, db, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
			t.Fatalf("CURRENT_USER() = %q", got)
		}
	})
	t.Run("token mint refuses without the dev issuer", func(t *testing.T) {
		prod := filepath.Join(t.TempDir(), "prod.yaml")
		os.WriteFile(prod, []byte("issuers:\n  - {name: corp, issuer: \"https://idp.test/\", audiences: [portcullis], jwks_url: \"https://idp.test/jwks\"}\nroles:\n  r: {backend_user: r}\n"), 0o600)
		_, errOut, code := run(t, "token", "mint", "-c", prod, "--email", "x@example.com")
		if code != 2 || !strings.Contains(errOut, "dev_issuer.enabled") {
			t.Fatalf("%d %q", code, errOut)
		}
	})
	t.Run("keys init keeps an existing key and writes a 0600 one", func(t *testing.T) {
		dir := t.TempDir()
		c := filepath.Join(dir, "p.yaml")
		os.WriteFile(c, []byte("dev_issuer: {enabled: true}\nroles:\n  r: {backend_user: r}\n"), 0o600)
		out, errOut, code := run(t, "keys", "init", "-c", c)
		if code != 0 || !strings.Contains(out, `"keys"`) || !strings.Contains(errOut, "created") {
			t.Fatalf("%d %q %q", code, out, errOut)
		}
		info, err := os.Stat(filepath.Join(dir, "portcullis-dev-key.pem"))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("key file: %v %v", info, err)
		}
		if _, errOut, _ := run(t, "keys", "init", "-c", c); !strings.Contains(errOut, "kept") {
			t.Fatalf("second init: %q", errOut)
		}
	})
}
