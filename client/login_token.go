package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/cli/browser"
)

// tokenResponse is the portal's answer to the code and refresh grants.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	Username         string `json:"username"`
	Connection       string `json:"connection"`
	sent             time.Time
}

func (t tokenResponse) entry(server string) Entry {
	e := Entry{Server: server, AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, Username: t.Username, Method: MethodLogin,
		IssuedAt: t.sent, ExpiresAt: t.sent.Add(time.Duration(t.ExpiresIn) * time.Second), Connection: t.Connection}
	if t.RefreshToken != "" && t.RefreshExpiresIn > 0 {
		e.SessionEnds = t.sent.Add(time.Duration(t.RefreshExpiresIn) * time.Second)
	}
	return e
}

// MethodLogin marks cache entries of `portcullis login`.
const MethodLogin = "login"

// TokenError is the portal's refusal of a token request.
type TokenError struct {
	Status      int
	Code        string // OAuth error code, e.g. invalid_grant
	Description string
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("portcullis refused (%s): %s", e.Code, e.Description)
}

// postToken posts a grant to the token endpoint.
func postToken(ctx context.Context, endpoint string, form url.Values) (tokenResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return tokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sent := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return tokenResponse{}, fmt.Errorf("reach the token endpoint %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	var body struct {
		tokenResponse
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return tokenResponse{}, fmt.Errorf("token endpoint answered %s with no JSON", resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return tokenResponse{}, &TokenError{Status: resp.StatusCode, Code: body.Error, Description: body.Description}
	}
	if body.AccessToken == "" {
		return tokenResponse{}, fmt.Errorf("token endpoint answered %s with no access token", resp.Status)
	}
	body.sent = sent
	return body.tokenResponse, nil
}

// openBrowser runs $BROWSER with the URL, or the system's opener. It
// does not wait for the browser: a browser that is also the opener would
// block until closed.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	if b := strings.Fields(os.Getenv("BROWSER")); len(b) > 0 {
		cmd = exec.Command(b[0], append(b[1:], u)...)
	} else {
		browser.Stdout, browser.Stderr = io.Discard, io.Discard
		done := make(chan error, 1)
		go func() { done <- browser.OpenURL(u) }()
		select {
		case err := <-done:
			return err
		case <-time.After(3 * time.Second):
			return nil // still running: it opened
		}
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
