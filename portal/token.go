package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/exchange"
	"github.com/portcullisdb/portcullis/limit"
	"github.com/portcullisdb/portcullis/metrics"
)

// Grant types of the token endpoint.
const (
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
)

// token is the token endpoint: RFC 8693 exchange for workloads, and the
// authorization-code and refresh grants of browser login.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	if wait, ok := s.limiter.Allow(limit.AddressKey(ip)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		oauthError(w, http.StatusTooManyRequests, "slow_down", "too many refused token requests from this address: retry later")
		s.record(audit.Event{Event: "exchange", Outcome: "denied", Reason: "rate limited", ClientAddr: ip})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, ip, http.StatusRequestEntityTooLarge, "invalid_request", "request body over 64 KiB", audit.Event{})
			return
		}
		s.fail(w, ip, http.StatusBadRequest, "invalid_request", "the body is not a form (application/x-www-form-urlencoded)", audit.Event{})
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case grantTokenExchange:
		s.tokenExchange(w, r, ip)
	case grantAuthorizationCode, grantRefreshToken:
		s.tokenSSO(w, r, ip, gt)
	default:
		s.fail(w, ip, http.StatusBadRequest, "unsupported_grant_type",
			"grant_type must be one of "+grantTokenExchange+", "+grantAuthorizationCode+", "+grantRefreshToken, audit.Event{})
	}
}

// exchanger is the token exchange in force, or nil.
func (s *Server) exchanger() *exchange.Exchanger {
	if s.opt.Exchanger == nil {
		return nil
	}
	return s.opt.Exchanger()
}

// tokenExchange handles RFC 8693's token-exchange grant.
func (s *Server) tokenExchange(w http.ResponseWriter, r *http.Request, ip string) {
	x := s.exchanger()
	if x == nil {
		s.fail(w, ip, http.StatusBadRequest, "invalid_request", "token exchange is not configured on this server (exchange: in its config)", audit.Event{})
		return
	}
	tokenType, subject := r.PostForm.Get("subject_token_type"), r.PostForm.Get("subject_token")
	if subject == "" || tokenType == "" {
		s.fail(w, ip, http.StatusBadRequest, "invalid_request", "subject_token and subject_token_type are required", audit.Event{})
		return
	}
	res, err := x.Exchange(r.Context(), tokenType, subject)
	ev := audit.Event{Event: "exchange", ClientAddr: ip, Identity: res.Identity.Principal, Issuer: res.Identity.Platform}
	platform := res.Identity.Platform
	if platform == "" {
		platform = "unknown"
	}
	outcome := "granted"
	if err != nil {
		outcome = "denied"
	}
	metrics.Exchanges.WithLabelValues(platform, outcome).Inc()
	var (
		denied *auth.DeniedError
		noRule *exchange.NoRuleError
	)
	switch {
	case errors.As(err, &noRule):
		s.fail(w, ip, http.StatusForbidden, "access_denied", noRule.Error(), ev)
		return
	case errors.As(err, &denied):
		s.fail(w, ip, http.StatusUnauthorized, "invalid_grant", denied.Reason, ev)
		return
	case err != nil:
		s.opt.Log.Error("token exchange", "err", err)
		ev.Outcome, ev.Reason = "error", err.Error()
		s.record(ev)
		oauthError(w, http.StatusInternalServerError, "server_error", "the token could not be issued: see the server log")
		return
	}
	ev.Outcome, ev.User, ev.Role = "granted", res.Username, strings.Join(res.Roles, ",")
	s.record(ev)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":      res.Token,
		"issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"token_type":        "Bearer",
		"expires_in":        int(time.Until(res.ExpiresAt).Seconds()),
		"username":          res.Username,
	})
}
