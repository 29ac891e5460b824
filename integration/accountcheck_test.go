package integration

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOverPrivilegedRoleAccount: a static role whose backend account can
// create users, grant, and see every session is reported in /readyz (the
// node stays ready) and by serve --check, naming the role, the account
// and each privilege, and no password; an account with only its narrow
// grants on the test database is reported only for accepting any host.
func TestOverPrivilegedRoleAccount(t *testing.T) {
	loose := backendAccount(t, "pcit_loose", "PROCESS, CREATE USER ON *.*")
	if _, err := root.Exec(fmt.Sprintf("GRANT SELECT ON %s.* TO '%s'@'%%' WITH GRANT OPTION", testDB, loose)); err != nil {
		t.Fatal(err)
	}
	// A managing account that cannot end its users' connections.
	manager := backendAccount(t, "pcit_lax", "CREATE USER ON *.*")
	h := startHarness(t, harnessOpts{roles: fmt.Sprintf(`  loose: {backend_user: %s, backend_password: "file:%s.pw"}
  lax: {plan: ephemeral, backend_user: %s, backend_password: "file:%s.pw", grants: ["SELECT ON %s.*"]}`, loose, loose, manager, manager, testDB)})
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(h.http + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/readyz %d: %s", resp.StatusCode, body)
		}
		if strings.Contains(body, "roles.loose") && strings.Contains(body, "roles.lax") {
			break
		}
	}
	for _, want := range []string{
		"roles.loose: backend account " + loose + " holds PROCESS on *.*",
		"roles.loose: backend account " + loose + " holds CREATE USER on *.*",
		"roles.loose: backend account " + loose + " holds GRANT OPTION",
		"roles.expiring, roles.reader: backend account " + readerUser + " accepts logins from any host",
		"roles.lax: managing account " + manager + " lacks PROCESS and CONNECTION ADMIN",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "roles.temp: managing account") {
		t.Errorf("the ephemeral role's managing account, which has PROCESS and CONNECTION ADMIN, is reported:\n%s", body)
	}
	if strings.Contains(body, "backend account "+readerUser+" holds") {
		t.Errorf("the narrow reader account is reported as over-privileged:\n%s", body)
	}
	for u, pw := range passwords {
		if strings.Contains(body, pw) {
			t.Fatalf("/readyz shows the password of %s", u)
		}
	}

	out, errOut, code := run(t, "serve", "--check", "--config", filepath.Join(h.dir, "portcullis.yaml"))
	if code != 0 {
		t.Fatalf("serve --check exit %d: %s %s", code, out, errOut)
	}
	if !strings.Contains(out, "configuration OK") || !strings.Contains(out, "warning: roles.loose: backend account "+loose+" holds CREATE USER on *.*") {
		t.Errorf("serve --check output lacks the warning:\n%s", out)
	}
}
