package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/directory/scim"
	"github.com/portcullisdb/portcullis/store"
)

// scimToken gives h's SCIM endpoint a bearer token for the test.
func scimToken(t *testing.T, h *harness) string {
	t.Helper()
	plain, hash := scim.NewToken()
	remember(plain)
	if _, err := h.svc.Store.PutSCIMToken(context.Background(), store.SCIMToken{Connection: "okta", Hash: hash}); err != nil {
		t.Fatal(err)
	}
	return plain
}

// scimDo sends one SCIM request to h and decodes the answer.
func scimDo(t *testing.T, h *harness, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, h.http+"/scim/v2"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// deactivate sends the PATCH Entra sends when a user is disabled at the IdP.
func deactivate(t *testing.T, h *harness, userName string) {
	t.Helper()
	token := scimToken(t, h)
	status, list := scimDo(t, h, token, "GET", "/Users?filter="+url.QueryEscape(`userName eq "`+userName+`"`), "")
	res, _ := list["Resources"].([]any)
	if status != 200 || len(res) != 1 {
		t.Fatalf("SCIM lookup of %s: %d %v", userName, status, list)
	}
	id := res[0].(map[string]any)["id"].(string)
	status, body := scimDo(t, h, token, "PATCH", "/Users/"+id,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
	if status != 200 {
		t.Fatalf("SCIM PATCH active:false: %d %v", status, body)
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
	assertOffboarded(t, h, func() { deactivate(t, h, "olga@example.com") }, "olga@example.com", token)
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
	assertOffboarded(t, b, func() { deactivate(t, a, "paul@example.com") }, "paul@example.com", token)
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

// TestSCIMProvisioningThroughThePortal: an Okta-style create, a group with
// a team, a connection through the proxy with the directory's role, and
// the bad-input cases the portal must refuse without change.
func TestSCIMProvisioningThroughThePortal(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	token := scimToken(t, h)
	status, user := scimDo(t, h, token, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"vera@example.com","name":{"givenName":"Vera","familyName":"Lind"},"emails":[{"primary":true,"value":"vera@example.com","type":"work"}],"active":true}`)
	if status != http.StatusCreated {
		t.Fatalf("create user: %d %v", status, user)
	}
	status, group := scimDo(t, h, token, "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"db-analysts","members":[{"value":"`+user["id"].(string)+`"}]}`)
	if status != http.StatusCreated {
		t.Fatalf("create group: %d %v", status, group)
	}
	if _, err := h.svc.Store.PutTeam(context.Background(), store.Team{Name: "analysts", Groups: []string{"db-analysts"}, Roles: []string{"reader"}}); err != nil {
		t.Fatal(err)
	}
	db := h.open("vera@example.com", h.mint("vera@example.com", []string{"writer"}, nil)) // the token's claim no longer counts
	if got := queryString(t, db, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
		t.Fatalf("CURRENT_USER() = %q, want the team's role account", got)
	}
	for _, tt := range []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"no bearer token", "GET", "/Users", "", "", 401},
		{"wrong bearer token", "GET", "/Users", "nope", "", 401},
		{"invalid JSON", "POST", "/Users", token, "{not json", 400},
		{"duplicate userName", "POST", "/Users", token, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"VERA@example.com"}`, 409},
		{"SQL in a filter is only a string", "GET", "/Users?filter=" + url.QueryEscape(`userName eq "x' OR 1=1 --"`), token, "", 200},
		{"10 MB body", "POST", "/Users", token, `{"userName":"` + strings.Repeat("a", 10<<20) + `"}`, 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := scimDo(t, h, tt.token, tt.method, tt.path, tt.body)
			if status != tt.status {
				t.Fatalf("got %d %v, want %d", status, body, tt.status)
			}
		})
	}
	if _, total, _ := h.svc.Store.ListUsers(context.Background(), store.ListOptions{Limit: 10}); total != 1 {
		t.Fatalf("%d users after the bad requests, want 1", total)
	}
}
