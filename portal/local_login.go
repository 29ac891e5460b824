package portal

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth/local"
	"github.com/portcullisdb/portcullis/auth/mfa"
	"github.com/portcullisdb/portcullis/auth/username"
	"github.com/portcullisdb/portcullis/store"
)

// The local login, in the browser:
//
//	GET /login (from /v1/sso/authorize?connection=local for the CLI: ?p=sealed login)
//	POST /login user name + password (argon2id; lockout per account and address)
//	  -> /login/enrol the first time: QR code + secret, one code confirms it,
//	     then the recovery codes, shown once -> POST /login/continue
//	  -> /login/mfa otherwise, unless this browser is trusted: a TOTP or a
//	     recovery code, "trust this device"
//	end: the CLI's one-time code (as for SSO), or a browser session for
//	     /account and /console

const pendingAAD = "local-pending"

// localAuthorize sends the CLI's login to the local login page.
func (s *Server) localAuthorize(w http.ResponseWriter, r *http.Request, rt *ssoRuntime, p pending) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/login?p="+url.QueryEscape(rt.state.seal(mustJSON(p), pendingAAD)), http.StatusFound)
}

// ssoLinks are the enabled IdP connections: restarting the CLI's login
// there, or (p nil) a browser login.
func (s *Server) ssoLinks(r *http.Request, p *pending) []map[string]string {
	enabled, err := s.enabledConnections(r.Context())
	if err != nil {
		s.opt.Log.Error("login page: read the connections' state", "err", err)
	}
	var out []map[string]string
	for _, c := range enabled {
		link := "/login/sso/" + url.PathEscape(c.Name)
		if p != nil {
			v := url.Values{"connection": {c.Name}, "redirect_uri": {p.Redirect}, "state": {p.State},
				"code_challenge": {p.Challenge}, "code_challenge_method": {"S256"}}
			link = "/v1/sso/authorize?" + v.Encode()
		}
		out = append(out, map[string]string{"Name": c.DisplayName, "URL": link})
	}
	return out
}

func (s *Server) openLocalPending(sealed string) (*pending, error) {
	if sealed == "" {
		return nil, nil
	}
	p, err := s.sso().openPending(sealed, pendingAAD, "local")
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	lr := s.local
	sealed := r.URL.Query().Get("p")
	p, err := s.openLocalPending(sealed)
	if err != nil {
		lr.render(w, r, http.StatusBadRequest, "login", view{Title: "Log in", Error: "this login link is damaged or older than 10 minutes: run portcullis login again"})
		return
	}
	if p == nil {
		if _, _, ok := lr.session(r); ok {
			http.Redirect(w, r, "/account", http.StatusSeeOther)
			return
		}
	}
	lr.render(w, r, http.StatusOK, "login", view{Title: "Log in", Pending: sealed, Data: s.ssoLinks(r, p)})
}

// loginPassword checks the user name and password.
func (s *Server) loginPassword(w http.ResponseWriter, r *http.Request) {
	lr := s.local
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	ip := clientIP(r)
	sealed := r.PostFormValue("p")
	p, perr := s.openLocalPending(sealed)
	fail := func(status int, msg string) {
		lr.render(w, r, status, "login", view{Title: "Log in", Error: msg, Pending: sealed, Data: s.ssoLinks(r, p)})
	}
	if !lr.csrfOK(r) {
		fail(http.StatusForbidden, "the form expired or came from another site: reload the page and try again")
		return
	}
	if perr != nil {
		fail(http.StatusBadRequest, "this login link is damaged or older than 10 minutes: run portcullis login again")
		return
	}
	name, password := r.PostFormValue("username"), r.PostFormValue("password")
	name, nerr := username.Display(name)
	if nerr != nil {
		fail(http.StatusBadRequest, nerr.Error())
		return
	}
	if err := lr.lockout.Check(r.Context(), name, ip); err != nil {
		s.record(audit.Event{Event: "local_login", Outcome: "denied", Reason: err.Error(), ClientAddr: ip, User: name})
		fail(lockoutStatus(err), err.Error())
		return
	}
	u, err := lr.opt.Store.GetUserByName(r.Context(), name)
	var c creds
	if err == nil {
		c, err = lr.loadCreds(u)
	}
	if err == nil && c.PasswordHash == "" {
		err = errNoCreds // an SSO user: no password here
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, errNoCreds) {
		s.opt.Log.Error("local login: read the account", "err", err)
		fail(http.StatusInternalServerError, "the login failed: see the server log")
		return
	}
	if err != nil {
		local.VerifyDummy(password)
	} else {
		err = local.Verify(c.PasswordHash, password)
	}
	if err != nil {
		lr.failed(r.Context(), name, ip)
		s.record(audit.Event{Event: "local_login", Outcome: "denied", Reason: "wrong user name or password", ClientAddr: ip, User: name})
		fail(http.StatusUnauthorized, "wrong user name or password")
		return
	}
	if !u.Active {
		s.record(audit.Event{Event: "local_login", Outcome: "denied", Reason: "account deactivated", ClientAddr: ip, User: u.UserName})
		fail(http.StatusForbidden, u.UserName+" is deactivated in portcullis' directory: ask an administrator")
		return
	}
	// Checked after the password, so the refusal tells nothing to
	// someone without it.
	enabled, err := s.enabledConnections(r.Context())
	if err != nil {
		s.opt.Log.Error("local login: read the connections' state", "err", err)
		fail(http.StatusInternalServerError, "the login failed: see the server log")
		return
	}
	if msg := passwordRefusal(u, enabled); msg != "" {
		s.record(audit.Event{Event: "local_login", Outcome: "denied", Reason: "password login off: single sign-on is on", ClientAddr: ip, User: u.UserName})
		fail(http.StatusForbidden, msg)
		return
	}
	st := loginState{UID: u.ID, Pending: p, Expires: time.Now().Add(loginStateTTL).Unix()}
	switch {
	case !lr.opt.MFARequired && u.Role != AdminRole && c.TOTPSecret == "":
		s.finishLocal(w, r, u, st, false)
		return
	case lr.trustedDevice(r, u.ID, c):
		s.finishLocal(w, r, u, st, true)
	case c.TOTPSecret == "" && lr.opt.Mailer != nil && emailOf(u) != "":
		if err := s.sendEmailCode(r, u); err != nil {
			fail(http.StatusBadGateway, err.Error())
			return
		}
		st.Step = "mfa"
		lr.putSealed(w, loginCookie, st, loginStateTTL)
		http.Redirect(w, r, "/login/mfa?sent=1", http.StatusSeeOther)
	case c.TOTPSecret == "":
		e, err := mfa.NewEnrolment(lr.opt.Issuer, u.UserName)
		if err != nil {
			s.opt.Log.Error("local login: new TOTP secret", "err", err)
			fail(http.StatusInternalServerError, "the login failed: see the server log")
			return
		}
		st.Step, st.Secret = "enrol", e.Secret
		lr.putSealed(w, loginCookie, st, loginStateTTL)
		http.Redirect(w, r, "/login/enrol", http.StatusSeeOther)
	default:
		st.Step = "mfa"
		lr.putSealed(w, loginCookie, st, loginStateTTL)
		http.Redirect(w, r, "/login/mfa", http.StatusSeeOther)
	}
}

// loginStep reads the login in progress, or sends the browser back to
// the start.
func (s *Server) loginStep(w http.ResponseWriter, r *http.Request, step string) (loginState, store.User, bool) {
	lr := s.local
	st, ok := lr.getLogin(r)
	if !ok || st.Step != step {
		lr.render(w, r, http.StatusBadRequest, "login", view{Title: "Log in", Error: "this login expired or was not started in this browser: log in again"})
		return st, store.User{}, false
	}
	u, err := lr.opt.Store.GetUser(r.Context(), st.UID)
	if err != nil || !u.Active {
		lr.render(w, r, http.StatusForbidden, "login", view{Title: "Log in", Error: "this account is no longer active: ask an administrator"})
		return st, u, false
	}
	return st, u, true
}

// postedLoginStep is loginStep for a form post: the body is limited and
// the CSRF token checked first.
func (s *Server) postedLoginStep(w http.ResponseWriter, r *http.Request, step string) (loginState, store.User, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if !s.local.csrfOK(r) {
		s.local.render(w, r, http.StatusForbidden, "login", view{Title: "Log in", Error: "the form expired or came from another site: log in again"})
		return loginState{}, store.User{}, false
	}
	return s.loginStep(w, r, step)
}

type enrolData struct {
	QR          template.URL // a data: URL this package made, so safe to trust
	Secret, URI string
}

func (s *Server) enrolPage(w http.ResponseWriter, r *http.Request) {
	st, u, ok := s.loginStep(w, r, "enrol")
	if !ok {
		return
	}
	s.renderEnrol(w, r, http.StatusOK, u, st, "")
}

func (s *Server) renderEnrol(w http.ResponseWriter, r *http.Request, status int, u store.User, st loginState, msg string) {
	e, err := mfa.EnrolmentFor(s.local.opt.Issuer, u.UserName, st.Secret)
	if err != nil {
		s.opt.Log.Error("local login: TOTP enrolment", "err", err)
	}
	s.local.render(w, r, status, "enrol", view{Title: "Set up your authenticator", User: u.UserName, Error: msg,
		Data: enrolData{QR: template.URL(e.QRPNG), Secret: e.Secret, URI: e.URI}})
}

// enrolSubmit confirms the new secret with one code, keeps it, and shows
// the recovery codes once.
func (s *Server) enrolSubmit(w http.ResponseWriter, r *http.Request) {
	lr := s.local
	ip := clientIP(r)
	st, u, ok := s.postedLoginStep(w, r, "enrol")
	if !ok {
		return
	}
	if err := lr.lockout.Check(r.Context(), u.UserName, ip); err != nil {
		s.renderEnrol(w, r, lockoutStatus(err), u, st, err.Error())
		return
	}
	step, err := mfa.Verify(st.Secret, r.PostFormValue("code"), time.Now(), 0)
	if err != nil {
		lr.failed(r.Context(), u.UserName, ip)
		s.record(audit.Event{Event: "local_mfa", Outcome: "denied", Reason: "enrolment: " + err.Error(), ClientAddr: ip, User: u.UserName})
		s.renderEnrol(w, r, http.StatusUnauthorized, u, st, "that code does not match: check the time on your phone and enter the current code")
		return
	}
	codes, hashes := mfa.NewRecoveryCodes()
	u, err = lr.updateCreds(r.Context(), u.ID, func(_ store.User, c *creds) error {
		if c.TOTPSecret != "" {
			return errors.New("an authenticator was enrolled meanwhile")
		}
		c.TOTPSecret, c.TOTPLastStep, c.Recovery = st.Secret, step, hashes
		return nil
	})
	if err != nil {
		s.opt.Log.Error("local login: save TOTP enrolment", "user", u.UserName, "err", err)
		lr.render(w, r, http.StatusConflict, "login", view{Title: "Log in", Error: "the authenticator could not be saved: log in again"})
		return
	}
	s.record(audit.Event{Event: "local_mfa", Outcome: "granted", Reason: "TOTP enrolled", ClientAddr: ip, User: u.UserName})
	st.Step, st.Secret = "done", ""
	lr.putSealed(w, loginCookie, st, loginStateTTL)
	lr.render(w, r, http.StatusOK, "recovery", view{Title: "Save your recovery codes", User: u.UserName, Data: codes})
}

// loginContinue ends a login after the recovery codes were shown.
func (s *Server) loginContinue(w http.ResponseWriter, r *http.Request) {
	if !s.local.csrfOK(r) {
		s.local.render(w, r, http.StatusForbidden, "login", view{Title: "Log in", Error: "the form expired or came from another site: log in again"})
		return
	}
	st, u, ok := s.loginStep(w, r, "done")
	if !ok {
		return
	}
	s.finishLocal(w, r, u, st, true)
}

type mfaData struct {
	TrustDays int
	Email     string // masked address codes go to; "" when email codes are off
	TOTP      bool
}

func (s *Server) mfaView(u store.User, msg, notice string) view {
	lr := s.local
	d := mfaData{TrustDays: lr.opt.TrustDays}
	if c, err := lr.loadCreds(u); err == nil {
		d.TOTP = c.TOTPSecret != ""
	}
	if lr.opt.Mailer != nil {
		d.Email = maskEmail(emailOf(u))
	}
	return view{Title: "Two-step verification", User: u.UserName, Error: msg, Notice: notice, Data: d}
}

func (s *Server) mfaPage(w http.ResponseWriter, r *http.Request) {
	if _, u, ok := s.loginStep(w, r, "mfa"); ok {
		notice := ""
		if r.URL.Query().Get("sent") != "" {
			notice = "We emailed a code to " + maskEmail(emailOf(u)) + "."
		}
		s.local.render(w, r, http.StatusOK, "mfa", s.mfaView(u, "", notice))
	}
}

// mfaEmail sends a (new) code by email.
func (s *Server) mfaEmail(w http.ResponseWriter, r *http.Request) {
	lr := s.local
	_, u, ok := s.postedLoginStep(w, r, "mfa")
	if !ok {
		return
	}
	if err := lr.lockout.Check(r.Context(), u.UserName, clientIP(r)); err != nil {
		lr.render(w, r, lockoutStatus(err), "mfa", s.mfaView(u, err.Error(), ""))
		return
	}
	if lr.opt.Mailer == nil || emailOf(u) == "" {
		lr.render(w, r, http.StatusBadRequest, "mfa", s.mfaView(u, "email codes are off for this account", ""))
		return
	}
	if err := s.sendEmailCode(r, u); err != nil {
		lr.render(w, r, http.StatusBadGateway, "mfa", s.mfaView(u, err.Error(), ""))
		return
	}
	http.Redirect(w, r, "/login/mfa?sent=1", http.StatusSeeOther)
}

// sendEmailCode makes a new code (replacing any earlier one) and mails it.
func (s *Server) sendEmailCode(r *http.Request, u store.User) error {
	lr := s.local
	code, rec := mfa.NewEmailCode(time.Now(), lr.opt.EmailTTL)
	if _, err := lr.updateCreds(r.Context(), u.ID, func(_ store.User, c *creds) error {
		c.Email = &rec
		return nil
	}); err != nil {
		s.opt.Log.Error("local login: keep the email code", "user", u.UserName, "err", err)
		return errors.New("the code could not be sent: see the server log")
	}
	body := "Your portcullis login code is " + code + "\n\nIt works once, within " + lr.opt.EmailTTL.String() +
		". If you did not try to log in, change your password."
	if err := lr.opt.Mailer.Send(r.Context(), emailOf(u), "portcullis login code", body); err != nil {
		s.opt.Log.Error("local login: send the email code", "user", u.UserName, "err", err)
		return errors.New("the code could not be emailed: try again, or use your authenticator app")
	}
	s.record(audit.Event{Event: "local_mfa", Outcome: "granted", Reason: "email code sent", ClientAddr: clientIP(r), User: u.UserName})
	return nil
}

// emailOf is where email codes go: the primary address, or the user name
// when it is an address.
func emailOf(u store.User) string {
	for _, e := range u.Emails {
		if e.Primary {
			return e.Value
		}
	}
	if len(u.Emails) > 0 {
		return u.Emails[0].Value
	}
	if strings.Contains(u.UserName, "@") {
		return u.UserName
	}
	return ""
}

// maskEmail shows enough of an address to recognise it.
func maskEmail(addr string) string {
	at := strings.IndexByte(addr, '@')
	if at < 1 {
		return addr
	}
	return addr[:1] + strings.Repeat("*", min(at-1, 6)) + addr[at:]
}

// mfaSubmit checks a TOTP code (each one works once) or a recovery code.
func (s *Server) mfaSubmit(w http.ResponseWriter, r *http.Request) {
	lr := s.local
	ip := clientIP(r)
	st, u, ok := s.postedLoginStep(w, r, "mfa")
	if !ok {
		return
	}
	again := func(status int, msg string) {
		lr.render(w, r, status, "mfa", s.mfaView(u, msg, ""))
	}
	if err := lr.lockout.Check(r.Context(), u.UserName, ip); err != nil {
		again(lockoutStatus(err), err.Error())
		return
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	how := "TOTP"
	trust := r.PostFormValue("trust") == "on"
	var deviceID, deviceSecret string
	if trust {
		deviceID, deviceSecret = randomToken(12), randomToken(32)
	}
	u, err := lr.updateCreds(r.Context(), u.ID, func(_ store.User, c *creds) error {
		switch n := len(strings.ReplaceAll(code, " ", "")); {
		case n == mfa.EmailCodeDigits && c.Email != nil:
			if err := c.Email.Check(code, time.Now()); err != nil {
				return err
			}
			c.Email, how = nil, "email code"
		case n == mfa.Digits.Length():
			step, err := mfa.Verify(c.TOTPSecret, code, time.Now(), c.TOTPLastStep)
			if err != nil {
				return err
			}
			c.TOTPLastStep = step
		default:
			rest, ok := mfa.UseRecovery(c.Recovery, code)
			if !ok {
				return mfa.ErrBadCode
			}
			c.Recovery, how = rest, "recovery code"
		}
		if trust {
			now := time.Now().UTC()
			live := c.Devices[:0]
			for _, d := range c.Devices {
				if now.Before(d.Expires) {
					live = append(live, d)
				}
			}
			c.Devices = append(live, device{ID: deviceID, Hash: hex.EncodeToString(hashSecret("trusted device", deviceSecret)),
				Created: now, Expires: now.AddDate(0, 0, lr.opt.TrustDays), Label: clip(r.UserAgent())})
		}
		return nil
	})
	if err != nil {
		lr.failed(r.Context(), u.UserName, ip)
		s.record(audit.Event{Event: "local_mfa", Outcome: "denied", Reason: err.Error(), ClientAddr: ip, User: u.UserName})
		if errors.Is(err, mfa.ErrBadCode) || errors.Is(err, mfa.ErrReplay) || errors.Is(err, mfa.ErrExpired) {
			again(http.StatusUnauthorized, err.Error())
			return
		}
		s.opt.Log.Error("local login: second factor", "user", u.UserName, "err", err)
		again(http.StatusInternalServerError, "the check failed: see the server log")
		return
	}
	if trust {
		lr.putSealed(w, deviceCookie(u.ID), map[string]string{"i": deviceID, "s": deviceSecret}, time.Duration(lr.opt.TrustDays)*24*time.Hour)
	}
	s.record(audit.Event{Event: "local_mfa", Outcome: "granted", Reason: how, ClientAddr: ip, User: u.UserName})
	s.finishLocal(w, r, u, st, true)
}

// finishLocal ends a local login: for the CLI as an SSO login ends, else
// with a browser session.
func (s *Server) finishLocal(w http.ResponseWriter, r *http.Request, u store.User, st loginState, mfaDone bool) {
	lr := s.local
	lr.clearCookie(w, loginCookie)
	if st.Pending != nil && st.Pending.Redirect != webRedirect {
		rt := s.sso()
		conn, subject := rt.conns["local"], u.ID
		if st.Conn != "" {
			conn, subject = rt.conns[st.Conn], st.Subject
		}
		if conn == nil {
			lr.render(w, r, http.StatusBadRequest, "login", view{Title: "Log in", Error: "the IdP connection of this login is no longer configured: run portcullis login again"})
			return
		}
		s.issueCode(w, r, rt, conn, *st.Pending, u, subject, st.Upstream)
		return
	}
	if st.Conn != "" { // an SSO login, now complete
		u = s.noteSSOLogin(r.Context(), lr.opt.Store, u)
	}
	c, err := lr.loadCreds(u)
	if err != nil {
		s.opt.Log.Error("local login: read the account", "err", err)
		lr.render(w, r, http.StatusInternalServerError, "login", view{Title: "Log in", Error: "the login failed: see the server log"})
		return
	}
	lr.putSealed(w, sessionCookie, webSession{UID: u.ID, MFA: mfaDone, PwAt: c.PasswordSet.UnixMicro(),
		Expires: time.Now().Add(webSessionTTL).Unix()}, webSessionTTL)
	s.record(audit.Event{Event: "local_login", Outcome: "granted", Reason: "browser session", ClientAddr: clientIP(r), User: u.UserName, Identity: u.UserName, Role: u.Role, Issuer: st.Conn})
	target := "/account"
	if u.Role == AdminRole {
		target = "/console"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	lr := s.local
	if !lr.csrfOK(r) {
		lr.render(w, r, http.StatusForbidden, "login", view{Title: "Log in", Error: "the form expired or came from another site: reload the page"})
		return
	}
	if u, _, ok := lr.session(r); ok {
		s.record(audit.Event{Event: "local_logout", Outcome: "closed", ClientAddr: clientIP(r), User: u.UserName})
	}
	lr.clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type accountData struct {
	Role, Source string
	Password     bool // a local password (SSO users have none)
	TOTP         bool
	Recovery     int
	Devices      []device
}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request) {
	s.renderAccount(w, r, http.StatusOK, "", "")
}

func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, status int, msg, notice string) {
	lr := s.local
	u, _, ok := lr.session(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	c, _ := lr.loadCreds(u)
	d := accountData{Role: u.Role, Source: u.Source, Password: c.PasswordHash != "", TOTP: c.TOTPSecret != "", Recovery: len(c.Recovery)}
	for _, dev := range c.Devices {
		if time.Now().Before(dev.Expires) {
			d.Devices = append(d.Devices, dev)
		}
	}
	lr.render(w, r, status, "account", view{Title: "Your account", User: u.UserName, SignedIn: true, Admin: u.Role == AdminRole, Error: msg, Notice: notice, Data: d})
}

// accountPassword changes the password; every trusted device and every
// other session of the user end with it.
func (s *Server) accountPassword(w http.ResponseWriter, r *http.Request) {
	lr := s.local
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	ip := clientIP(r)
	u, ws, ok := lr.session(r)
	if !ok || !lr.csrfOK(r) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if err := lr.lockout.Check(r.Context(), u.UserName, ip); err != nil {
		s.renderAccount(w, r, lockoutStatus(err), err.Error(), "")
		return
	}
	cur, next := r.PostFormValue("current"), r.PostFormValue("new")
	if p := local.PasswordProblem(next); p != "" {
		s.renderAccount(w, r, http.StatusBadRequest, p, "")
		return
	}
	if next != r.PostFormValue("confirm") {
		s.renderAccount(w, r, http.StatusBadRequest, "the new password and its confirmation differ", "")
		return
	}
	hash := local.Hash(next)
	u, err := lr.updateCreds(r.Context(), u.ID, func(_ store.User, c *creds) error {
		if err := local.Verify(c.PasswordHash, cur); err != nil {
			return err
		}
		c.PasswordHash, c.PasswordSet, c.Devices = hash, time.Now().UTC(), nil
		return nil
	})
	if errors.Is(err, local.ErrMismatch) {
		lr.failed(r.Context(), u.UserName, ip)
		s.record(audit.Event{Event: "local_password", Outcome: "denied", Reason: "wrong current password", ClientAddr: ip, User: u.UserName})
		s.renderAccount(w, r, http.StatusUnauthorized, "the current password is wrong", "")
		return
	} else if err != nil {
		s.opt.Log.Error("local: change password", "user", u.UserName, "err", err)
		s.renderAccount(w, r, http.StatusInternalServerError, "the password could not be changed: see the server log", "")
		return
	}
	if _, err := lr.opt.Store.RevokeUserRefreshTokens(r.Context(), u.ID, time.Now()); err != nil {
		s.opt.Log.Error("local: revoke refresh tokens after a password change", "user", u.UserName, "err", err)
	}
	c, _ := lr.loadCreds(u)
	lr.putSealed(w, sessionCookie, webSession{UID: u.ID, MFA: ws.MFA, PwAt: c.PasswordSet.UnixMicro(), Expires: ws.Expires}, time.Until(time.Unix(ws.Expires, 0)))
	lr.clearCookie(w, deviceCookie(u.ID))
	s.record(audit.Event{Event: "local_password", Outcome: "granted", Reason: "password changed; trusted devices and logins revoked", ClientAddr: ip, User: u.UserName})
	http.Redirect(w, r, "/account?changed=1", http.StatusSeeOther)
}

func (s *Server) accountRevokeDevices(w http.ResponseWriter, r *http.Request) {
	lr := s.local
	u, _, ok := lr.session(r)
	if !ok || !lr.csrfOK(r) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	id := r.PostFormValue("device") // empty: all
	if _, err := lr.updateCreds(r.Context(), u.ID, func(_ store.User, c *creds) error {
		keep := c.Devices[:0]
		for _, d := range c.Devices {
			if id != "" && d.ID != id {
				keep = append(keep, d)
			}
		}
		c.Devices = keep
		return nil
	}); err != nil {
		s.opt.Log.Error("local: revoke trusted devices", "user", u.UserName, "err", err)
	}
	s.record(audit.Event{Event: "local_device", Outcome: "closed", Reason: "trusted device revoked", ClientAddr: clientIP(r), User: u.UserName})
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// mountLocalAdmin adds POST /v1/admin/users/local: a local account with
// a random initial password, returned once.
func (s *Server) mountLocalAdmin(a AdminOptions, guard func(http.HandlerFunc) http.HandlerFunc) {
	s.mux.HandleFunc("POST /v1/admin/users/local", guard(func(w http.ResponseWriter, r *http.Request) {
		lr := s.local
		if lr == nil {
			oauthError(w, http.StatusNotFound, "not_found", "local accounts are off: set local.enabled: true in the server's config")
			return
		}
		var body struct {
			UserName    string `json:"user_name"`
			Role        string `json:"role"`
			DisplayName string `json:"display_name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.UserName == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request", `the body must be JSON: {"user_name": "...", "role": "..."}`)
			return
		}
		if body.Role != "" && body.Role != AdminRole && !slices.Contains(a.Roles, body.Role) {
			oauthError(w, http.StatusBadRequest, "invalid_request", "role "+body.Role+" is not configured: use one of "+strings.Join(append(append([]string{}, a.Roles...), AdminRole), ", "))
			return
		}
		name := body.UserName
		u, password, err := s.createLocalUser(r.Context(), a.Store, name, body.Role, body.DisplayName)
		var (
			syncOn *syncOnError
			bad    inputError
		)
		switch {
		case errors.As(err, &bad):
			oauthError(w, http.StatusBadRequest, "invalid_request", "user_name: "+bad.Error())
			return
		case errors.As(err, &syncOn):
			s.record(audit.Event{Event: "admin", Outcome: "denied", Reason: "create local user " + name + ": directory sync is on", ClientAddr: clientIP(r), User: name})
			oauthError(w, http.StatusConflict, "directory_sync_on", err.Error())
			return
		case errors.Is(err, store.ErrConflict):
			oauthError(w, http.StatusConflict, "conflict", "a user named "+name+" already exists")
			return
		case err != nil:
			s.internal(w, err)
			return
		}
		s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "create local user " + u.UserName, ClientAddr: clientIP(r), User: u.UserName})
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusCreated, map[string]string{"id": u.ID, "user_name": u.UserName, "role": u.Role, "password": password})
	}))
}

// ssoSecondFactor holds an SSO login of a connection with enforce_mfa
// for portcullis' own second factor (TOTP, or an email code), then ends
// it as the SSO login would have ended.
func (s *Server) ssoSecondFactor(w http.ResponseWriter, r *http.Request, rt *ssoRuntime, conn *SSOConnection, p pending, u store.User, subject, upstream string) {
	lr := s.local
	c, err := lr.loadCreds(u)
	if err != nil {
		s.loginInternal(w, r, &p, conn.Name, err)
		return
	}
	st := loginState{UID: u.ID, Pending: &p, Conn: conn.Name, Subject: subject, Upstream: upstream, Expires: time.Now().Add(loginStateTTL).Unix()}
	switch {
	case lr.trustedDevice(r, u.ID, c):
		s.issueCode(w, r, rt, conn, p, u, subject, upstream)
		return
	case c.TOTPSecret == "" && lr.opt.Mailer != nil && emailOf(u) != "":
		if err := s.sendEmailCode(r, u); err != nil {
			s.loginFailed(w, r, &p, conn.Name, badLogin(http.StatusBadGateway, "temporarily_unavailable", "%s", err.Error()))
			return
		}
		st.Step = "mfa"
		lr.putSealed(w, loginCookie, st, loginStateTTL)
		http.Redirect(w, r, "/login/mfa?sent=1", http.StatusSeeOther)
	case c.TOTPSecret == "":
		e, err := mfa.NewEnrolment(lr.opt.Issuer, u.UserName)
		if err != nil {
			s.loginInternal(w, r, &p, conn.Name, err)
			return
		}
		st.Step, st.Secret = "enrol", e.Secret
		lr.putSealed(w, loginCookie, st, loginStateTTL)
		http.Redirect(w, r, "/login/enrol", http.StatusSeeOther)
	default:
		st.Step = "mfa"
		lr.putSealed(w, loginCookie, st, loginStateTTL)
		http.Redirect(w, r, "/login/mfa", http.StatusSeeOther)
	}
	s.record(audit.Event{Event: "sso_login", Outcome: "granted", Reason: "IdP login accepted; portcullis' second factor required (enforce_mfa)",
		ClientAddr: clientIP(r), User: u.UserName, Issuer: conn.Name, Subject: subject})
}

// lockoutStatus is the HTTP status of a lockout refusal: 429 for a locked
// account or address, 503 when the failure counts cannot be read.
func lockoutStatus(err error) int {
	var ue *local.UnavailableError
	if errors.As(err, &ue) {
		return http.StatusServiceUnavailable
	}
	return http.StatusTooManyRequests
}
