package portal

import (
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth/mfa"
	"github.com/portcullisdb/portcullis/store"
)

// The second factors of a local account, on /account: people without
// SSO get email codes by default (when a mailer is configured) and may
// add an authenticator app, or remove it again as long as one factor
// stays: email codes for the account, never for an administrator (the
// console takes an app).

const (
	enrolCookie   = "pc_enrol"
	enrolTTL      = 10 * time.Minute
	accountEnrol  = "/account/totp"
	accountRemove = "/account/totp/remove"
)

// accountEnrolment is an authenticator being added from /account.
type accountEnrolment struct {
	UID     string `json:"u"`
	Secret  string `json:"t"`
	Expires int64  `json:"e"`
}

func (s *Server) mountAccountMFA() {
	s.mux.HandleFunc("POST /account/totp/start", s.accountTOTPStart)
	s.mux.HandleFunc("POST "+accountEnrol, s.accountTOTPConfirm)
	s.mux.HandleFunc("POST "+accountRemove, s.accountTOTPRemove)
}

// emailFactor reports whether u can use email codes instead of an app.
func (lr *localRuntime) emailFactor(u store.User) bool {
	return lr.opt.Mailer != nil && emailOf(u) != "" && u.Role != AdminRole
}

// accountSession is the signed-in user of a posted /account form.
func (s *Server) accountSession(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	lr := s.local
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	u, _, ok := lr.session(r)
	if !ok || !lr.csrfOK(r) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return u, false
	}
	return u, true
}

// accountTOTPStart shows a new authenticator secret to scan.
func (s *Server) accountTOTPStart(w http.ResponseWriter, r *http.Request) {
	lr := s.local
	u, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	if c, err := lr.loadCreds(r.Context(), u); err == nil && c.TOTPSecret != "" {
		s.renderAccount(w, r, http.StatusConflict, "an authenticator app is already on: remove it first to add another", "")
		return
	}
	e, err := mfa.NewEnrolment(lr.opt.Issuer, u.UserName)
	if err != nil {
		s.opt.Log.Error("account: new TOTP secret", "err", err)
		s.renderAccount(w, r, http.StatusInternalServerError, "the authenticator could not be set up: see the server log", "")
		return
	}
	lr.putSealed(w, enrolCookie, accountEnrolment{UID: u.ID, Secret: e.Secret, Expires: time.Now().Add(enrolTTL).Unix()}, enrolTTL)
	lr.render(w, r, http.StatusOK, "enrol", view{Title: "Add an authenticator app", User: u.UserName, SignedIn: true,
		Data: enrolData{QR: template.URL(e.QRPNG), Secret: e.Secret, URI: e.URI, Action: accountEnrol}})
}

// accountTOTPConfirm keeps the new secret once a code from it checks,
// and shows the recovery codes once.
func (s *Server) accountTOTPConfirm(w http.ResponseWriter, r *http.Request) {
	lr := s.local
	ip := clientIP(r)
	u, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	var en accountEnrolment
	if !lr.getSealed(r, enrolCookie, &en) || en.UID != u.ID || time.Now().Unix() >= en.Expires {
		s.renderAccount(w, r, http.StatusBadRequest, "this setup expired or was started in another browser: start again", "")
		return
	}
	if err := lr.lockout.Check(r.Context(), u.UserName, ip); err != nil {
		s.renderAccount(w, r, lockoutStatus(err), err.Error(), "")
		return
	}
	step, err := mfa.Verify(en.Secret, r.PostFormValue("code"), time.Now(), 0)
	if err != nil {
		lr.failed(r.Context(), u.UserName, ip)
		s.record(audit.Event{Event: "local_mfa", Outcome: "denied", Reason: "account enrolment: " + err.Error(), ClientAddr: ip, User: u.UserName})
		e, _ := mfa.EnrolmentFor(lr.opt.Issuer, u.UserName, en.Secret)
		lr.render(w, r, http.StatusUnauthorized, "enrol", view{Title: "Add an authenticator app", User: u.UserName, SignedIn: true,
			Error: "that code does not match: check the time on your phone and enter the current code",
			Data:  enrolData{QR: template.URL(e.QRPNG), Secret: e.Secret, URI: e.URI, Action: accountEnrol}})
		return
	}
	codes, hashes := mfa.NewRecoveryCodes()
	if _, err := lr.updateCreds(r.Context(), u.ID, func(_ store.User, c *creds) error {
		if c.TOTPSecret != "" {
			return errors.New("an authenticator was enrolled meanwhile")
		}
		c.TOTPSecret, c.TOTPLastStep, c.Recovery = en.Secret, step, hashes
		return nil
	}); err != nil {
		s.opt.Log.Error("account: save TOTP enrolment", "user", u.UserName, "err", err)
		s.renderAccount(w, r, http.StatusConflict, "the authenticator could not be saved: try again", "")
		return
	}
	lr.setCookie(w, enrolCookie, "", -1)
	s.record(audit.Event{Event: "local_mfa", Outcome: "granted", Reason: "TOTP added on /account", ClientAddr: ip, User: u.UserName})
	s.renderAccountCodes(w, r, codes)
}

// accountTOTPRemove turns the authenticator app off, with a current code
// from it, if another factor remains.
func (s *Server) accountTOTPRemove(w http.ResponseWriter, r *http.Request) {
	lr := s.local
	ip := clientIP(r)
	u, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	if !lr.emailFactor(u) {
		msg := "the authenticator app is this account's only second factor: it stays (email codes need a mailer and an address)"
		if u.Role == AdminRole {
			msg = "administrators keep their authenticator app: the console takes no email code"
		}
		s.renderAccount(w, r, http.StatusConflict, msg, "")
		return
	}
	if err := lr.lockout.Check(r.Context(), u.UserName, ip); err != nil {
		s.renderAccount(w, r, lockoutStatus(err), err.Error(), "")
		return
	}
	_, err := lr.updateCreds(r.Context(), u.ID, func(_ store.User, c *creds) error {
		if c.TOTPSecret == "" {
			return errNoApp
		}
		if _, err := mfa.Verify(c.TOTPSecret, r.PostFormValue("code"), time.Now(), c.TOTPLastStep); err != nil {
			return err
		}
		c.TOTPSecret, c.TOTPLastStep, c.Recovery = "", 0, nil
		return nil
	})
	switch {
	case errors.Is(err, errNoApp):
		s.renderAccount(w, r, http.StatusConflict, "no authenticator app is on", "")
		return
	case errors.Is(err, mfa.ErrBadCode), errors.Is(err, mfa.ErrReplay), errors.Is(err, mfa.ErrExpired):
		lr.failed(r.Context(), u.UserName, ip)
		s.record(audit.Event{Event: "local_mfa", Outcome: "denied", Reason: "remove TOTP: " + err.Error(), ClientAddr: ip, User: u.UserName})
		s.renderAccount(w, r, http.StatusUnauthorized, "enter the current code from your authenticator app to remove it", "")
		return
	case err != nil:
		s.opt.Log.Error("account: remove TOTP", "user", u.UserName, "err", err)
		s.renderAccount(w, r, http.StatusInternalServerError, "the change failed: see the server log", "")
		return
	}
	s.record(audit.Event{Event: "local_mfa", Outcome: "closed", Reason: "TOTP removed on /account; email codes remain", ClientAddr: ip, User: u.UserName})
	s.renderAccount(w, r, http.StatusOK, "", "The authenticator app is off: your logins now ask for a code by email.")
}

var errNoApp = errors.New("no authenticator app")
