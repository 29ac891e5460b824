package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/store"
)

// csrf is the browser's CSRF token: its cookie, which every form repeats.
func (b *browser) csrf(portal string) string {
	b.t.Helper()
	u, _ := url.Parse(portal)
	for range 2 {
		for _, c := range b.c.Jar.Cookies(u) {
			if c.Name == "pc_csrf" {
				return c.Value
			}
		}
		b.get(portal + "/login") // sets the cookie
	}
	b.t.Fatal("the portal set no CSRF cookie")
	return ""
}

// passwordLogin submits the login form.
func (b *browser) passwordLogin(portal, user, password string) page {
	return b.post(portal+"/login", url.Values{"csrf": {b.csrf(portal)}, "username": {user}, "password": {password}})
}

// enrolAdmin logs an administrator in for the first time: password, TOTP
// enrolment, recovery codes; it returns the TOTP secret.
func (b *browser) enrolAdmin(h *harness, user, password string) string {
	t := b.t
	t.Helper()
	if p := b.passwordLogin(h.http, user, password); p.loc == nil || p.loc.Path != "/login/enrol" {
		t.Fatalf("first login of %s: %d %v %.300s", user, p.status, p.loc, p.body)
	}
	p := b.get(h.http + "/login/enrol")
	m := regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("enrolment page: %d %.300s", p.status, p.body)
	}
	remember(m[1])
	csrf := b.csrf(h.http)
	if p := b.post(h.http+"/login/enrol", url.Values{"csrf": {csrf}, "code": {totpAt(t, m[1], time.Now())}}); p.status != http.StatusOK {
		t.Fatalf("enrol: %d %.300s", p.status, p.body)
	}
	if p := b.post(h.http+"/login/continue", url.Values{"csrf": {csrf}}); p.loc == nil || p.loc.Path != "/console" {
		t.Fatalf("after enrolment an administrator lands on the console: %d %v", p.status, p.loc)
	}
	return m[1]
}

// setConnection posts the console's connection form.
func (b *browser) setConnection(h *harness, conn, field string, on bool) page {
	b.t.Helper()
	p := b.post(h.http+"/console/connections/"+conn, url.Values{"csrf": {b.csrf(h.http)}, "set": {field}, "value": {fmt.Sprint(on)}})
	if p.status != http.StatusSeeOther || p.loc == nil || p.loc.Path != "/console/directory" {
		b.t.Fatalf("console: set %s of %s to %v: %d %v %.300s", field, conn, on, p.status, p.loc, p.body)
	}
	return p
}

// connections is what `portcullis login` offers.
func connections(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := http.Get(h.http + "/v1/sso/connections")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Connections []struct{ Name string } `json:"connections"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	var names []string
	for _, c := range body.Connections {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}

// localCLILogin runs `portcullis login --connection local` over HTTP
// for an account without a second factor and returns its refresh token.
func localCLILogin(t *testing.T, h *harness, user, password string) string {
	t.Helper()
	b, c := newBrowser(t), newCLILogin("local")
	p := b.followWithin(b.get(c.authorizeURL(h.http)), strings.TrimPrefix(h.http, "http://"))
	sealed := formValue(p.body, "p")
	out := c.finish(t, b.post(h.http+"/login", url.Values{"csrf": {formValue(p.body, "csrf")}, "p": {sealed}, "username": {user}, "password": {password}}))
	_, rt, _ := c.mustTokens(t, h, out)
	return rt
}

// TestSSOEnablement: PlanetScale's SSO enablement, on two nodes sharing
// a MariaDB store. The IdP connection starts disabled (config); the
// administrator enables it in node A's console and node B follows; a
// member's password (and the refresh of a password login) is refused
// with a pointer to SSO, the administrator's still works until their
// first SSO login; local accounts cannot be created while directory sync
// is on; disabling the connection brings the member's original password
// back; "enforce MFA" toggled in the console applies at the next login.
func TestSSOEnablement(t *testing.T) {
	remember(adminToken)
	t.Setenv("PORTCULLIS_TEST_ADMIN_TOKEN", adminToken)
	o := startOIDCWithSecret(t)
	dbName := "pcit_store_" + randomHex(4)
	if _, err := root.Exec("CREATE DATABASE " + dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec("DROP DATABASE IF EXISTS " + dbName) })
	dsn := fmt.Sprintf("root@tcp(%s)/%s", backendAddr, dbName)
	// No role_claim: an SSO login leaves the administrator's role alone.
	top := fmt.Sprintf(`admin: {token: "${env:PORTCULLIS_TEST_ADMIN_TOKEN}"}
local: {enabled: true, mfa_required: false, failures_per_minute: 50}
sso: {connections: [{name: corp, display_name: Corp, enabled: false, local_accounts: true, oidc: {issuer: %q, client_id: %q, client_secret: "${env:PCIT_OIDC_SECRET}"}}]}`,
		o.issuer, idpClientID)
	a := startHarness(t, harnessOpts{storeDSN: dsn, topYAML: top})
	nodeB := startHarness(t, harnessOpts{storeDSN: dsn, topYAML: top})
	o.register(a.http, "corp")
	e := &ssoEnv{h: a, oidc: o}

	const adminName, member = "alice@corp.test", "dora@corp.test"
	adminPW := createLocal(t, a, adminName, "administrator")
	memberPW := createLocal(t, a, member, "reader")
	console := newBrowser(t)
	totpSecret := console.enrolAdmin(a, adminName, adminPW)
	memberRT := localCLILogin(t, a, member, memberPW)

	// Disabled by the config: not offered, not startable.
	if got := connections(t, a); got != "local" {
		t.Fatalf("connections while corp is disabled: %q", got)
	}
	if c := newCLILogin("corp"); !strings.Contains(c.finish(t, newBrowser(t).get(c.authorizeURL(a.http))).refusal(), "disabled the IdP connection corp") {
		t.Fatal("a login through a disabled connection is not refused as such")
	}

	// A form without the CSRF token changes nothing.
	if p := console.post(a.http+"/console/connections/corp", url.Values{"set": {"enabled"}, "value": {"true"}}); p.status != http.StatusForbidden {
		t.Fatalf("the connection form without its CSRF token: %d %.300s", p.status, p.body)
	}
	if got := connections(t, a); got != "local" {
		t.Fatalf("connections after a forged form: %q", got)
	}

	// The administrator enables it on node A; node B sees it at once.
	console.setConnection(a, "corp", "enabled", true)
	for _, h := range []*harness{a, nodeB} {
		if got := connections(t, h); got != "corp,local" {
			t.Fatalf("connections on %s after enabling corp: %q", h.http, got)
		}
	}
	p := console.get(a.http + "/console/directory")
	if !strings.Contains(p.body, `id="sso-on"`) || !strings.Contains(p.body, "by "+adminName) {
		t.Fatalf("the directory page after enabling: %.2000s", p.body)
	}

	// A member's password is refused on both nodes, with the way in.
	for _, h := range []*harness{a, nodeB} {
		p := newBrowser(t).passwordLogin(h.http, member, memberPW)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "single sign-on is on") ||
			!strings.Contains(p.body, "portcullis login --connection corp") || !strings.Contains(p.body, `href="/login/sso/corp"`) {
			t.Fatalf("a member's password while SSO is on (%s): %d %.1500s", h.http, p.status, p.body)
		}
	}
	// A wrong password says only that: the SSO refusal needs the password.
	if p := newBrowser(t).passwordLogin(a.http, member, "not-the-password"); p.status != http.StatusUnauthorized || strings.Contains(p.body, "single sign-on") {
		t.Fatalf("a wrong password while SSO is on: %d %.500s", p.status, p.body)
	}
	if st, body := refresh(t, a, memberRT); st != http.StatusBadRequest || !strings.Contains(str(body, "error_description"), "single sign-on is on") {
		t.Fatalf("refresh of a member's password login while SSO is on: %d %s %s", st, str(body, "error"), str(body, "error_description"))
	}

	// The administrator's password still works (then their TOTP).
	if p := newBrowser(t).passwordLogin(a.http, adminName, adminPW); p.loc == nil || p.loc.Path != "/login/mfa" {
		t.Fatalf("an administrator's password before their first SSO login: %d %v %.500s", p.status, p.loc, p.body)
	}

	// The member logs in through SSO instead: the same user record.
	cli := newCLILogin("corp")
	if out := cli.finish(t, e.oidcAt(t, newBrowser(t), cli.authorizeURL(a.http), "dora", oidcHooks{})); out.code == "" {
		t.Fatalf("the member's SSO login: %s", out.refusal())
	}

	// Disabled while the person is at the IdP: the IdP's answer is
	// refused, and no user is created.
	cli = newCLILogin("corp")
	disable := oidcHooks{callback: func(*url.URL) { console.setConnection(a, "corp", "enabled", false) }}
	if out := cli.finish(t, e.oidcAt(t, newBrowser(t), cli.authorizeURL(a.http), "erin", disable)); !strings.Contains(out.refusal(), "disabled the IdP connection corp") {
		t.Fatalf("a login whose connection was disabled meanwhile: %s", out.refusal())
	}
	if _, err := a.svc.Store.GetUserByName(context.Background(), "erin@corp.test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused login must not create its user: %v", err)
	}
	console.setConnection(a, "corp", "enabled", true)

	// The administrator's first SSO login, in the browser: portcullis'
	// own second factor for the console, then the console.
	sso := newBrowser(t)
	p = e.oidcAt(t, sso, a.http+"/login/sso/corp", "alice", oidcHooks{})
	if p.loc == nil || p.loc.Path != "/login/mfa" {
		t.Fatalf("an administrator's SSO login asks for portcullis' second factor: %d %v %.500s", p.status, p.loc, p.body)
	}
	// Not an SSO login yet: only the IdP's half is done.
	if p := newBrowser(t).passwordLogin(a.http, adminName, adminPW); p.loc == nil || p.loc.Path != "/login/mfa" {
		t.Fatalf("an administrator's password while their SSO login waits for the second factor: %d %v %.500s", p.status, p.loc, p.body)
	}
	p = sso.post(a.http+"/login/mfa", url.Values{"csrf": {sso.csrf(a.http)}, "code": {totpAt(t, totpSecret, time.Now().Add(30*time.Second))}})
	if p.loc == nil || p.loc.Path != "/console" {
		t.Fatalf("the administrator's SSO login ends on the console: %d %v %.500s", p.status, p.loc, p.body)
	}
	if p := sso.get(a.http + "/console"); !regexp.MustCompile(`alice@corp.test</td>.*\n.*local, SSO since \d{4}-`).MatchString(p.body) {
		t.Fatalf("the users page records the administrator's first SSO login: %.3000s", p.body)
	}
	if p := newBrowser(t).passwordLogin(a.http, adminName, adminPW); p.status != http.StatusForbidden || !strings.Contains(p.body, "administrators log in with single sign-on once they have used it") {
		t.Fatalf("an administrator's password after their first SSO login: %d %.500s", p.status, p.body)
	}

	// A person without a local account logs in through the login page's
	// button: a browser session, and /account offers no password change.
	erin := newBrowser(t)
	if p := e.oidcAt(t, erin, a.http+"/login/sso/corp", "erin", oidcHooks{}); p.loc == nil || p.loc.Path != "/account" {
		t.Fatalf("a browser SSO login: %d %v %.500s", p.status, p.loc, p.body)
	}
	if p := erin.get(a.http + "/account"); !strings.Contains(p.body, "erin@corp.test") || !strings.Contains(p.body, `id="no-password"`) || strings.Contains(p.body, "Change password") {
		t.Fatalf("the SSO user's account page: %d %.1500s", p.status, p.body)
	}

	// Directory sync on: no local accounts, through the CLI or the console.
	if tok, errOut, err := admin(t, a, adminToken, "scim", "rotate-token", "corp"); err != nil {
		t.Fatalf("scim rotate-token: %v %s", err, errOut)
	} else {
		remember(strings.TrimSpace(tok))
	}
	if out, errOut, err := admin(t, a, adminToken, "users", "create-local", "new@corp.test"); err == nil || !strings.Contains(errOut, "directory sync (SCIM) is on for corp") {
		t.Fatalf("create-local while directory sync is on: %v %q %q", err, out, errOut)
	}
	p = sso.post(a.http+"/console/users/local", url.Values{"csrf": {sso.csrf(a.http)}, "username": {"new@corp.test"}, "role": {"reader"}})
	if p.status != http.StatusConflict || !strings.Contains(p.body, "directory sync (SCIM) is on for corp") {
		t.Fatalf("the console's new local account while directory sync is on: %d %.500s", p.status, p.body)
	}
	if _, errOut, err := admin(t, a, adminToken, "scim", "delete-token", "corp"); err != nil {
		t.Fatalf("scim delete-token: %v %s", err, errOut)
	}
	p = sso.post(a.http+"/console/users/local", url.Values{"csrf": {sso.csrf(a.http)}, "username": {"new@corp.test"}, "role": {"reader"}})
	if m := regexp.MustCompile(`id="initial-password">([^<]+)<`).FindStringSubmatch(p.body); p.status != http.StatusOK || m == nil {
		t.Fatalf("the console's new local account once sync is off: %d %.500s", p.status, p.body)
	} else {
		remember(m[1])
	}

	// "Enforce MFA" toggled in the console holds at the next login.
	sso.setConnection(a, "corp", "enforce_mfa", true)
	cli = newCLILogin("corp")
	if p := e.oidcAt(t, newBrowser(t), cli.authorizeURL(a.http), "dora", oidcHooks{}); p.loc == nil || p.loc.Path != "/login/enrol" {
		t.Fatalf("SSO login with enforce MFA on: %d %v %.300s", p.status, p.loc, p.body)
	}
	sso.setConnection(a, "corp", "enforce_mfa", false)

	// SSO off: the member's original password, and its login, work again.
	sso.setConnection(a, "corp", "enabled", false)
	if p := newBrowser(t).passwordLogin(nodeB.http, member, memberPW); p.loc == nil || p.loc.Path != "/account" {
		t.Fatalf("the member's original password once SSO is off: %d %v %.500s", p.status, p.loc, p.body)
	}
	if st, body := refresh(t, a, memberRT); st != http.StatusOK {
		t.Fatalf("refresh of the member's password login once SSO is off: %d %s %s", st, str(body, "error"), str(body, "error_description"))
	}
	if p := sso.get(a.http + "/login/sso/corp"); p.status != http.StatusForbidden || !strings.Contains(p.body, "disabled the IdP connection corp") {
		t.Fatalf("a browser SSO login through the disabled connection: %d %.500s", p.status, p.body)
	}

	// The admin API (the way back in if the IdP fails after every
	// administrator used it), through node B's CLI.
	if out, errOut, err := admin(t, nodeB, adminToken, "connections", "set", "corp", "--enabled=true"); err != nil || !strings.Contains(out, "enabled connection corp on every node") {
		t.Fatalf("connections set --enabled=true: %v %q %q", err, out, errOut)
	}
	if got := connections(t, a); got != "corp,local" {
		t.Fatalf("node A after node B's CLI enabled corp: %q", got)
	}
	if out, _, err := admin(t, a, adminToken, "connections", "list"); err != nil || !regexp.MustCompile(`corp\s+true\s+false\s+\S+ \S+ by the admin API`).MatchString(out) {
		t.Fatalf("connections list: %v\n%s", err, out)
	}
	for _, tt := range []struct{ args, want string }{
		{"set nope --enabled=false", "no IdP connection is named nope"},
		{"set corp", "nothing to change: give --enabled=true|false or --enforce-mfa=true|false"},
	} {
		if _, errOut, err := admin(t, a, adminToken, append([]string{"connections"}, strings.Fields(tt.args)...)...); err == nil || !strings.Contains(errOut, tt.want) {
			t.Errorf("connections %s: %v %q", tt.args, err, errOut)
		}
	}
	if b := auditText(nodeB); !strings.Contains(b, "granted enabled connection corp") {
		t.Errorf("node B's audit lacks the admin API's change:\n%s", b)
	}

	all := auditText(a)
	for _, want := range []string{
		"granted console: enabled connection corp by " + adminName,
		"granted console: MFA enforced on connection corp by " + adminName,
		"granted console: disabled connection corp by " + adminName,
		"denied create local user new@corp.test: directory sync is on",
		"granted stop directory sync of corp",
		"granted console: create local user new@corp.test by " + adminName,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("audit lacks %q; admin events:\n%s", want, all)
		}
	}
}

// auditText is the outcome and reason of each admin audit event, a line
// each.
func auditText(h *harness) string {
	var lines []string
	for _, l := range h.auditLines() {
		if l["event"] == "admin" {
			lines = append(lines, fmt.Sprint(l["outcome"], " ", l["reason"]))
		}
	}
	return strings.Join(lines, "\n")
}
