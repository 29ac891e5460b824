package integration

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portcullisdb/portcullis/store"
)

// submitCSS clicks the first element matching sel and waits for the next page.
func submitCSS(sel string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Evaluate[bool](`(document.body.dataset.old = "1", true)`)(ctx, t); err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.Steps(
			chromedp.Click(chromedp.CSS(sel)),
			chromedp.WaitVisible(chromedp.CSS("body:not([data-old]) #title")),
		)(ctx, t)
	}
}

// TestConsoleDisableEndsSession: an administrator (a local account with
// TOTP) kills one of a user's live proxied sessions from the console,
// then disables the user, which ends the user's other live session; the
// actions show in the console's audit view.
func TestConsoleDisableEndsSession(t *testing.T) {
	// An IdP connection that is never reached: the directory page lists
	// it and rotates its SCIM token.
	h := startLocal(t, `sso: {connections: [{name: okta, display_name: Okta, require_scim: true, oidc: {issuer: "http://127.0.0.1:9/", client_id: pc}}]}`)
	const adminName, victim = "root@example.com", "vic@example.com"
	adminPW := createLocal(t, h, adminName, "administrator")
	createLocal(t, h, victim, "reader")

	// Without a session the console sends the browser to the login page.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(h.http + "/console")
	if err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET /console without a session: %v %v", err, resp)
	}
	resp.Body.Close()

	// The victim's two live sessions, each running a long query.
	tok := h.mint(victim, nil, []string{"engineering"})
	sleeper := func() <-chan error {
		done := make(chan error, 1)
		db := h.open(victim, tok)
		db.SetMaxOpenConns(1)
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := db.Exec("SELECT SLEEP(30)")
			done <- err
		}()
		return done
	}
	first, second := sleeper(), sleeper()
	waitSessions := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); len(h.svc.Proxy.Sessions.List()) != n; {
			if time.Now().After(deadline) {
				t.Fatalf("%d live sessions, want %d", len(h.svc.Proxy.Sessions.List()), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitSessions(2)

	browserCtx := headlessChromium(t)
	ctx, cancel := context.WithTimeout(browserCtx, 90*time.Second)
	defer cancel()
	enrolInChromium(t, ctx, h, adminName, adminPW)
	if got := title(t, ctx); got != "Users" {
		t.Fatalf("an administrator lands on the console; got %q (%s)", got, pageError(ctx))
	}
	screenshot(t, ctx, "console-users")

	// Kill one session from the sessions page.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.http+"/console/sessions"), chromedp.WaitVisible(chromedp.ID("sessions"))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "console-sessions")
	if err := chromedp.Do(ctx, submitCSS(`tr[data-identity="`+victim+`"] button`)); err != nil {
		t.Fatal(err)
	}
	if n := pageNotice(ctx); !strings.Contains(n, "ends within a second") {
		t.Fatalf("after kill: notice %q, error %q", n, pageError(ctx))
	}
	killed := waitEnded(t, first, second)
	t.Logf("kill ended one session: %v", killed)
	waitSessions(1)

	// Disable the user: the remaining session ends within a few seconds.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.http+"/console"), chromedp.WaitVisible(chromedp.ID("users"))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := chromedp.Do(ctx, submitCSS(`tr[data-user="`+victim+`"] button`)); err != nil {
		t.Fatal(err)
	}
	if n := pageNotice(ctx); !strings.Contains(n, victim+" is disabled") {
		t.Fatalf("after disable: notice %q, error %q", n, pageError(ctx))
	}
	waitEnded(t, first, second)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the disabled user's session took %v to end", took)
	}
	if u, err := h.svc.Store.GetUserByName(context.Background(), victim); err != nil || u.Active {
		t.Fatalf("the user must be inactive in the store: %v %v", err, u.Active)
	}
	screenshot(t, ctx, "console-users-disabled")

	// The audit view shows the administrator's actions.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.http+"/console/audit?user="+adminName+"&outcome=granted"), chromedp.WaitVisible(chromedp.ID("audit"))); err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("audit")))
	if err != nil || !strings.Contains(body, "console: disable user "+victim) || !strings.Contains(body, "console: kill session") {
		t.Fatalf("audit view: %v\n%s", err, body)
	}
	screenshot(t, ctx, "console-audit")

	// The directory page lists the teams and their roles.
	if _, err := h.svc.Store.PutTeam(context.Background(), store.Team{Name: "analysts", Groups: []string{"db-readers-dir"}, Roles: []string{"reader"}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(h.http+"/console/directory"), chromedp.WaitVisible(chromedp.ID("teams"))); err != nil {
		t.Fatal(err)
	}
	if teams, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.ID("teams"))); err != nil || !strings.Contains(teams, `data-team="analysts"`) || !strings.Contains(teams, `value="db-readers-dir"`) {
		t.Fatalf("teams: %v %q", err, teams)
	}
	screenshot(t, ctx, "console-directory")
	if err := chromedp.Do(ctx, submitCSS(`#connections form[action$="/token"] button`)); err != nil {
		t.Fatal(err)
	}
	scimToken, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("scim-token")))
	remember(scimToken)
	if err != nil || len(scimToken) < 20 {
		t.Fatalf("new SCIM token: %v (%s)", err, pageError(ctx))
	}
	req, _ := http.NewRequest("GET", h.http+"/scim/v2/Users", nil)
	req.Header.Set("Authorization", "Bearer "+scimToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the console's SCIM token must work: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
}

// enrolInChromium logs a new administrator in at /login, enrols TOTP and
// goes on past the recovery codes; it returns the TOTP secret.
func enrolInChromium(t *testing.T, ctx context.Context, h *harness, user, password string) string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(h.http+"/login")); err != nil {
		t.Fatal(err)
	}
	if err := fillLogin(ctx, user, password); err != nil {
		t.Fatal(err)
	}
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("secret")))
	if err != nil {
		t.Fatalf("the administrator must enrol TOTP first: %v (%s)", err, pageError(ctx))
	}
	remember(secret)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("code"), totpAt(t, secret, time.Now())), submit("verify"), submit("continue")); err != nil {
		t.Fatal(err)
	}
	return secret
}

// waitEnded waits for one of the sleeping queries to end with an error.
func waitEnded(t *testing.T, chans ...<-chan error) error {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		for _, c := range chans {
			select {
			case err := <-c:
				if err == nil {
					t.Fatal("SELECT SLEEP(30) finished normally: the session was not ended")
				}
				return err
			default:
			}
		}
		select {
		case <-timeout:
			t.Fatal("no live session ended within 5s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func pageNotice(ctx context.Context) string {
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("notice")||{}).textContent||""`))
	return s
}
