package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/store"
)

// deactivate marks the user inactive and appends the event, as the SCIM
// server does on PATCH active:false.
func deactivate(t *testing.T, st store.Store, userName string) {
	t.Helper()
	ctx := context.Background()
	u, err := st.GetUserByName(ctx, userName)
	if err != nil {
		t.Fatal(err)
	}
	u.Active = false
	if _, err := st.UpdateUser(ctx, u, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvent(ctx, store.Event{Kind: store.EventUserDeactivated, Subject: userName}); err != nil {
		t.Fatal(err)
	}
}

// provision adds a directory user in a group that the team "readers" maps to reader.
func provision(t *testing.T, st store.Store, userName string) {
	t.Helper()
	ctx := context.Background()
	u, err := st.CreateUser(ctx, store.User{UserName: userName, Active: true, Source: store.SourceSCIM})
	if err != nil {
		t.Fatal(err)
	}
	g, err := st.GetGroupByName(ctx, "db-readers-dir")
	if errors.Is(err, store.ErrNotFound) {
		g, err = st.CreateGroup(ctx, store.Group{DisplayName: "db-readers-dir"})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddMembers(ctx, g.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutTeam(ctx, store.Team{Name: "readers", Groups: []string{"db-readers-dir"}, Roles: []string{"reader"}}); err != nil {
		t.Fatal(err)
	}
}

// assertOffboarded: a live SLEEP(30) session ends within a second of the
// deactivation, and the same still-valid token is refused afterwards.
func assertOffboarded(t *testing.T, connect *harness, act func(), userName, token string) {
	t.Helper()
	db := connect.open(userName, token)
	db.SetMaxOpenConns(1)
	if got := queryString(t, db, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
		t.Fatalf("before offboarding: CURRENT_USER() = %q", got)
	}
	done := make(chan time.Time, 1)
	var sleepErr error
	go func() {
		_, sleepErr = db.Exec("SELECT SLEEP(30)")
		done <- time.Now()
	}()
	waitSession(t, connect, userName)
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	act()
	select {
	case end := <-done:
		d := end.Sub(start)
		t.Logf("session of %s closed %v after the deactivation", userName, d.Round(time.Millisecond))
		if d > time.Second {
			t.Fatalf("session closed after %v, want within 1s", d)
		}
		var me *mysql.MySQLError
		if !errors.As(sleepErr, &me) || me.Number != 1927 || !strings.Contains(me.Message, "deactivated") {
			t.Fatalf("the client was not told why: %v", sleepErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session still open 5s after the deactivation")
	}
	fresh := connect.open(userName, token)
	var me *mysql.MySQLError
	if err := fresh.Ping(); !errors.As(err, &me) || me.Number != 1045 || !strings.Contains(me.Message, "deactivated") {
		t.Fatalf("new connection with the still-valid token: got %v, want 1045 deactivated", err)
	}
}

func TestOffboardingEndsLiveSessions(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	provision(t, h.svc.Store, "olga@example.com")
	token := h.mint("olga@example.com", nil, nil) // no roles in the token: the directory grants reader
	assertOffboarded(t, h, func() { deactivate(t, h.svc.Store, "olga@example.com") }, "olga@example.com", token)
}

// TestOffboardingAcrossNodes: two portcullis processes share a MariaDB
// store; the deactivation lands on node A, the session on node B dies.
func TestOffboardingAcrossNodes(t *testing.T) {
	dbName := "pcit_store_" + randomHex(4)
	if _, err := root.Exec("CREATE DATABASE " + dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec("DROP DATABASE IF EXISTS " + dbName) })
	dsn := fmt.Sprintf("root@tcp(%s)/%s", backendAddr, dbName)
	a := startHarness(t, harnessOpts{storeDSN: dsn})
	b := startHarness(t, harnessOpts{storeDSN: dsn})
	provision(t, a.svc.Store, "paul@example.com")
	token := b.mint("paul@example.com", nil, nil)
	assertOffboarded(t, b, func() { deactivate(t, a.svc.Store, "paul@example.com") }, "paul@example.com", token)
}

// TestRoleLossEndsOnlyThatRolesSessions: leaving the team's group ends the
// sessions using its role; a session of another role continues.
func TestRoleLossEndsOnlyThatRolesSessions(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	ctx := context.Background()
	st := h.svc.Store
	provision(t, st, "quinn@example.com")
	u, _ := st.GetUserByName(ctx, "quinn@example.com")
	w, err := st.CreateGroup(ctx, store.Group{DisplayName: "db-writers-dir", Members: []string{u.ID}})
	if err != nil {
		t.Fatal(err)
	}
	st.PutTeam(ctx, store.Team{Name: "writers", Groups: []string{"db-writers-dir"}, Roles: []string{"writer"}})
	token := h.mint("quinn@example.com", nil, nil)
	reader := h.open("quinn@example.com/reader", token)
	writer := h.open("quinn@example.com/writer", token)
	reader.SetMaxOpenConns(1)
	writer.SetMaxOpenConns(1)
	queryString(t, reader, "SELECT 1")
	queryString(t, writer, "SELECT 1")
	if err := st.RemoveMembers(ctx, w.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	st.AppendEvent(ctx, store.Event{Kind: store.EventUserRolesChanged, Subject: "quinn@example.com"})
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		roles := map[string]bool{}
		for _, s := range h.svc.Proxy.Sessions.List() {
			if s.Identity == "quinn@example.com" {
				roles[s.Role] = true
			}
		}
		if !roles["writer"] {
			if !roles["reader"] {
				t.Fatal("the reader session ended too")
			}
			if got := queryString(t, reader, "SELECT 'still here'"); got != "still here" {
				t.Fatal("reader session broken")
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("writer session still open 2s after losing the writer team")
}
