package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const adminToken = "integration-admin-token-0123456789"

// admin runs the real binary's admin commands against h.
func admin(t *testing.T, h *harness, token string, args ...string) (string, string, error) {
	cmd := exec.Command(portcullisBin(t), args...)
	cmd.Env = append(os.Environ(), "PORTCULLIS_SERVER="+h.http, "PORTCULLIS_ADMIN_TOKEN="+token)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func TestAdminCLI(t *testing.T) {
	remember(adminToken)
	t.Setenv("PORTCULLIS_TEST_ADMIN_TOKEN", adminToken)
	h := startHarness(t, harnessOpts{topYAML: `admin: {token: "${env:PORTCULLIS_TEST_ADMIN_TOKEN}"}`})
	st := h.svc.Store
	provision(t, st, "rita@example.com")

	t.Run("wrong admin token", func(t *testing.T) {
		_, errOut, err := admin(t, h, "wrong", "users", "list")
		if err == nil || !strings.Contains(errOut, "wrong admin token") {
			t.Fatalf("%v %q", err, errOut)
		}
	})
	t.Run("users list", func(t *testing.T) {
		out, errOut, err := admin(t, h, adminToken, "users", "list")
		if err != nil || !strings.Contains(out, "rita@example.com") {
			t.Fatalf("%v %q %q", err, out, errOut)
		}
	})
	t.Run("every list command speaks JSON with stable field names", func(t *testing.T) {
		for _, tt := range []struct {
			args   []string
			fields []string // of each record
		}{
			{[]string{"users", "list", "--json"}, []string{"user_name", "active", "role", "source"}},
			{[]string{"users", "list", "-o", "json"}, []string{"user_name", "active", "role", "source"}},
			{[]string{"sessions", "list", "--json"}, nil}, // none open now: []
			{[]string{"teams", "list", "--json"}, nil},
			{[]string{"connections", "list", "-o", "json"}, nil},
		} {
			out, errOut, err := admin(t, h, adminToken, tt.args...)
			var records []map[string]any
			if err != nil || json.Unmarshal([]byte(out), &records) != nil {
				t.Fatalf("%v: %v %q %s", tt.args, err, out, errOut)
			}
			for _, f := range tt.fields {
				if len(records) == 0 || !slices.ContainsFunc(records, func(r map[string]any) bool { _, ok := r[f]; return ok }) {
					t.Fatalf("%v: no field %q in %s", tt.args, f, out)
				}
			}
		}
		if _, errOut, err := admin(t, h, adminToken, "users", "list", "-o", "yaml"); err == nil || !strings.Contains(errOut, "use table or json") {
			t.Fatalf("-o yaml: %v %s", err, errOut)
		}
	})
	t.Run("an unknown session id: non-zero exit and a message", func(t *testing.T) {
		_, errOut, err := admin(t, h, adminToken, "sessions", "kill", "999999")
		if err == nil || !strings.Contains(errOut, "no session 999999") {
			t.Fatalf("sessions kill 999999: %v %q", err, errOut)
		}
	})
	t.Run("teams set, list, and a role that does not exist", func(t *testing.T) {
		if _, errOut, err := admin(t, h, adminToken, "teams", "set", "writers", "--groups", "db-readers-dir", "--roles", "writer"); err != nil {
			t.Fatalf("%v %s", err, errOut)
		}
		out, _, _ := admin(t, h, adminToken, "teams", "list")
		if !strings.Contains(out, "writers") || !strings.Contains(out, "db-readers-dir") {
			t.Fatalf("teams list: %q", out)
		}
		_, errOut, err := admin(t, h, adminToken, "teams", "set", "x", "--groups", "g", "--roles", "superuser")
		if err == nil || !strings.Contains(errOut, `role "superuser" is not configured`) {
			t.Fatalf("%v %q", err, errOut)
		}
	})
	t.Run("sessions list and kill", func(t *testing.T) {
		db := h.open("rita@example.com/writer", h.mint("rita@example.com", nil, nil))
		db.SetMaxOpenConns(1)
		done := make(chan error, 1)
		go func() { _, err := db.Exec("SELECT SLEEP(30)"); done <- err }()
		id := waitSession(t, h, "rita@example.com")
		out, _, err := admin(t, h, adminToken, "sessions", "list")
		if err != nil || !strings.Contains(out, "rita@example.com") || !strings.Contains(out, "writer") {
			t.Fatalf("sessions list: %v %q", err, out)
		}
		if out, errOut, err := admin(t, h, adminToken, "sessions", "kill", strconv.FormatUint(uint64(id), 10)); err != nil || !strings.Contains(out, "ends within a second") {
			t.Fatalf("kill: %v %q %s", err, out, errOut)
		}
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "administrator") {
				t.Fatalf("the client was not told: %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("session still running 3s after sessions kill")
		}
	})
	t.Run("deleting the team ends the sessions that used its role", func(t *testing.T) {
		db := h.open("rita@example.com/writer", h.mint("rita@example.com", nil, nil))
		db.SetMaxOpenConns(1)
		queryString(t, db, "SELECT 1")
		if out, errOut, err := admin(t, h, adminToken, "teams", "delete", "writers"); err != nil || !strings.Contains(out, "team writers deleted") {
			t.Fatalf("teams delete: %v %q %s", err, out, errOut)
		}
		if _, errOut, err := admin(t, h, adminToken, "teams", "delete", "writers"); err == nil || !strings.Contains(errOut, `no team "writers"`) {
			t.Fatalf("teams delete of an unknown team: %v %s", err, errOut)
		}
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if len(h.svc.Proxy.Sessions.List()) == 0 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the writer session survived the team's deletion")
	})
	t.Run("reload re-reads the config file", func(t *testing.T) {
		out, errOut, err := admin(t, h, adminToken, "reload")
		if err != nil || !strings.Contains(out, "reloaded") {
			t.Fatalf("%v %q %q", err, out, errOut)
		}
	})
	t.Run("scim rotate-token stores only a hash", func(t *testing.T) {
		out, _, err := admin(t, h, adminToken, "scim", "rotate-token", "okta")
		token := strings.TrimSpace(out)
		remember(token)
		if err != nil || len(token) < 40 {
			t.Fatalf("%v %q", err, out)
		}
		if _, err := st.FindSCIMToken(context.Background(), []byte(token)); err == nil {
			t.Fatal("the plain token is stored")
		}
	})
}
