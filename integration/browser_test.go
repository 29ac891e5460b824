package integration

import (
	"context"
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
