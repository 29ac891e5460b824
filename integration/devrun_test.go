package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// devCheckout is a copy of what `make run` needs (the script, the dev
// config, the binary) at its own path, as a second clone would be.
func devCheckout(t *testing.T) (dir, id string) {
	t.Helper()
	dir = t.TempDir()
	for _, f := range []string{"scripts/dev-run.sh", "examples/dev/portcullis.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(portcullisBin(t), filepath.Join(dir, "bin", "portcullis")); err != nil {
		t.Fatal(err)
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(resolved + "\n"))
	t.Cleanup(func() { exec.Command(filepath.Join(dir, "scripts/dev-run.sh"), "--drop").Run() })
	return dir, hex.EncodeToString(sum[:])[:8]
}

func devRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "scripts/dev-run.sh"), args...)
	cmd.Env = append(os.Environ(), "PORTCULLIS_DEV_NO_SERVE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dev-run.sh %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestDevRun: `make run` names its MariaDB objects per checkout, keeps
// the passwords it made and the config once written, and `make run-reset`
// starts fresh.
func TestDevRun(t *testing.T) {
	a, idA := devCheckout(t)
	b, idB := devCheckout(t)
	devRun(t, a)
	devRun(t, b)
	pw := func(dir, user string) string {
		data, err := os.ReadFile(filepath.Join(dir, ".run", "secrets", user))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	readerA := "pc_reader_" + idA
	t.Run("objects carry the checkout's suffix; the config names them", func(t *testing.T) {
		for _, name := range []string{readerA, "pc_writer_" + idA, "pc_reader_" + idB} {
			var n int
			if err := root.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE User = ?", name).Scan(&n); err != nil || n != 1 {
				t.Fatalf("backend account %s: %d %v", name, n, err)
			}
		}
		var db string
		if err := root.QueryRow("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", "portcullis_demo_"+idA).Scan(&db); err != nil {
			t.Fatalf("database portcullis_demo_%s: %v", idA, err)
		}
		cfg, _ := os.ReadFile(filepath.Join(a, ".run", "portcullis.yaml"))
		if !strings.Contains(string(cfg), "backend_user: "+readerA+",") {
			t.Fatalf(".run/portcullis.yaml:\n%s", cfg)
		}
	})
	t.Run("a second run keeps the passwords and the edited config", func(t *testing.T) {
		before := pw(a, readerA)
		remember(before)
		cfgPath := filepath.Join(a, ".run", "portcullis.yaml")
		f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("log: {level: debug}\n") // an edit of the user's
		f.Close()
		out := devRun(t, a)
		cfg, _ := os.ReadFile(cfgPath)
		if pw(a, readerA) != before || !strings.Contains(string(cfg), "log: {level: debug}") || !strings.Contains(out, "keeping .run/portcullis.yaml") {
			t.Fatalf("second run lost the password or the edit:\n%s\n%s", out, cfg)
		}
		if pw(b, "pc_reader_"+idB) == before {
			t.Fatal("two checkouts share a password")
		}
	})
	t.Run("run-reset starts fresh", func(t *testing.T) {
		before := pw(a, readerA)
		out := devRun(t, a, "--reset")
		cfg, _ := os.ReadFile(filepath.Join(a, ".run", "portcullis.yaml"))
		if pw(a, readerA) == before || strings.Contains(string(cfg), "log: {level: debug}") || !strings.Contains(out, "dropped "+readerA) {
			t.Fatalf("reset kept state:\n%s\n%s", out, cfg)
		}
		remember(pw(a, readerA))
	})
}
