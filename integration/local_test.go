package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/portcullisdb/portcullis/auth/mfa/mfatest"
)

// startLocal starts the product with local accounts and the admin API.
func startLocal(t *testing.T, extraYAML ...string) *harness {
	remember(adminToken)
	t.Setenv("PORTCULLIS_TEST_ADMIN_TOKEN", adminToken)
	return startHarness(t, harnessOpts{topYAML: `admin: {token: "${env:PORTCULLIS_TEST_ADMIN_TOKEN}"}
local: {enabled: true, failures_per_minute: 20}
` + strings.Join(extraYAML, "\n")})
}

// createLocal makes a local account with the real CLI and returns its
// initial password.
func createLocal(t *testing.T, h *harness, user, role string) string {
	t.Helper()
	out, errOut, err := admin(t, h, adminToken, "users", "create-local", user, "--role", role)
	pw := strings.TrimSpace(out)
	remember(pw)
	if err != nil || len(pw) < 12 || !strings.Contains(errOut, "not shown again") {
		t.Fatalf("users create-local: %v %q %q", err, pw, errOut)
	}
	return pw
}

// totpAt is the code an authenticator app shows at t.
func totpAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// screenshot saves the page under test-output/ at the repository root.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	dir := filepath.Join("..", "test-output")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
	}
}

// fillLogin submits the login form.
func fillLogin(ctx context.Context, user, password string) error {
	return chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		submit("login"),
	)
}

// submit clicks a button and waits for the next page: the old one is
// marked first, so its own elements do not count.
func submit(button string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Evaluate[bool](`(document.body.dataset.old = "1", true)`)(ctx, t); err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.Steps(
			chromedp.Click(chromedp.ID(button)),
			chromedp.WaitVisible(chromedp.CSS("body:not([data-old]) #title")),
		)(ctx, t)
	}
}

func title(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("title")))
	if err != nil {
		t.Fatalf("read the page title: %v", err)
	}
	return s
}

func pageError(ctx context.Context) string {
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("error")||{}).textContent||""`))
	return s
}

// TestLocalAccountBrowser: a new local user logs in, enrols TOTP, logs
// out, logs in with a code and "trust this device", logs in again
// without a code; then `portcullis login --connection local` gives the
// user tokens that open a MariaDB session through the proxy.
func TestLocalAccountBrowser(t *testing.T) {
	h := startLocal(t)
	const user = "lena@example.com"
	pw := createLocal(t, h, user, "reader")
	browserCtx := headlessChromium(t)
	ctx, cancel := context.WithTimeout(browserCtx, 90*time.Second)
	defer cancel()

	// A wrong password is refused with a clear message.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.http+"/login")); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "login")
	if err := fillLogin(ctx, user, "not the password!"); err != nil {
		t.Fatal(err)
	}
	if e := pageError(ctx); !strings.Contains(e, "wrong user name or password") {
		t.Fatalf("wrong password: page says %q", e)
	}

	// First login: enrol TOTP.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.http+"/login")); err != nil {
		t.Fatal(err)
	}
	if err := fillLogin(ctx, user, pw); err != nil {
		t.Fatal(err)
	}
	if got := title(t, ctx); got != "Set up your authenticator" {
		t.Fatalf("after the first password: %q (%s)", got, pageError(ctx))
	}
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("secret")))
	if err != nil {
		t.Fatal(err)
	}
	qrAttr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("qr"), "src"))
	if err != nil {
		t.Fatal(err)
	}
	qr := qrAttr.Value
	remember(secret)
	if len(secret) < 16 || !strings.HasPrefix(qr, "data:image/png;base64,") {
		t.Fatalf("enrolment page: secret %d chars, qr %.30q", len(secret), qr)
	}
	screenshot(t, ctx, "enrol")
	// A wrong code does not enrol.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("code"), "000000"), submit("verify")); err != nil {
		t.Fatal(err)
	}
	enrolCode := totpAt(t, secret, time.Now())
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("code"), enrolCode), submit("verify")); err != nil {
		t.Fatalf("enrol: %v (%s)", err, pageError(ctx))
	}
	codes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#codes code")].map(e => e.textContent)`))
	if err != nil || len(codes) != 10 {
		t.Fatalf("recovery codes: %v %d", err, len(codes))
	}
	for _, c := range codes {
		remember(c)
	}
	screenshot(t, ctx, "recovery-codes")
	if err := chromedp.Do(ctx, submit("continue")); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "account")

	// Log out, log in again: the code used at enrolment is refused
	// (replay), the next one works, and this device becomes trusted.
	logout := func() {
		t.Helper()
		if err := chromedp.Do(ctx, submit("logout")); err != nil {
			t.Fatalf("log out: %v", err)
		}
	}
	logout()
	if err := fillLogin(ctx, user, pw); err != nil {
		t.Fatal(err)
	}
	if got := title(t, ctx); got != "Two-step verification" {
		t.Fatalf("second login: %q (%s)", got, pageError(ctx))
	}
	screenshot(t, ctx, "mfa")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("code"), enrolCode), submit("verify")); err != nil {
		t.Fatal(err)
	}
	if e := pageError(ctx); !strings.Contains(e, "already used") {
		t.Fatalf("a replayed code: page says %q", e)
	}
	next := totpAt(t, secret, time.Now().Add(30*time.Second)) // the next step, inside the allowed skew
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("code"), next), chromedp.Click(chromedp.ID("trust")),
		submit("verify")); err != nil {
		t.Fatalf("log in with a code: %v (%s)", err, pageError(ctx))
	}
	logout()
	if err := fillLogin(ctx, user, pw); err != nil {
		t.Fatal(err)
	}
	if got := title(t, ctx); got != "Your account" {
		t.Fatalf("a trusted device must skip the code; page %q (%s)", got, pageError(ctx))
	}

	// The CLI: `portcullis login --connection local` through the same page.
	c := newCLIEnv(t, &ssoEnv{h: h})
	cmd, lines, out := c.start(t, nil, true, "login", "--connection", "local")
	loginURL := waitLine(t, lines, regexp.MustCompile(`^\s+(http\S+/v1/sso/authorize\S+)$`))[1]
	if err := chromedp.Do(ctx, chromedp.Navigate(loginURL)); err != nil {
		t.Fatal(err)
	}
	if err := fillLogin(ctx, user, pw); err != nil { // trusted: no code asked
		t.Fatalf("CLI login: %v", err)
	}
	if got := title(t, ctx); got != "Logged in" {
		t.Fatalf("the CLI's loopback page says %q (%s)", got, pageError(ctx))
	}
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "as "+user+" (via local)") {
		t.Fatalf("portcullis login: %v\n%s", err, out.String())
	}
	tok, errOut, err := c.run(t, "token")
	remember(tok)
	if err != nil {
		t.Fatalf("portcullis token: %v %s", err, errOut)
	}
	if got := queryString(t, h.open(user, tok), "SELECT CURRENT_USER()"); got != readerUser+"@%" {
		t.Fatalf("CURRENT_USER() = %q", got)
	}

	// A password change revokes the trusted devices: the next login asks
	// for a code again.
	newPW := "a new password " + randomHex(6)
	remember(newPW)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.http+"/account"), chromedp.WaitVisible(chromedp.ID("current")),
		chromedp.SendKeys(chromedp.ID("current"), pw), chromedp.SendKeys(chromedp.ID("new"), newPW),
		chromedp.SendKeys(chromedp.ID("confirm"), newPW), submit("change")); err != nil {
		t.Fatal(err)
	}
	if got := title(t, ctx); got != "Your account" || pageError(ctx) != "" {
		t.Fatalf("change password: %q %s", got, pageError(ctx))
	}
	logout()
	if err := fillLogin(ctx, user, pw); err != nil {
		t.Fatal(err)
	}
	if e := pageError(ctx); !strings.Contains(e, "wrong user name or password") {
		t.Fatalf("the old password must stop working: %q", e)
	}
	if err := fillLogin(ctx, user, newPW); err != nil {
		t.Fatal(err)
	}
	if got := title(t, ctx); got != "Two-step verification" {
		t.Fatalf("after a password change the device is no longer trusted; page %q (%s)", got, pageError(ctx))
	}
}

// TestLocalEmailCode: an account without an authenticator app gets its
// second factor by email (the dev mailer writes to a file); each code
// works once, and a newer code replaces the older.
func TestLocalEmailCode(t *testing.T) {
	remember(adminToken)
	t.Setenv("PORTCULLIS_TEST_ADMIN_TOKEN", adminToken)
	h := startHarness(t, harnessOpts{topYAML: `admin: {token: "${env:PORTCULLIS_TEST_ADMIN_TOKEN}"}
local: {enabled: true, email: {mailer: dev, file: mail.txt, code_ttl: 2m}}`})
	const user = "eve@example.com"
	pw := createLocal(t, h, user, "reader")
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrf := func() string {
		t.Helper()
		u, _ := url.Parse(h.http)
		for _, ck := range jar.Cookies(u) {
			if ck.Name == "pc_csrf" {
				return ck.Value
			}
		}
		resp, err := c.Get(h.http + "/login")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)[1])
	}
	post := func(path string, form url.Values) (int, string, string) {
		t.Helper()
		form.Set("csrf", csrf())
		resp, err := c.PostForm(h.http+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(body)
	}
	lastCode := func() string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(h.dir, "mail.txt"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`login code is (\d{8})`).FindAllStringSubmatch(string(data), -1)
		if len(m) == 0 || !strings.Contains(string(data), "To: "+user) {
			t.Fatalf("no code mailed to %s:\n%s", user, data)
		}
		return m[len(m)-1][1]
	}
	if st, loc, _ := post("/login", url.Values{"username": {user}, "password": {pw}}); st != http.StatusSeeOther || loc != "/login/mfa?sent=1" {
		t.Fatalf("password step: %d %s", st, loc)
	}
	first := lastCode()
	if st, loc, body := post("/login/mfa", url.Values{"code": {first}}); st != http.StatusSeeOther || loc != "/account" {
		t.Fatalf("email code: %d %s %s", st, loc, body)
	}
	if st, _, _ := post("/logout", url.Values{}); st != http.StatusSeeOther {
		t.Fatalf("logout: %d", st)
	}
	if st, loc, _ := post("/login", url.Values{"username": {user}, "password": {pw}}); st != http.StatusSeeOther || loc != "/login/mfa?sent=1" {
		t.Fatalf("password step again: %d %s", st, loc)
	}
	second := lastCode()
	if st, _, body := post("/login/mfa", url.Values{"code": {first}}); st != http.StatusUnauthorized || !strings.Contains(body, "wrong") {
		t.Fatalf("a used email code: %d %s", st, body)
	}
	if st, loc, body := post("/login/mfa", url.Values{"code": {second}}); st != http.StatusSeeOther || loc != "/account" {
		t.Fatalf("the new email code: %d %s %s", st, loc, body)
	}
}

// TestSSOEnforceMFA: a connection with enforce_mfa holds the IdP's login
// for portcullis' own TOTP (enrolled at the first login) before the CLI
// gets its code.
func TestSSOEnforceMFA(t *testing.T) {
	o := startOIDCWithSecret(t)
	h := startLocal(t, fmt.Sprintf(`sso: {connections: [{name: strict, enforce_mfa: true, role_claim: portcullis_role, role_values: {member: reader},
  oidc: {issuer: %q, client_id: %q, client_secret: "${env:PCIT_OIDC_SECRET}"}}]}`, o.issuer, idpClientID))
	o.register(h.http, "strict")
	e := &ssoEnv{h: h, oidc: o}
	b := newBrowser(t)
	c := newCLILogin("strict")
	p := e.oidcAt(t, b, c.authorizeURL(h.http), "alice", oidcHooks{})
	if p.loc == nil || p.loc.Path != "/login/enrol" {
		t.Fatalf("after the IdP, portcullis' second factor must be asked: %d %v %.300s", p.status, p.loc, p.body)
	}
	p = b.get(p.loc.String())
	m := regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("enrolment page: %d %.500s", p.status, p.body)
	}
	remember(m[1])
	csrf := formValue(p.body, "csrf")
	p = b.post(h.http+"/login/enrol", url.Values{"csrf": {csrf}, "code": {totpAt(t, m[1], time.Now())}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="codes"`) {
		t.Fatalf("enrol: %d %.500s", p.status, p.body)
	}
	out := c.finish(t, b.post(h.http+"/login/continue", url.Values{"csrf": {csrf}}))
	access, _, body := c.mustTokens(t, h, out)
	remember(access)
	if str(body, "username") != "alice@corp.test" || str(body, "connection") != "strict" {
		t.Fatalf("tokens: %v", body)
	}
}

// TestLocalEmailCodeSMTP: the email code goes through a real SMTP relay
// (STARTTLS with a private CA from local.email.smtp.ca_file, PLAIN
// authentication); a relay that refuses the login leaves the person a
// clear page and the server log the step, never the relay's password.
func TestLocalEmailCodeSMTP(t *testing.T) {
	remember(mfatest.Password)
	remember(adminToken)
	ca := filepath.Join(t.TempDir(), "relay-ca.pem")
	start := func(password string) (*harness, *mfatest.Relay) {
		relay := (&mfatest.Relay{TLS: true, Auth: true}).Start(t)
		if err := os.WriteFile(ca, relay.CAPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PCIT_SMTP_PASSWORD", password)
		t.Setenv("PORTCULLIS_TEST_ADMIN_TOKEN", adminToken)
		h := startHarness(t, harnessOpts{topYAML: fmt.Sprintf(`admin: {token: "${env:PORTCULLIS_TEST_ADMIN_TOKEN}"}
local:
  enabled: true
  email: {mailer: smtp, from: portcullis@example.com, smtp: {address: %q, username: %q, password: "${env:PCIT_SMTP_PASSWORD}", ca_file: %q}}`,
			relay.Addr, mfatest.User, ca)})
		return h, relay
	}
	const user = "eve@example.com"

	h, relay := start(mfatest.Password)
	pw := createLocal(t, h, user, "reader")
	b := newBrowser(t)
	if p := b.passwordLogin(h.http, user, pw); p.loc == nil || p.loc.String() != h.http+"/login/mfa?sent=1" {
		t.Fatalf("password step: %d %v %.500s", p.status, p.loc, p.body)
	}
	mails := relay.Delivered()
	if len(mails) != 1 || mails[0].To != user || !mails[0].OverTLS {
		t.Fatalf("the relay got %+v", mails)
	}
	code := regexp.MustCompile(`login code is (\d{8})`).FindStringSubmatch(mails[0].Data)
	if code == nil {
		t.Fatalf("no code in the mail:\n%s", mails[0].Data)
	}
	if p := b.post(h.http+"/login/mfa", url.Values{"csrf": {b.csrf(h.http)}, "code": {code[1]}}); p.loc == nil || p.loc.Path != "/account" {
		t.Fatalf("the mailed code: %d %v %.500s", p.status, p.loc, p.body)
	}

	h, relay = start("not-the-relay-password")
	pw = createLocal(t, h, user, "reader")
	p := newBrowser(t).passwordLogin(h.http, user, pw)
	if p.status != http.StatusBadGateway || !strings.Contains(p.body, "the code could not be emailed: try again, or use your authenticator app") {
		t.Fatalf("a relay that refuses the login: %d %.800s", p.status, p.body)
	}
	if len(relay.Delivered()) != 0 {
		t.Fatal("the refused relay delivered a mail")
	}
	logged, _ := os.ReadFile(filepath.Join(h.dir, "portcullis.log"))
	if !strings.Contains(string(logged), "log in as portcullis (check local.email.smtp.username and password): 535") {
		t.Fatalf("the server log lacks the SMTP step:\n%s", logged)
	}
}
