package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/oauth2"

	"github.com/portcullisdb/portcullis/store"
)

// The attacks of issue 13 items 6 and 7, driven through the real portal
// and proxy with MariaDB as both the backend and the store.

// mariadbStore makes a throwaway store database on the test MariaDB.
func mariadbStore(t *testing.T) string {
	t.Helper()
	name := "pcit_names_" + randomHex(4)
	if _, err := root.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec("DROP DATABASE IF EXISTS " + name) })
	return fmt.Sprintf("root@tcp(%s)/%s", backendAddr, name)
}

// wantDenied insists a connection is refused with 1045 and a message
// containing want.
func wantDenied(t *testing.T, h *harness, user, token, want string) {
	t.Helper()
	var me *mysql.MySQLError
	if err := h.open(user, token).Ping(); !errors.As(err, &me) || me.Number != 1045 || !strings.Contains(me.Message, want) {
		t.Fatalf("connect as %q: got %v, want 1045 containing %q", user, err, want)
	}
}

// TestUserNameLookAlikes: one user-name rule at SCIM, at the proxy and in
// the directory lookup. A leading space, full-width letters, the Kelvin
// sign (NFKC: K) and the long s (NFKC: s) are the same user as the plain
// name everywhere, so a directory decision about that user (here a
// deactivation) holds whichever spelling a token carries; control,
// zero-width and bidi characters are refused with their position.
func TestUserNameLookAlikes(t *testing.T) {
	h := startHarness(t, harnessOpts{storeDSN: mariadbStore(t)})
	ctx := context.Background()
	token := scimToken(t, h)
	user := func(name string) string {
		b, _ := json.Marshal(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": name, "active": true})
		return string(b)
	}
	status, alice := scimDo(t, h, token, "POST", "/Users", user("alice@example.com"))
	if status != http.StatusCreated {
		t.Fatalf("create alice: %d %v", status, alice)
	}

	t.Run("SCIM: look-alikes of alice are alice, invisible characters are refused", func(t *testing.T) {
		for _, tt := range []struct {
			name     string
			status   int
			scimType string
			detail   string
		}{
			{" alice@example.com", 409, "uniqueness", ""},
			{"alice@example.com ", 409, "uniqueness", ""},
			{"ALICE@EXAMPLE.COM", 409, "uniqueness", ""},
			{"ａｌｉｃｅ@example.com", 409, "uniqueness", ""},
			{"alice@example.com\x00", 400, "invalidValue", "control character (U+0000) at position 18"},
			{"alice\v@example.com", 400, "invalidValue", "control character (U+000B) at position 6"},
			{"al\u200bice@example.com", 400, "invalidValue", "zero-width character (U+200B)"},
			{"alice\u202e@example.com", 400, "invalidValue", "bidirectional control character (U+202E)"},
		} {
			status, body := scimDo(t, h, token, "POST", "/Users", user(tt.name))
			if status != tt.status || body["scimType"] != tt.scimType || !strings.Contains(fmt.Sprint(body["detail"]), tt.detail) {
				t.Errorf("POST userName %q: %d %v, want %d %s %q", tt.name, status, body, tt.status, tt.scimType, tt.detail)
			}
		}
		if _, total, _ := h.svc.Store.ListUsers(ctx, store.ListOptions{}); total != 1 {
			t.Fatalf("%d users after the look-alikes, want alice alone", total)
		}
	})

	t.Run("proxy: the MySQL user name matches the token by the same rule", func(t *testing.T) {
		provision(t, h.svc.Store, "kate@example.com")
		tok := h.mint("kate@example.com", []string{"writer"}, nil) // the directory's reader wins over the claim
		for _, name := range []string{"kate@example.com", "KATE@example.com", "\u212Aate@example.com", "ｋａｔｅ@example.com"} {
			if got := queryString(t, h.open(name, tok), "SELECT CURRENT_USER()"); got != readerUser+"@%" {
				t.Fatalf("as %q: CURRENT_USER() = %q, want the directory's reader", name, got)
			}
		}
		wantDenied(t, h, "kate\u200b@example.com", tok, "zero-width character (U+200B) at position 5")
		wantDenied(t, h, "kate@example.com\u202e", tok, "bidirectional control character (U+202E)")
		wantDenied(t, h, "katie@example.com", tok, "does not match the token")
	})

	t.Run("a token naming a deactivated user by a look-alike is refused", func(t *testing.T) {
		provision(t, h.svc.Store, "sam@example.com")
		deactivate(t, h, "sam@example.com")
		for _, name := range []string{"\u017Fam@example.com", "SAM@example.com", "ｓａｍ@example.com"} { // U+017F long s
			tok := h.mint(name, []string{"writer"}, nil) // a token whose own claims would grant writer
			wantDenied(t, h, "sam@example.com", tok, "deactivated")
			wantDenied(t, h, name, tok, "deactivated")
		}
		provision(t, h.svc.Store, "kelvin@example.com")
		deactivate(t, h, "\u212Aelvin@example.com") // SCIM's filter finds kelvin by the Kelvin sign too
		wantDenied(t, h, "kelvin@example.com", h.mint("\u212Aelvin@example.com", []string{"writer"}, nil), "deactivated")
	})

	t.Run("a token whose user name holds NUL is refused", func(t *testing.T) {
		wantDenied(t, h, "alice@example.com", h.sign(corpClaims("alice@example.com\x00", "db-readers")), "control character (U+0000)")
	})
}

// TestOIDCEmailWithControlCharacters: an IdP that vouches for a verified
// email holding NUL and vertical tab gets a clear refusal; no user is
// created and no login code issued.
func TestOIDCEmailWithControlCharacters(t *testing.T) {
	e := startSSO(t)
	ctx := context.Background()
	e.oidc.users.mu.Lock()
	for id, email := range map[string]string{"u-nul": "nul@corp.test\x00\v", "u-bidi": "bidi\u202e@corp.test", "u-space": " space@corp.test"} {
		name := strings.TrimPrefix(id, "u-")
		e.oidc.users.users[id] = &idpUser{role: "member", User: storage.User{ID: id, Username: name, Password: idpPassword,
			FirstName: name, LastName: "Test", Email: email, EmailVerified: true}}
	}
	e.oidc.users.mu.Unlock()

	for _, tt := range []struct{ user, want string }{
		{"nul", "control character (U+0000) at position 14"},
		{"bidi", "bidirectional control character (U+202E)"},
	} {
		t.Run(tt.user, func(t *testing.T) {
			c := newCLILogin("corp")
			o := e.oidcLogin(t, newBrowser(t), c, tt.user, oidcHooks{})
			wantRefusal(t, o, tt.want)
			users, _, err := e.h.svc.Store.ListUsers(ctx, store.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range users {
				if strings.HasPrefix(u.UserName, tt.user) {
					t.Fatalf("a user was created for the refused login: %q", u.UserName)
				}
			}
		})
	}
	t.Run("a leading space is trimmed: the login is space@corp.test", func(t *testing.T) {
		c := newCLILogin("corp")
		_, _, body := c.mustTokens(t, e.h, e.oidcLogin(t, newBrowser(t), c, "space", oidcHooks{}))
		if body["username"] != "space@corp.test" {
			t.Fatalf("token for %q, want space@corp.test", body["username"])
		}
	})
}

// tokenPost is tokenRequest for goroutines: it reports instead of failing.
func tokenPost(h *harness, form url.Values) (int, map[string]any, error) {
	resp, err := http.PostForm(h.http+"/v1/token", form)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, nil, err
	}
	for _, k := range []string{"access_token", "refresh_token"} {
		if s, _ := body[k].(string); s != "" {
			remember(s)
		}
	}
	return resp.StatusCode, body, nil
}

// raceToken sends n token requests at once and returns the bodies of the
// 200s and the count of refusals.
func raceToken(t *testing.T, h *harness, n int, form url.Values) (won []map[string]any, refused int) {
	t.Helper()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-start
			status, body, err := tokenPost(h, form)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("token request: %v", err)
			case status == http.StatusOK:
				won = append(won, body)
			case status == http.StatusBadRequest && str(body, "error") == "invalid_grant":
				refused++
			default:
				t.Errorf("token request: %d %v", status, body)
			}
		})
	}
	close(start)
	wg.Wait()
	return won, refused
}

// TestRefreshAndCodeRaces: a thief and the real client refresh one token
// at once; 20 requests redeem one code at once. Exactly one wins each
// time, and because the others were reuses the whole login ends revoked,
// the winner's new refresh token included. A MariaDB store, where the
// window was widest.
func TestRefreshAndCodeRaces(t *testing.T) {
	// The losers' refusals must not use up the address's failure budget.
	e := startSSO(t, harnessOpts{storeDSN: mariadbStore(t), topYAML: "exchange: {failures_per_minute: 100000}\n"})
	h := e.h
	samlCode := func(t *testing.T) (cliLogin, outcome) {
		t.Helper()
		c := newCLILogin("saml")
		acs, form := e.samlResponse(t, newBrowser(t), c, "alice")
		return c, c.finish(t, newBrowser(t).post(acs, form))
	}
	wantRevoked := func(t *testing.T, round int, won []map[string]any) {
		t.Helper()
		if status, body := refresh(t, h, str(won[0], "refresh_token")); status == http.StatusOK || !strings.Contains(str(body, "error_description"), "revoked") {
			t.Fatalf("round %d: the winner's new refresh token still works (%d %v): it survived the login's revocation", round, status, body)
		}
	}

	t.Run("two concurrent refreshes of one token", func(t *testing.T) {
		for round := range 25 {
			c, o := samlCode(t)
			_, rt, _ := c.mustTokens(t, h, o)
			won, refused := raceToken(t, h, 2, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			if len(won) != 1 || refused != 1 {
				t.Fatalf("round %d: %d refreshes won, %d refused; want exactly one of each", round, len(won), refused)
			}
			wantRevoked(t, round, won)
		}
	})
	t.Run("concurrent redemptions of one code: 20 at once, and the thief and the CLI", func(t *testing.T) {
		for round := range 20 {
			racers := 2 // where the window is widest
			if round%5 == 0 {
				racers = 20
			}
			c, o := samlCode(t)
			if o.code == "" {
				t.Fatalf("no code: %s", o.refusal())
			}
			won, refused := raceToken(t, h, racers, url.Values{"grant_type": {"authorization_code"}, "code": {o.code},
				"code_verifier": {c.verifier}, "redirect_uri": {c.redirect}})
			if len(won) != 1 || refused != racers-1 {
				t.Fatalf("round %d: %d redemptions won, %d refused; want exactly one winner", round, len(won), refused)
			}
			wantRevoked(t, round, won)
		}
	})
}

// TestCodeNotSpoiledByFailedChecks: whoever sees a login code but lacks
// the CLI's PKCE verifier (or sends another redirect_uri) cannot use it
// up; the CLI's own request afterwards still gets its tokens, and they
// are not revoked.
func TestCodeNotSpoiledByFailedChecks(t *testing.T) {
	e := startSSO(t)
	h := e.h
	c := newCLILogin("saml")
	acs, form := e.samlResponse(t, newBrowser(t), c, "alice")
	o := c.finish(t, newBrowser(t).post(acs, form))
	if o.code == "" {
		t.Fatalf("no code: %s", o.refusal())
	}
	status, body := c.exchange(t, h, o.code, oauth2.GenerateVerifier())
	wantGrantError(t, status, body, "code_verifier does not match")
	status, body = tokenRequest(t, h, url.Values{"grant_type": {"authorization_code"}, "code": {o.code}, "code_verifier": {c.verifier},
		"redirect_uri": {"http://127.0.0.1:9/elsewhere"}})
	wantGrantError(t, status, body, "redirect_uri differs")

	_, rt, _ := c.mustTokens(t, h, o) // the right verifier, after the failed attempts
	if status, body := refresh(t, h, rt); status != http.StatusOK {
		t.Fatalf("the login's refresh token after the failed attempts: %d %v", status, body)
	}
	// A wrong verifier on a used code is refused as such, and revokes
	// nothing: only a request that passes the checks counts as a reuse.
	status, body = c.exchange(t, h, o.code, oauth2.GenerateVerifier())
	wantGrantError(t, status, body, "code_verifier does not match")
}
