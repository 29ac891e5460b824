package client

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// OOBRedirect is the redirect_uri of the copy/paste login (--no-browser):
// the portal shows the code instead of redirecting.
const OOBRedirect = "urn:ietf:wg:oauth:2.0:oob"

// LoginOptions say how to log in.
type LoginOptions struct {
	Server     string
	Connection string // "" when the portal has only one
	// NoBrowser is the flow for SSH sessions: print the URL, read the
	// code the portal shows back from In.
	NoBrowser bool
	Cache     *Cache
	Out       io.Writer // instructions (stderr)
	In        io.Reader // the pasted code
	// OpenBrowser opens the URL; nil: $BROWSER, else the system's.
	OpenBrowser func(url string) error
	Timeout     time.Duration // default 5 minutes
}

// LoginResult is the login that was cached.
type LoginResult struct {
	Entry      Entry
	Connection string
	// SessionEnds is when the login ends and `portcullis login` is
	// needed again; zero when it cannot be renewed past the token.
	SessionEnds time.Time
}

// Login runs the browser login (OAuth authorization code with PKCE on a
// loopback redirect, RFC 8252) against the portal, and caches the tokens.
func Login(ctx context.Context, o LoginOptions) (LoginResult, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	d, err := Discover(ctx, o.Server)
	if err != nil {
		return LoginResult{}, err
	}
	if err := checkConnection(ctx, o); err != nil {
		return LoginResult{}, err
	}
	verifier, state := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	var code, redirect string
	if o.NoBrowser {
		redirect = OOBRedirect
		code, err = pasteCode(ctx, o, authorizeURL(o, redirect, state, verifier))
	} else {
		code, redirect, err = loopbackCode(ctx, o, state, verifier)
	}
	if err != nil {
		return LoginResult{}, err
	}
	tr, err := postToken(ctx, d.TokenEndpoint, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {redirect},
	})
	if err != nil {
		return LoginResult{}, err
	}
	e := tr.entry(o.Server)
	if err := o.Cache.Put(e); err != nil {
		return LoginResult{}, err
	}
	// Later commands without --server or $PORTCULLIS_SERVER use this one.
	if err := o.Cache.RememberServer(o.Server); err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Entry: e, Connection: tr.Connection, SessionEnds: e.SessionEnds}, nil
}

// checkConnection fails early, before any browser, when the portal has
// no browser login or no connection of that name.
func checkConnection(ctx context.Context, o LoginOptions) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(o.Server, "/")+"/v1/sso/connections", nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("reach portcullis at %s: %w", o.Server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("portcullis at %s has no browser login configured (sso: in its config): ask its operator", o.Server)
	}
	var body struct {
		Connections []struct {
			Name string `json:"name"`
		} `json:"connections"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body) != nil {
		return fmt.Errorf("portcullis at %s answered %s for its login connections", o.Server, resp.Status)
	}
	var names []string
	for _, c := range body.Connections {
		if c.Name == o.Connection {
			return nil
		}
		names = append(names, c.Name)
	}
	switch {
	case o.Connection != "":
		return fmt.Errorf("portcullis at %s has no login connection %q: use --connection with one of %s", o.Server, o.Connection, strings.Join(names, ", "))
	case len(names) > 1:
		return fmt.Errorf("portcullis at %s has several login connections: pick one with --connection (%s)", o.Server, strings.Join(names, ", "))
	}
	return nil
}

// authorizeURL is where the browser starts the login.
func authorizeURL(o LoginOptions, redirect, state, verifier string) string {
	v := url.Values{
		"response_type": {"code"}, "redirect_uri": {redirect}, "state": {state},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
	if o.Connection != "" {
		v.Set("connection", o.Connection)
	}
	return strings.TrimSuffix(o.Server, "/") + "/v1/sso/authorize?" + v.Encode()
}

// pasteCode prints the URL and reads back the code the portal showed.
func pasteCode(ctx context.Context, o LoginOptions, authURL string) (string, error) {
	fmt.Fprintf(o.Out, "Open this URL in a browser on any machine, log in, then paste the code it shows:\n\n  %s\n\nCode: ", authURL)
	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(o.In)
		for s.Scan() {
			if t := strings.TrimSpace(s.Text()); t != "" {
				lines <- t
				return
			}
		}
		close(lines)
	}()
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("no code pasted within %v: run portcullis login again", o.Timeout)
	case line, ok := <-lines:
		if !ok {
			return "", errors.New("no code was pasted (input closed)")
		}
		return line, nil
	}
}

// callback is what the loopback listener received.
type callback struct {
	code string
	err  error
}

// loopbackCode listens on 127.0.0.1 (a random port), sends the browser
// to the portal and waits for the redirect back with the code.
func loopbackCode(ctx context.Context, o LoginOptions, state, verifier string) (code, redirect string, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", fmt.Errorf("listen on 127.0.0.1 for the login redirect: %w", err)
	}
	redirect = "http://" + ln.Addr().String() + "/callback"
	got := make(chan callback, 1)
	srv := &http.Server{Handler: callbackHandler(state, got), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() { // let the page in flight finish, then stop
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()

	authURL := authorizeURL(o, redirect, state, verifier)
	fmt.Fprintf(o.Out, "Opening your browser to log in. If it does not open, visit:\n\n  %s\n\n", authURL)
	open := o.OpenBrowser
	if open == nil {
		open = openBrowser
	}
	if err := open(authURL); err != nil {
		fmt.Fprintf(o.Out, "(could not open a browser: %v; open the URL above, or use --no-browser)\n", err)
	}
	select {
	case <-ctx.Done():
		return "", "", fmt.Errorf("the login did not complete within %v: run portcullis login again (--no-browser if this machine has no browser)", o.Timeout)
	case cb := <-got:
		return cb.code, redirect, cb.err
	}
}

// callbackHandler accepts the one redirect carrying our state.
func callbackHandler(state string, got chan<- callback) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			// Not our login (a stale tab, or a forged request): ignore it.
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, page("This is not the login portcullis is waiting for", "Run portcullis login again."))
			return
		}
		cb := callback{code: q.Get("code")}
		if e := q.Get("error"); e != "" || cb.code == "" {
			cb.err = fmt.Errorf("login refused: %s", strings.TrimSpace(q.Get("error_description")+" ("+e+")"))
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, page("Login failed", q.Get("error_description")))
		} else {
			io.WriteString(w, page("Logged in", "You can close this tab and return to the terminal."))
		}
		// Send the page before the login goes on: the caller then closes
		// this server, and an unflushed page would never reach the browser.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case got <- cb:
		default: // a second redirect: the first one counts
		}
	})
	return mux
}

func page(title, text string) string {
	return "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>portcullis</title></head><body style=\"font-family:sans-serif;margin:4rem\"><h1 id=\"title\">" +
		html.EscapeString(title) + "</h1><p>" + html.EscapeString(text) + "</p></body></html>"
}
