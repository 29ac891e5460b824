package integration

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which `make test` installs
// (scripts/ensure-chromium.sh); never a browser that downloads itself.
const chromiumPath = "/usr/bin/chromium"

// headlessChromium starts a headless chromium for one test.
func headlessChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: run `make test`, which installs Debian's chromium (scripts/ensure-chromium.sh)", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // tests may run as root, where chromium's sandbox cannot start
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a timeout (see chromedp.Run)
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// TestBrowserLogin runs `portcullis login` as a person would: the CLI
// listens on a loopback port and prints the login URL; chromium opens it,
// the IdP's login page is filled in and submitted, and the redirect
// chain ends at the CLI's listener, which caches the tokens.
func TestBrowserLogin(t *testing.T) {
	e := startSSO(t)
	c := newCLIEnv(t, e)
	browserCtx := headlessChromium(t)

	cmd, lines, out := c.start(t, nil, true, "login", "--connection", "corp")
	loginURL := waitLine(t, lines, regexp.MustCompile(`^\s+(http\S+/v1/sso/authorize\S+)$`))[1]

	ctx, cancel := context.WithTimeout(browserCtx, 60*time.Second)
	defer cancel()
	err := chromedp.Do(ctx,
		chromedp.Navigate(loginURL),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), idpPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("title")),
	)
	if err != nil {
		t.Fatalf("drive the login in chromium: %v\n%s", err, out.String())
	}
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("title")))
	if err != nil || title != "Logged in" {
		body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("the loopback page says %q (%v): %s", title, err, body)
	}
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "Logged in to "+e.h.http+" as alice@corp.test (via corp) until") {
		t.Fatalf("portcullis login: %v\n%s", err, out.String())
	}
	c.cachedLogin(t) // 0600, with an access and a refresh token

	tok, errOut, err := c.run(t, "token")
	remember(tok)
	if err != nil {
		t.Fatalf("portcullis token: %v %s", err, errOut)
	}
	if got := queryString(t, e.h.open("alice@corp.test", tok), "SELECT CURRENT_USER()"); got != readerUser+"@%" {
		t.Fatalf("CURRENT_USER() = %q", got)
	}
}

// TestBrowserConsoleSSO: in chromium, an administrator disables the IdP
// connection on the console's Directory page, turns its "enforce MFA"
// on and enables it again; a member's password is then refused with the
// way to SSO, and the member's SSO login (through the login page's
// button and the real IdP's page) stops at portcullis' own second
// factor, as the console just set. Screenshots under test-output/.
func TestBrowserConsoleSSO(t *testing.T) {
	o := startOIDCWithSecret(t)
	h := startLocal(t, fmt.Sprintf(`sso: {connections: [{name: corp, display_name: Corp IdP, local_accounts: true, oidc: {issuer: %q, client_id: %q, client_secret: "${env:PCIT_OIDC_SECRET}"}}]}`,
		o.issuer, idpClientID))
	o.register(h.http, "corp")
	const adminName, member = "root@example.com", "dora@corp.test"
	adminPW := createLocal(t, h, adminName, "administrator")
	memberPW := createLocal(t, h, member, "reader")

	browserCtx := headlessChromium(t)
	ctx, cancel := context.WithTimeout(browserCtx, 90*time.Second)
	defer cancel()
	// The administrator keeps the password while SSO is on (no SSO login yet).
	enrolInChromium(t, ctx, h, adminName, adminPW)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.http+"/console/directory"), chromedp.WaitVisible(chromedp.ID("connections"))); err != nil {
		t.Fatal(err)
	}
	row := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-connection="corp"]`)))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(strings.Fields(s), " ")
	}
	if r := row(); !strings.Contains(r, "enabled") || !strings.Contains(r, "as configured") {
		t.Fatalf("corp before any change: %q", r)
	}
	screenshot(t, ctx, "console-sso-enabled")

	// Disable: the notice, the row, and the login page no longer offers it.
	if err := chromedp.Do(ctx, submit("disable-corp")); err != nil {
		t.Fatal(err)
	}
	if n := pageNotice(ctx); !strings.Contains(n, "Disabled connection corp (on every node)") {
		t.Fatalf("after Disable: notice %q, error %q", n, pageError(ctx))
	}
	if r := row(); !strings.Contains(r, "disabled") || !strings.Contains(r, "by "+adminName) {
		t.Fatalf("corp after Disable: %q", r)
	}
	if off, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("sso-off"))); err != nil || !strings.Contains(off, "Single sign-on is off") {
		t.Fatalf("the directory page says SSO is off: %v %q", err, off)
	}
	screenshot(t, ctx, "console-sso-disabled")
	if got := connections(t, h); got != "local" {
		t.Fatalf("portcullis login offers %q while corp is disabled", got)
	}

	// Enforce MFA, then enable again.
	if err := chromedp.Do(ctx, submit("mfa-corp")); err != nil {
		t.Fatal(err)
	}
	if n := pageNotice(ctx); !strings.Contains(n, "MFA enforced on connection corp") {
		t.Fatalf("after Enforce: notice %q, error %q", n, pageError(ctx))
	}
	if err := chromedp.Do(ctx, submit("enable-corp")); err != nil {
		t.Fatal(err)
	}
	if r := row(); !strings.Contains(r, "enabled Disable on Stop enforcing") {
		t.Fatalf("corp after Enforce and Enable: %q", r)
	}
	screenshot(t, ctx, "console-sso-enabled-mfa")

	// A team, made with the console's form.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("team-name"), "analysts"), chromedp.SendKeys(chromedp.ID("team-groups"), "bi, finance"),
		chromedp.Click(chromedp.CSS(`#new-team input[value="reader"]`)), submit("create-team")); err != nil {
		t.Fatal(err)
	}
	if n := pageNotice(ctx); !strings.Contains(n, "Team analysts saved") {
		t.Fatalf("after Create team: notice %q, error %q", n, pageError(ctx))
	}
	if tm, err := h.svc.Store.GetTeam(ctx, "analysts"); err != nil || strings.Join(tm.Groups, ",") != "bi,finance" || strings.Join(tm.Roles, ",") != "reader" {
		t.Fatalf("the team the console made: %+v %v", tm, err)
	}
	screenshot(t, ctx, "console-teams")
	if err := chromedp.Do(ctx, submit("logout")); err != nil {
		t.Fatal(err)
	}

	// The member's password is refused, with the way in.
	if err := fillLogin(ctx, member, memberPW); err != nil {
		t.Fatal(err)
	}
	if e := pageError(ctx); !strings.Contains(e, "single sign-on is on for this organisation, so password login is off: log in with Corp IdP") {
		t.Fatalf("a member's password while SSO is on: page says %q", e)
	}
	screenshot(t, ctx, "login-refused-sso-on")

	// The login page's button runs the SSO login through the real IdP,
	// which ends at portcullis' second factor (enforce MFA is on).
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`ul.sso a[href="/login/sso/corp"]`)),
		chromedp.WaitReady(chromedp.CSS(`input[name="id"]`)), // the IdP's login form
		chromedp.SendKeys(chromedp.ID("username"), "dora"),
		chromedp.SendKeys(chromedp.ID("password"), idpPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("secret")),
	); err != nil {
		t.Fatalf("the member's SSO login: %v (%s)", err, pageError(ctx))
	}
	if got := title(t, ctx); got != "Set up your authenticator" {
		t.Fatalf("after the IdP, with enforce MFA on: %q", got)
	}
	screenshot(t, ctx, "sso-login-second-factor")
}
