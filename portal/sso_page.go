package portal

import (
	"html/template"
	"net/http"
)

// pageData fills the portal's one login page.
type pageData struct {
	Title   string
	Error   string // a refusal to show
	User    string // logged in as
	Code    string // the code to paste into the terminal
	Minutes int    // how long the code is valid
}

var page = template.Must(template.New("sso").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>portcullis: {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}
code{font-size:2rem;letter-spacing:.15rem;background:#f3f3f3;padding:.4rem .8rem;border-radius:.3rem}
.err{color:#a00}</style></head><body>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>
{{else if .Code}}<p>You are logged in as <b>{{.User}}</b>. Paste this code into the terminal where <tt>portcullis login</tt> waits:</p>
<p><code id="code">{{.Code}}</code></p><p>It works once, within {{.Minutes}} minutes. You can close this page.</p>
{{else}}<p>You are logged in as <b>{{.User}}</b>. You can close this page and return to the terminal.</p>{{end}}
</body></html>`))

// renderPage writes the page; it is never cached or framed.
func renderPage(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	page.Execute(w, d)
}
