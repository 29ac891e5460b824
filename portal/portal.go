package portal

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/exchange"
	"github.com/portcullisdb/portcullis/limit"
	"github.com/portcullisdb/portcullis/metrics"
	"github.com/portcullisdb/portcullis/netaddr"
)

// maxFormBytes bounds a token request body; proofs are a few KB.
const maxFormBytes = 64 << 10

// Options configure the portal.
type Options struct {
	Issuer *auth.TokenIssuer
	// Exchanger returns the token exchange in force; a config reload
	// swaps it. Nil, or returning nil: no exchange configured.
	Exchanger func() *exchange.Exchanger
	Audit     *audit.Logger
	Log       *slog.Logger
	// MySQLAddress is advertised in the discovery document so the CLI
	// knows where to connect.
	MySQLAddress string
	// FailuresPerMinute is the refused-exchange budget per source address.
	FailuresPerMinute int
	Admin             AdminOptions
	// SSO enables browser login (OIDC, SAML) and the code and refresh
	// grants; nil: off.
	SSO *SSOOptions
	// SCIM serves /scim/v2 (directory sync); nil: off.
	SCIM http.Handler
	// Local enables local accounts, the /login and /account pages and
	// the admin console; nil: off.
	Local *LocalOptions
	// Ready lists what keeps this node from serving (backend, store,
	// keys); empty means ready.
	Ready func(ctx context.Context) []string
	// WhoAmI serves GET /v1/whoami for `portcullis status`; nil: off.
	WhoAmI WhoAmIFunc
}

// Server is the portal's HTTP handler.
type Server struct {
	opt     Options
	mux     *http.ServeMux
	limiter *limit.Failures
	local   *localRuntime // nil: local accounts off
}

// New builds the portal.
func New(opt Options) *Server {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	s := &Server{opt: opt, mux: http.NewServeMux(), limiter: limit.NewFailures(opt.FailuresPerMinute)}
	s.mux.HandleFunc("GET /.well-known/jwks.json", s.jwks)
	s.mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
	s.mux.HandleFunc("POST /v1/token", s.token)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", metrics.Handler())
	if opt.SCIM != nil {
		s.mux.Handle("/scim/v2/", http.StripPrefix("/scim/v2", countSCIM(opt.SCIM)))
	}
	s.mountAdmin(opt.Admin)
	s.mountSSO(opt.SSO)
	s.mountLocal(opt.Local)
	s.mountWhoAmI(opt.WhoAmI)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ready answers 200 when the node can serve, else 503 listing why.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.opt.Ready == nil {
		w.Write([]byte("ready\n"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if problems := s.opt.Ready(ctx); len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready:\n  " + strings.Join(problems, "\n  ") + "\n"))
		return
	}
	w.Write([]byte("ready\n"))
}

// countSCIM counts SCIM requests by method and result class.
func countSCIM(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		metrics.SCIMRequests.WithLabelValues(r.Method, strconv.Itoa(rec.status/100)+"xx").Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// Short enough that a rotation's new key is seen well before the old
	// key's tokens expire.
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(s.opt.Issuer.JWKS())
}

func (s *Server) discovery(w http.ResponseWriter, _ *http.Request) {
	base := strings.TrimSuffix(s.opt.Issuer.Issuer(), "/")
	doc := map[string]any{
		"issuer":                                s.opt.Issuer.Issuer(),
		"jwks_uri":                              base + "/.well-known/jwks.json",
		"token_endpoint":                        base + "/v1/token",
		"grant_types_supported":                 []string{grantTokenExchange},
		"id_token_signing_alg_values_supported": []string{"ES256", "RS256"},
		"portcullis_audience":                   s.opt.Issuer.Audience(),
		"portcullis_mysql_address":              s.opt.MySQLAddress,
	}
	if x := s.exchanger(); x != nil {
		doc["portcullis_subject_token_types_supported"] = x.Types()
		doc["portcullis_exchange_audiences"] = x.Audiences()
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, doc)
}

// fail answers a refused request, counts it against the source address
// and audits it.
func (s *Server) fail(w http.ResponseWriter, ip string, status int, code, msg string, ev audit.Event) {
	s.limiter.Failed(limit.AddressKey(ip))
	ev.Event, ev.Outcome, ev.Reason, ev.ClientAddr = "exchange", "denied", msg, ip
	s.record(ev)
	oauthError(w, status, code, msg)
}

func (s *Server) record(e audit.Event) {
	if err := s.opt.Audit.Record(e); err != nil {
		s.opt.Log.Error("audit write failed", "err", err)
	}
}

func oauthError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// clientIP is the peer address. X-Forwarded-For is not trusted: a
// deployment behind a proxy should terminate it on the same host.
func clientIP(r *http.Request) string {
	return netaddr.Host(r.RemoteAddr)
}
