package portal

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/portcullisdb/portcullis/auth/local"
	"github.com/portcullisdb/portcullis/auth/mfa"
	"github.com/portcullisdb/portcullis/directory"
	"github.com/portcullisdb/portcullis/store"
)

// LocalOptions enable local accounts: user name and password (argon2id)
// with TOTP, the /login, /account and /console pages. A local login ends
// like an SSO login (connection "local"), so `portcullis login` works
// for local users too.
//
// Credentials live in a table of their own (store.LocalCredentials),
// never among the directory's attributes, as one value sealed
// (AES-256-GCM) under a key derived from Key and bound to the user id:
// the password hash, the TOTP secret and last accepted step, the
// recovery code hashes and the trusted devices. Every change is a
// compare-and-swap on the credentials' version, so two nodes accepting
// the same TOTP code cannot both win.
type LocalOptions struct {
	Store store.Store
	// Key is at least 32 bytes, the same on every node (derived from the
	// issuer's key-encryption key).
	Key []byte
	// MFARequired makes every local account use TOTP; administrators
	// always do.
	MFARequired bool
	// TrustDays is how long "trust this device" lasts.
	TrustDays int
	// FailuresPerMinute is the wrong-password/code budget per account
	// and per address.
	FailuresPerMinute int
	// Issuer labels the TOTP entry in authenticator apps.
	Issuer string
	// SecureCookies marks every cookie Secure (portal on https).
	SecureCookies bool
	// SessionTTL and AccessTTL as in SSOOptions (used when no SSO is
	// configured).
	SessionTTL, AccessTTL time.Duration
	Roles                 []string
	// AuditFile is the audit log the console shows the tail of.
	AuditFile string
	// Sessions lists this node's live proxied sessions.
	Sessions func() []SessionInfo
	// Mailer sends email login codes to accounts without an
	// authenticator app; nil: every account enrols TOTP. EmailTTL is a
	// code's life.
	Mailer   mfa.Mailer
	EmailTTL time.Duration
}

// AdminRole is the role attribute that opens the console.
const AdminRole = "administrator"

// legacyExtraKey held the sealed credentials in User.Extra before they
// got a table of their own; read once, removed at the next change.
const legacyExtraKey = "urn:portcullis:local:credentials"

// webSessionTTL bounds a browser session of /account and /console.
const webSessionTTL = 8 * time.Hour

// localRuntime is built by mountLocal.
type localRuntime struct {
	opt     *LocalOptions
	creds   sealer // credentials at rest
	cookies sealer // login state, web session and device cookies
	lockout *local.Lockout
	pages   *template.Template
	log     *slog.Logger
	dir     *directory.Directory
}

// failed spends a failed attempt of account from address. A failure that
// cannot be recorded is logged: the attempt itself already failed.
func (lr *localRuntime) failed(ctx context.Context, account, address string) {
	if err := lr.lockout.Failed(ctx, account, address); err != nil {
		lr.log.Error("local login: record a failed attempt", "user", account, "err", err)
	}
}

//go:embed templates/*.html static/*
var webFiles embed.FS

var pageTemplates = template.Must(template.ParseFS(webFiles, "templates/*.html"))

// withLocal adds the "local" connection to the SSO options, making them
// when only local accounts are configured.
func (s *Server) withLocal(o *SSOOptions) *SSOOptions {
	l := s.opt.Local
	if l == nil || len(l.Key) < 32 {
		return o
	}
	if o == nil {
		o = &SSOOptions{Store: l.Store, Key: l.Key, SessionTTL: l.SessionTTL, AccessTTL: l.AccessTTL, Roles: l.Roles, SecureCookies: l.SecureCookies}
		s.opt.SSO = o
	}
	o.Connections = append(o.Connections, SSOConnection{Name: "local", DisplayName: "Username and password", local: true})
	return o
}

func (s *Server) mountLocal(o *LocalOptions) {
	if o == nil {
		return
	}
	if len(o.Key) < 32 || s.sso() == nil {
		s.opt.Log.Error("local accounts are off: their sealing key is shorter than 32 bytes")
		return
	}
	s.local = &localRuntime{opt: o, dir: s.dir, creds: newSealer(o.Key, "portcullis local credentials"),
		cookies: newSealer(o.Key, "portcullis local cookies"), lockout: local.NewLockout(o.Store, o.FailuresPerMinute, o.FailuresPerMinute*4),
		pages: pageTemplates, log: s.opt.Log}
	static, _ := fs.Sub(webFiles, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.loginPassword)
	s.mux.HandleFunc("GET /login/sso/{conn}", s.webSSO)
	s.mux.HandleFunc("GET /login/mfa", s.mfaPage)
	s.mux.HandleFunc("POST /login/mfa", s.mfaSubmit)
	s.mux.HandleFunc("POST /login/mfa/email", s.mfaEmail)
	s.mux.HandleFunc("GET /login/enrol", s.enrolPage)
	s.mux.HandleFunc("POST /login/enrol", s.enrolSubmit)
	s.mux.HandleFunc("POST /login/continue", s.loginContinue)
	s.mux.HandleFunc("POST /logout", s.logout)
	s.mux.HandleFunc("GET /account", s.accountPage)
	s.mux.HandleFunc("POST /account/password", s.accountPassword)
	s.mux.HandleFunc("POST /account/devices/revoke", s.accountRevokeDevices)
	s.mountConsole()
	s.mountAccountMFA()
}

// creds are a local user's secrets, sealed into store.LocalCredentials.
type creds struct {
	PasswordHash string    `json:"pw"`
	PasswordSet  time.Time `json:"pw_at"`
	TOTPSecret   string    `json:"totp,omitempty"`
	TOTPLastStep int64     `json:"totp_step,omitempty"`
	Recovery     []string  `json:"recovery,omitempty"`
	Devices      []device  `json:"devices,omitempty"`
	// Email is the last code sent by email, until used or replaced.
	Email *mfa.EmailCode `json:"email,omitempty"`
}

// device is a browser trusted to skip the second factor until Expires.
type device struct {
	ID      string    `json:"id"`
	Hash    string    `json:"hash"` // SHA-256 of the cookie's secret
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Label   string    `json:"label,omitempty"` // the browser's User-Agent, clipped
}

var errNoCreds = errors.New("not a local account with a password")

// loadCreds opens the user's credentials from their own table (or, for
// an account from before that table, from the legacy sealed value in
// the user's Extra, moved to the table at the next change).
func (lr *localRuntime) loadCreds(ctx context.Context, u store.User) (creds, error) {
	c, _, err := lr.readCreds(ctx, u)
	return c, err
}

// readCreds is loadCreds with the stored version (0: none stored yet).
func (lr *localRuntime) readCreds(ctx context.Context, u store.User) (creds, int64, error) {
	var c creds
	var sealed string
	stored, err := lr.opt.Store.GetLocalCredentials(ctx, u.ID)
	switch {
	case err == nil:
		sealed = string(stored.Sealed)
	case !errors.Is(err, store.ErrNotFound):
		return c, 0, err
	default:
		extra := map[string]json.RawMessage{}
		if len(u.Extra) > 0 {
			json.Unmarshal(u.Extra, &extra)
		}
		raw, ok := extra[legacyExtraKey]
		if !ok && u.Source != store.SourceLocal {
			return c, 0, nil // an SSO user before its first second factor (enforce_mfa)
		}
		if !ok || json.Unmarshal(raw, &sealed) != nil {
			return c, 0, errNoCreds
		}
	}
	plain, err := lr.creds.open(sealed, "creds|"+u.ID)
	if err != nil {
		return c, 0, err
	}
	return c, stored.Version, json.Unmarshal(plain, &c)
}

// sealCreds seals c for user id.
func (lr *localRuntime) sealCreds(id string, c creds) []byte {
	return []byte(lr.creds.seal(mustJSON(c), "creds|"+id))
}

// updateCreds applies change to the user's credentials and saves them
// (through the directory) only if they did not change meanwhile; it
// retries a few times. change returns an error to abort.
func (lr *localRuntime) updateCreds(ctx context.Context, id string, change func(u store.User, c *creds) error) (store.User, error) {
	for range 5 {
		u, err := lr.opt.Store.GetUser(ctx, id)
		if err != nil {
			return u, err
		}
		c, version, err := lr.readCreds(ctx, u)
		if err != nil {
			return u, err
		}
		if err := change(u, &c); err != nil {
			return u, err
		}
		err = lr.dir.SetLocalCredentials(ctx, directory.Actor{Kind: directory.ActorSelf, Name: u.UserName}, u.ID, lr.sealCreds(u.ID, c), version, legacyExtraKey)
		if errors.Is(err, store.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return u, err
		}
		return lr.opt.Store.GetUser(ctx, id)
	}
	return store.User{}, errors.New("the account kept changing: try again")
}

// --- cookies ---

const (
	loginCookie   = "pc_login"
	sessionCookie = "pc_session"
	csrfCookie    = "pc_csrf"
	loginStateTTL = 10 * time.Minute
)

// loginState is a local login between the password and the end, sealed
// in a cookie.
type loginState struct {
	UID     string   `json:"u"`
	Step    string   `json:"s"`           // "mfa", "enrol", "done"
	Secret  string   `json:"t,omitempty"` // TOTP secret being enrolled
	Codes   []string `json:"c,omitempty"` // recovery codes to show once
	Trust   bool     `json:"tr,omitempty"`
	Pending *pending `json:"p,omitempty"` // the CLI's login, if any
	// An SSO login held for portcullis' second factor (enforce_mfa):
	// its connection, IdP subject and IdP refresh token.
	Conn     string `json:"cn,omitempty"`
	Subject  string `json:"sub,omitempty"`
	Upstream string `json:"up,omitempty"`
	// App: the second factor was an authenticator app (TOTP, a recovery
	// code), which the console requires of administrators.
	App     bool  `json:"a,omitempty"`
	Expires int64 `json:"e"`
}

// webSession is a browser signed in to /account and /console.
type webSession struct {
	UID     string `json:"u"`
	MFA     bool   `json:"m"`
	App     bool   `json:"a,omitempty"` // the second factor was an authenticator app, not an email code
	PwAt    int64  `json:"pw"`          // the password it was opened with: a change ends it
	Expires int64  `json:"e"`
}

func (lr *localRuntime) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: lr.opt.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func (lr *localRuntime) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: lr.opt.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func (lr *localRuntime) putSealed(w http.ResponseWriter, name string, v any, ttl time.Duration) {
	lr.setCookie(w, name, lr.cookies.seal(mustJSON(v), name), ttl)
}

func (lr *localRuntime) getSealed(r *http.Request, name string, v any) bool {
	c, err := r.Cookie(name)
	if err != nil {
		return false
	}
	plain, err := lr.cookies.open(c.Value, name)
	return err == nil && json.Unmarshal(plain, v) == nil
}

func (lr *localRuntime) getLogin(r *http.Request) (loginState, bool) {
	var st loginState
	ok := lr.getSealed(r, loginCookie, &st)
	return st, ok && time.Now().Unix() < st.Expires
}

// session returns the signed-in user, checked against the store: active,
// and the password unchanged since the session began.
func (lr *localRuntime) session(r *http.Request) (store.User, webSession, bool) {
	var ws webSession
	if !lr.getSealed(r, sessionCookie, &ws) || time.Now().Unix() >= ws.Expires {
		return store.User{}, ws, false
	}
	u, err := lr.opt.Store.GetUser(r.Context(), ws.UID)
	if err != nil || !u.Active {
		return u, ws, false
	}
	c, err := lr.loadCreds(r.Context(), u)
	if err != nil || c.PasswordSet.UnixMicro() != ws.PwAt {
		return u, ws, false
	}
	return u, ws, true
}

// deviceCookie names the trust cookie of one user, so two people sharing
// a browser do not clash.
func deviceCookie(uid string) string {
	sum := sha256.Sum256([]byte(uid))
	return "pc_trust_" + hex.EncodeToString(sum[:6])
}

// trustedDevice reports whether this browser holds a live trust record
// of the user.
func (lr *localRuntime) trustedDevice(r *http.Request, uid string, c creds) bool {
	var d struct {
		ID     string `json:"i"`
		Secret string `json:"s"`
	}
	if !lr.getSealed(r, deviceCookie(uid), &d) {
		return false
	}
	h := hashSecret("trusted device", d.Secret)
	for _, rec := range c.Devices {
		if rec.ID == d.ID && time.Now().Before(rec.Expires) && subtle.ConstantTimeCompare([]byte(rec.Hash), []byte(hex.EncodeToString(h))) == 1 {
			return true
		}
	}
	return false
}

// --- CSRF: a random token in a SameSite=Strict cookie, repeated in every form ---

func (lr *localRuntime) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	tok := randomToken(32)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", HttpOnly: true, Secure: lr.opt.SecureCookies, SameSite: http.SameSiteStrictMode})
	return tok
}

// csrfOK checks a POST's form token against the cookie.
func (lr *localRuntime) csrfOK(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) == 1
}

// --- rendering ---

// view is what every page template gets.
type view struct {
	Title    string
	CSRF     string
	Error    string
	Notice   string
	User     string
	SignedIn bool // a browser session: the header offers Log out
	Admin    bool
	Pending  string // the sealed CLI login, carried through the login form
	Data     any
}

// render writes a page; never cached or framed, and nothing but this
// origin's stylesheet and inline images (the QR code) may load.
func (lr *localRuntime) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	v.CSRF = lr.csrfToken(w, r)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if err := lr.pages.ExecuteTemplate(w, name, v); err != nil {
		w.Write([]byte("page error"))
	}
}
