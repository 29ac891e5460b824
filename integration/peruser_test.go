package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/rbac"
	"github.com/portcullisdb/portcullis/store"
)

// startPerUser starts a harness with the role "personal" on plan per_user,
// managed by an account of its own, and returns the harness and a way to
// derive a person's backend credentials as every node does.
func startPerUser(t *testing.T, topYAML ...string) (*harness, func(identity string) (string, string)) {
	t.Helper()
	manager := backendAccount(t, "pcit_mgr", "CREATE USER, PROCESS, CONNECTION ADMIN ON *.*")
	if _, err := root.Exec(fmt.Sprintf("GRANT SELECT ON %s.* TO '%s'@'%%' WITH GRANT OPTION", testDB, manager)); err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, harnessOpts{topYAML: strings.Join(topYAML, "\n"), roles: fmt.Sprintf(`  personal: {plan: per_user, backend_user: %s, backend_password: "file:%s.pw", grants: ["SELECT ON %s.*"], pool: {max_idle: 2}, per_user: {drop_after: 1h}}`, manager, manager, testDB)})
	cfg, err := config.Load(filepath.Join(h.dir, "portcullis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := rbac.NewProvisioner(cfg, rbac.BackendLogin{Address: cfg.Backend.Address}, h.svc.Store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.UsePasswordKey([]byte(cfg.Issuer.KeyEncryptionKey.Value()))
	t.Cleanup(p.Close)
	creds := func(identity string) (string, string) {
		user, pw, err := p.PersonalCredentials(identity, rbac.Grant{Role: "personal"})
		if err != nil {
			t.Fatal(err)
		}
		remember(pw)
		t.Cleanup(func() { root.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user)) })
		return user, pw
	}
	return h, creds
}

// TestPerUserAccounts: on plan per_user each person logs in as their own
// account, created at first connect; MariaDB itself then keeps them
// apart: bob sees none of alice's threads in the process list and, even
// connected directly with his account's password, cannot kill them. A
// person's second session reuses their pooled connection.
func TestPerUserAccounts(t *testing.T) {
	h, creds := startPerUser(t)
	ctx := context.Background()
	aliceUser, _ := creds("alice@example.com")
	bobUser, bobPW := creds("bob@example.com")

	alice := h.open("alice@example.com/personal", h.mint("alice@example.com", []string{"personal"}, nil))
	conn, err := alice.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, conn, "SELECT CURRENT_USER()"); got != aliceUser+"@%" {
		t.Fatalf("alice's session runs as %q, want her own account %s", got, aliceUser)
	}
	thread := queryString(t, conn, "SELECT CONNECTION_ID()")
	done := make(chan error, 1)
	go func() {
		_, err := conn.ExecContext(ctx, "SELECT SLEEP(20)")
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)

	bob := h.open("bob@example.com/personal", h.mint("bob@example.com", []string{"personal"}, nil))
	if got := queryString(t, bob, "SELECT CURRENT_USER()"); got != bobUser+"@%" {
		t.Fatalf("bob's session runs as %q, want %s", got, bobUser)
	}
	if got := queryString(t, bob, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER <> ?", bobUser); got != "0" {
		t.Errorf("bob sees %s process list rows of other accounts", got)
	}
	direct := mysql.NewConfig()
	direct.User, direct.Passwd, direct.Net, direct.Addr = bobUser, bobPW, "tcp", backendAddr
	var me *mysql.MySQLError
	if _, err := openConfig(t, direct).Exec("KILL QUERY " + thread); !errors.As(err, &me) || me.Number != 1095 {
		t.Errorf("bob's direct KILL of alice's thread: got %v, want MariaDB's 1095", err)
	}
	select {
	case err := <-done:
		t.Fatalf("alice's query ended: %v", err)
	default:
	}
	if _, err := h.open("alice@example.com/personal", h.mint("alice@example.com", []string{"personal"}, nil)).Exec("KILL QUERY " + thread); err != nil {
		t.Fatalf("alice's KILL QUERY of her own thread: %v", err)
	}
	<-done
	conn.Close()

	// bob's second session gets his pooled connection back.
	bc, _ := bob.Conn(ctx)
	first := queryString(t, bc, "SELECT CONNECTION_ID()")
	bc.Close()
	bob.Close()
	time.Sleep(100 * time.Millisecond)
	again := h.open("bob@example.com/personal", h.mint("bob@example.com", []string{"personal"}, nil))
	if got := queryString(t, again, "SELECT CONNECTION_ID()"); got != first {
		t.Errorf("bob's second session got backend thread %s, not his pooled %s", got, first)
	}
}

// TestPerUserDeprovision: deactivating a person in the directory locks
// their account and ends its connections, including one opened directly
// against MariaDB with the account's password; the account cannot log in
// any more.
func TestPerUserDeprovision(t *testing.T) {
	h, creds := startPerUser(t)
	user, pw := creds("dora@example.com")
	if _, err := h.svc.Store.CreateUser(context.Background(), store.User{UserName: "dora@example.com", Active: true, Source: store.SourceSCIM, Role: "personal"}); err != nil {
		t.Fatal(err)
	}
	viaProxy := h.open("dora@example.com/personal", h.mint("dora@example.com", nil, nil))
	if got := queryString(t, viaProxy, "SELECT CURRENT_USER()"); got != user+"@%" {
		t.Fatalf("dora's session runs as %q, want %s", got, user)
	}
	direct := mysql.NewConfig()
	direct.User, direct.Passwd, direct.Net, direct.Addr = user, pw, "tcp", backendAddr
	db := openConfig(t, direct)
	db.SetMaxOpenConns(1)
	done := make(chan error, 1)
	go func() {
		_, err := db.Exec("SELECT SLEEP(30)")
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)

	deactivate(t, h, "dora@example.com")
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the direct connection's query finished normally")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the direct connection with the account's password is still running 5s after the deactivation")
	}
	var create string
	if err := root.QueryRow(fmt.Sprintf("SHOW CREATE USER '%s'@'%%'", user)).Scan(&create); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(create, "ACCOUNT LOCK") {
		t.Errorf("the account is not locked: %s", strings.Replace(create, pw, "***", 1))
	}
	fresh := mysql.NewConfig()
	fresh.User, fresh.Passwd, fresh.Net, fresh.Addr = user, pw, "tcp", backendAddr
	if err := openConfig(t, fresh).Ping(); err == nil {
		t.Error("the locked account still logs in with its password")
	}
}

// TestPerUserDropAfterRestart: a personal account locked longer ago than
// drop_after is dropped by the next start's sweep, on any node.
func TestPerUserDropAfterRestart(t *testing.T) {
	h, creds := startPerUser(t)
	user, _ := creds("eve@example.com")
	if _, err := h.svc.Store.CreateUser(context.Background(), store.User{UserName: "eve@example.com", Active: true, Source: store.SourceSCIM, Role: "personal"}); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, h.open("eve@example.com/personal", h.mint("eve@example.com", nil, nil)), "SELECT CURRENT_USER()"); got != user+"@%" {
		t.Fatalf("eve's session runs as %q", got)
	}
	deactivate(t, h, "eve@example.com")
	waitRecord := func(want bool) {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			list, _ := h.svc.Store.ListEphemeralUsers(context.Background())
			found := false
			for _, e := range list {
				found = found || e.BackendUser == user
			}
			if found == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("record of the locked account %s: present %v, want %v", user, found, want)
			}
		}
	}
	waitRecord(true)
	cfg, err := config.Load(filepath.Join(h.dir, "portcullis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Roles["personal"]
	r.PerUser.DropAfter = time.Millisecond // as if the hour had passed
	cfg.Roles["personal"] = r
	p := rbac.NewProvisioner(cfg, rbac.BackendLogin{Address: cfg.Backend.Address}, h.svc.Store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer p.Close()
	if _, err := p.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	var n int
	root.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE user = ?", user).Scan(&n)
	if n != 0 {
		t.Errorf("the locked account %s is still there after the sweep past drop_after", user)
	}
	waitRecord(false)
}

// TestPerUserRoleLoss: a person whose role is taken away (here by the
// admin API, through the directory) has that role's account locked and
// its connections ended, direct ones too.
func TestPerUserRoleLoss(t *testing.T) {
	remember(adminToken)
	t.Setenv("PORTCULLIS_TEST_ADMIN_TOKEN", adminToken)
	h, creds := startPerUser(t, `admin: {token: "${env:PORTCULLIS_TEST_ADMIN_TOKEN}"}`)
	user, pw := creds("finn@example.com")
	u, err := h.svc.Store.CreateUser(context.Background(), store.User{UserName: "finn@example.com", Active: true, Source: store.SourceSCIM, Role: "personal"})
	if err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, h.open("finn@example.com/personal", h.mint("finn@example.com", nil, nil)), "SELECT CURRENT_USER()"); got != user+"@%" {
		t.Fatalf("finn's session runs as %q", got)
	}
	direct := mysql.NewConfig()
	direct.User, direct.Passwd, direct.Net, direct.Addr = user, pw, "tcp", backendAddr
	db := openConfig(t, direct)
	db.SetMaxOpenConns(1)
	done := make(chan error, 1)
	go func() {
		_, err := db.Exec("SELECT SLEEP(30)")
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if status, body := adminPatch(t, h, u.ID, `{"role":"reader"}`); status != 200 {
		t.Fatalf("admin API role change: %d %v", status, body)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the direct connection's query finished normally")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a direct connection of the lost role's account still runs 5s after the change")
	}
	var create string
	if err := root.QueryRow(fmt.Sprintf("SHOW CREATE USER '%s'@'%%'", user)).Scan(&create); err != nil || !strings.Contains(create, "ACCOUNT LOCK") {
		t.Errorf("the account is not locked (%v)", err)
	}
}
