package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	scimpkg "github.com/portcullisdb/portcullis/directory/scim"
	"github.com/portcullisdb/portcullis/store"
)

// wantRefused connects as user with token and wants a 1045 whose message
// holds each of want.
func wantRefused(t *testing.T, h *harness, user, token string, want ...string) {
	t.Helper()
	var me *mysql.MySQLError
	err := h.open(user, token).Ping()
	if !errors.As(err, &me) || me.Number != 1045 {
		t.Fatalf("connect as %s: got %v, want 1045", user, err)
	}
	for _, w := range want {
		if !strings.Contains(me.Message, w) {
			t.Fatalf("connect as %s: refusal %q does not say %q", user, me.Message, w)
		}
	}
}

// scimID finds a user's SCIM id with the filter Okta and Entra send.
func scimID(t *testing.T, h *harness, token, userName string) string {
	t.Helper()
	status, list := scimDo(t, h, token, "GET", "/Users?filter="+url.QueryEscape(`userName eq "`+userName+`"`), "")
	res, _ := list["Resources"].([]any)
	if status != 200 || len(res) != 1 {
		t.Fatalf("SCIM lookup of %s: %d %v", userName, status, list)
	}
	return res[0].(map[string]any)["id"].(string)
}

// TestSCIMDeleteRefusesToken: DELETE /Users/{id} ends the live session,
// and a new connection with the same unexpired token is refused although
// the token's own roles claim would grant reader; the name stays refused
// until SCIM provisions it again, and tokens from before that stay
// refused after it.
func TestSCIMDeleteRefusesToken(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	const name = "dora@example.com"
	provision(t, h.svc.Store, name)
	token := h.mint(name, []string{"reader"}, nil) // as portcullis' own SSO tokens: roles in the token
	scim := scimToken(t, h)
	id := scimID(t, h, scim, name)

	db := h.open(name, token)
	db.SetMaxOpenConns(1)
	if got := queryString(t, db, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
		t.Fatalf("before the deletion: CURRENT_USER() = %q", got)
	}
	done := make(chan error, 1)
	go func() { _, err := db.Exec("SELECT SLEEP(30)"); done <- err }()
	waitSession(t, h, name)
	if status, body := scimDo(t, h, scim, "DELETE", "/Users/"+id, ""); status != 204 {
		t.Fatalf("SCIM DELETE: %d %v", status, body)
	}
	select {
	case err := <-done:
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1927 || !strings.Contains(me.Message, "deleted") {
			t.Fatalf("the live session ended with %v, want 1927 deleted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the live session survived the deletion by 5s")
	}
	wantRefused(t, h, name, token, name+" was deleted from the directory")

	// Provisioned again: the old token stays refused, a new one is not
	// refused for the deletion.
	status, body := scimDo(t, h, scim, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+name+`"}`)
	if status != 201 {
		t.Fatalf("SCIM POST again: %d %v", status, body)
	}
	wantRefused(t, h, name, token, "deleted from the directory and provisioned again")
	time.Sleep(1100 * time.Millisecond) // iat has whole seconds
	var me *mysql.MySQLError
	if err := h.open(name, h.mint(name, []string{"reader"}, nil)).Ping(); errors.As(err, &me) && strings.Contains(me.Message, "deleted") {
		t.Fatalf("a token issued after the re-provisioning: %v", err)
	}
}

// TestIssuerCannotSpeakForLocalAdmin: a token of the external issuer
// corp naming a local administrator is refused on the MySQL leg, with a
// reason that names both sources, though the directory would grant the
// account a role.
func TestIssuerCannotSpeakForLocalAdmin(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	ctx := context.Background()
	st := h.svc.Store
	const name = "root@corp.test"
	u, err := st.CreateUser(ctx, store.User{UserName: name, Active: true, Source: store.SourceLocal, Role: "administrator"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := st.CreateGroup(ctx, store.Group{DisplayName: "admins-readers", Members: []string{u.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutTeam(ctx, store.Team{Name: "admin-readers", Groups: []string{g.DisplayName}, Roles: []string{"reader"}}); err != nil {
		t.Fatal(err)
	}
	token := h.sign(corpClaims(name, "db-readers"))
	wantRefused(t, h, name, token, name+" belongs to the local accounts (an administrator)", "issuer corp does not speak for it")

	// A SCIM user recorded before sources were (no connection): no
	// external issuer speaks for it.
	provision(t, st, "ivan@corp.test")
	wantRefused(t, h, "ivan@corp.test", h.sign(corpClaims("ivan@corp.test")), "issuer corp does not speak for it")

	// The same issuer still speaks for a user of its own directory (the
	// SCIM connection named like it, its default).
	provision(t, st, "ike@corp.test")
	ike, err := st.GetUserByName(ctx, "ike@corp.test")
	if err != nil {
		t.Fatal(err)
	}
	ike.SourceName = "corp"
	if _, err := st.UpdateUser(ctx, ike, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.open("ike@corp.test", h.sign(corpClaims("ike@corp.test"))).Ping(); err != nil {
		t.Fatalf("corp token for a directory user: %v", err)
	}
}

// TestAdministratorChainRefused is the chain of issue 13 item 1, tried
// end to end: a SCIM client cannot make an administrator, and an
// administrator never gets in with an email code (the mailbox a SCIM
// client chose), only with an authenticator app.
func TestAdministratorChainRefused(t *testing.T) {
	remember(adminToken)
	t.Setenv("PORTCULLIS_TEST_ADMIN_TOKEN", adminToken)
	h := startHarness(t, harnessOpts{topYAML: `admin: {token: "${env:PORTCULLIS_TEST_ADMIN_TOKEN}"}
local: {enabled: true, email: {mailer: dev, file: mail.txt, code_ttl: 2m}}`})
	const adminName = "ada@example.com"
	pw := createLocal(t, h, adminName, "administrator") // before directory sync is on
	scim := scimToken(t, h)
	status, body := scimDo(t, h, scim, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:portcullis:2.0:User"],
		"userName":"mallory@example.com","emails":[{"value":"mallory@attacker.test","primary":true}],
		"urn:ietf:params:scim:schemas:extension:portcullis:2.0:User":{"role":"administrator"}}`)
	if status != 400 || body["scimType"] != "invalidValue" || !strings.Contains(fmt.Sprint(body["detail"]), "reader") {
		t.Fatalf("SCIM create with role administrator: %d %v, want 400 invalidValue naming the allowed roles", status, body)
	}
	if _, err := h.svc.Store.GetUserByName(context.Background(), "mallory@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the user was created: %v", err)
	}

	// An administrator with a mailbox: the login asks for an app, never
	// mails a code, and refuses to mail one on request.
	b := newBrowser(t)
	login := b.get(h.http + "/login")
	p := b.post(h.http+"/login", url.Values{"csrf": {formValue(login.body, "csrf")}, "username": {adminName}, "password": {pw}})
	if p.status != 303 || p.loc == nil || p.loc.Path != "/login/enrol" {
		t.Fatalf("an administrator's password step: %d %v, want /login/enrol (an authenticator app)", p.status, p.loc)
	}
	p = b.post(h.http+"/login/mfa/email", url.Values{"csrf": {formValue(login.body, "csrf")}})
	if data, _ := os.ReadFile(filepath.Join(h.dir, "mail.txt")); strings.Contains(string(data), adminName) {
		t.Fatalf("a code was mailed to the administrator (%d):\n%s", p.status, data)
	}
}

// TestLocalCredentialsApart: a local account's credentials are in their
// own table, never among the user's directory attributes.
func TestLocalCredentialsApart(t *testing.T) {
	h := startLocal(t)
	createLocal(t, h, "lena@example.com", "reader")
	ctx := context.Background()
	u, err := h.svc.Store.GetUserByName(ctx, "lena@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(u.Extra), "urn:portcullis") || u.Source != store.SourceLocal {
		t.Fatalf("the user record holds %s (source %s): credentials belong in their own table", u.Extra, u.Source)
	}
	if c, err := h.svc.Store.GetLocalCredentials(ctx, u.ID); err != nil || len(c.Sealed) == 0 {
		t.Fatalf("local credentials: %+v %v", c, err)
	}
}

// TestAccountAuthenticatorApp: a local account on email codes adds an
// authenticator app on /account (its logins then ask for the app), and
// removes it again with a current code (logins ask for an email code
// again); an account without email codes cannot remove its only factor.
func TestAccountAuthenticatorApp(t *testing.T) {
	remember(adminToken)
	t.Setenv("PORTCULLIS_TEST_ADMIN_TOKEN", adminToken)
	h := startHarness(t, harnessOpts{topYAML: `admin: {token: "${env:PORTCULLIS_TEST_ADMIN_TOKEN}"}
local: {enabled: true, email: {mailer: dev, file: mail.txt, code_ttl: 2m}}`})
	const user = "mia@example.com"
	pw := createLocal(t, h, user, "reader")
	b := newBrowser(t)
	csrf := formValue(b.get(h.http+"/login").body, "csrf")
	lastCode := func() string {
		data, _ := os.ReadFile(filepath.Join(h.dir, "mail.txt"))
		m := regexp.MustCompile(`login code is (\d{8})`).FindAllStringSubmatch(string(data), -1)
		if len(m) == 0 {
			t.Fatalf("no code mailed:\n%s", data)
		}
		return m[len(m)-1][1]
	}
	login := func() page {
		t.Helper()
		return b.post(h.http+"/login", url.Values{"csrf": {csrf}, "username": {user}, "password": {pw}})
	}
	if p := login(); p.loc == nil || p.loc.RequestURI() != "/login/mfa?sent=1" {
		t.Fatalf("first login: %d %v, want an email code (the default with a mailer)", p.status, p.loc)
	}
	if p := b.post(h.http+"/login/mfa", url.Values{"csrf": {csrf}, "code": {lastCode()}}); p.loc == nil || p.loc.Path != "/account" {
		t.Fatalf("email code: %d %v %.300s", p.status, p.loc, p.body)
	}
	acct := b.get(h.http + "/account")
	if !strings.Contains(acct.body, `id="add-totp"`) {
		t.Fatalf("/account offers no authenticator app: %.800s", acct.body)
	}
	start := b.post(h.http+"/account/totp/start", url.Values{"csrf": {csrf}})
	m := regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`).FindStringSubmatch(start.body)
	if start.status != 200 || m == nil || !strings.Contains(start.body, `action="/account/totp"`) {
		t.Fatalf("add an app: %d %.800s", start.status, start.body)
	}
	secret := m[1]
	remember(secret)
	now := time.Now()
	done := b.post(h.http+"/account/totp", url.Values{"csrf": {csrf}, "code": {totpAt(t, secret, now)}})
	if done.status != 200 || !strings.Contains(done.body, `id="codes"`) || !strings.Contains(done.body, `id="remove-totp"`) {
		t.Fatalf("confirm the app: %d %.800s", done.status, done.body)
	}
	if p := login(); p.loc == nil || p.loc.RequestURI() != "/login/mfa" {
		t.Fatalf("login with an app: %v, want /login/mfa (the app)", p.loc)
	}
	bad := b.post(h.http+"/account/totp/remove", url.Values{"csrf": {csrf}, "code": {"000000"}})
	if bad.status != 401 {
		t.Fatalf("remove with a wrong code: %d", bad.status)
	}
	rm := b.post(h.http+"/account/totp/remove", url.Values{"csrf": {csrf}, "code": {totpAt(t, secret, now.Add(30*time.Second))}})
	if rm.status != 200 || !strings.Contains(rm.body, "email") || !strings.Contains(rm.body, `id="add-totp"`) {
		t.Fatalf("remove the app: %d %.800s", rm.status, rm.body)
	}
	if p := login(); p.loc == nil || p.loc.RequestURI() != "/login/mfa?sent=1" {
		t.Fatalf("login after removing the app: %v, want an email code", p.loc)
	}

	// No address, so no email codes: the app is the only factor and stays.
	const solo = "solo"
	soloPW := createLocal(t, h, solo, "reader")
	b = newBrowser(t)
	csrf = formValue(b.get(h.http+"/login").body, "csrf")
	if p := b.post(h.http+"/login", url.Values{"csrf": {csrf}, "username": {solo}, "password": {soloPW}}); p.loc == nil || p.loc.Path != "/login/enrol" {
		t.Fatalf("login without an address: %v, want /login/enrol", p.loc)
	}
	enrol := b.get(h.http + "/login/enrol")
	soloSecret := regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`).FindStringSubmatch(enrol.body)[1]
	remember(soloSecret)
	now = time.Now()
	b.post(h.http+"/login/enrol", url.Values{"csrf": {csrf}, "code": {totpAt(t, soloSecret, now)}})
	if p := b.post(h.http+"/login/continue", url.Values{"csrf": {csrf}}); p.loc == nil || p.loc.Path != "/account" {
		t.Fatalf("enrolment: %v", p.loc)
	}
	if acct := b.get(h.http + "/account"); strings.Contains(acct.body, `id="remove-totp"`) {
		t.Fatalf("/account offers to remove the only factor")
	}
	rm = b.post(h.http+"/account/totp/remove", url.Values{"csrf": {csrf}, "code": {totpAt(t, soloSecret, now.Add(30*time.Second))}})
	if rm.status != 409 || !strings.Contains(rm.body, "only second factor") {
		t.Fatalf("removing the only factor: %d %.600s", rm.status, rm.body)
	}
}

// adminPatch sends PATCH /v1/admin/users/{id} with the admin token.
func adminPatch(t *testing.T, h *harness, id, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("PATCH", h.http+"/v1/admin/users/"+id, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestAdministratorGrantedByAdminOnly: the admin token makes a directory
// user an administrator; the user's SCIM connection can then neither
// remove the role nor grant it to anyone, and a role that is not
// configured is refused.
func TestAdministratorGrantedByAdminOnly(t *testing.T) {
	h := startLocal(t)
	scim := scimToken(t, h)
	status, body := scimDo(t, h, scim, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"una@example.com"}`)
	if status != 201 {
		t.Fatalf("SCIM create: %d %v", status, body)
	}
	id := body["id"].(string)
	if status, body := adminPatch(t, h, id, `{"role":"administrator"}`); status != 200 || body["role"] != "administrator" {
		t.Fatalf("admin API grants administrator: %d %v", status, body)
	}
	status, body = scimDo(t, h, scim, "PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:portcullis:2.0:User:role","value":"reader"}]}`)
	if u, _ := h.svc.Store.GetUser(context.Background(), id); u.Role != "administrator" {
		t.Fatalf("after SCIM set the role to reader (%d %v): role %q, want administrator kept", status, body, u.Role)
	}
	if status, body := adminPatch(t, h, id, `{"role":"superuser"}`); status != 400 || !strings.Contains(fmt.Sprint(body["error_description"]), "not a configured database role") {
		t.Fatalf("admin API with an unknown role: %d %v", status, body)
	}
	before, _ := h.svc.Store.LatestEventID(context.Background())
	if status, body := adminPatch(t, h, id, `{"active":false}`); status != 200 || body["active"] != false {
		t.Fatalf("admin API disables: %d %v", status, body)
	}
	if evs, _ := h.svc.Store.EventsSince(context.Background(), before, 10); len(evs) != 1 || evs[0].Kind != store.EventUserDeactivated {
		t.Fatalf("events after the admin API disabled the user: %+v", evs)
	}
}

// TestSCIMScopedPerConnection is issue 13 item 2 through the real
// portal: connection A's token neither lists nor changes a local
// administrator or connection B's users; B's create of A's user name is
// a conflict, not a takeover.
func TestSCIMScopedPerConnection(t *testing.T) {
	h := startLocal(t)
	createLocal(t, h, "root@example.com", "administrator")
	ctx := context.Background()
	admin, err := h.svc.Store.GetUserByName(ctx, "root@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tokenFor := func(conn string) string {
		plain, hash := scimpkg.NewToken()
		remember(plain)
		if _, err := h.svc.Store.PutSCIMToken(ctx, store.SCIMToken{Connection: conn, Hash: hash}); err != nil {
			t.Fatal(err)
		}
		return plain
	}
	a, b := tokenFor("okta"), tokenFor("entra")
	status, body := scimDo(t, h, a, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com"}`)
	if status != 201 {
		t.Fatalf("A creates alice: %d %v", status, body)
	}
	alice := body["id"].(string)

	for _, tok := range []string{a, b} {
		if status, list := scimDo(t, h, tok, "GET", "/Users?filter="+url.QueryEscape(`userName eq "root@example.com"`), ""); status != 200 || list["totalResults"] != float64(0) {
			t.Fatalf("a SCIM token finds the local administrator: %d %v", status, list)
		}
		if status, _ := scimDo(t, h, tok, "PATCH", "/Users/"+admin.ID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"emails","value":[{"value":"evil@attacker.test","primary":true}]}]}`); status != 404 {
			t.Fatalf("a SCIM token changed the local administrator: %d", status)
		}
	}
	if status, list := scimDo(t, h, b, "GET", "/Users", ""); status != 200 || list["totalResults"] != float64(0) {
		t.Fatalf("B lists A's users: %d %v", status, list)
	}
	if status, _ := scimDo(t, h, b, "PATCH", "/Users/"+alice, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"active","value":false}]}`); status != 404 {
		t.Fatalf("B deactivated A's user: %d", status)
	}
	if status, body := scimDo(t, h, b, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ALICE@example.com"}`); status != 409 {
		t.Fatalf("B creates A's user name: %d %v, want 409", status, body)
	}
	if got, _ := h.svc.Store.GetUser(ctx, admin.ID); got.Emails[0].Value != "root@example.com" {
		t.Fatalf("the administrator's email is now %v", got.Emails)
	}
	if got, _ := h.svc.Store.GetUser(ctx, alice); !got.Active || got.SourceName != "okta" {
		t.Fatalf("A's user after B's attempts: %+v", got)
	}
}
