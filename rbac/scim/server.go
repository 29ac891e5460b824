package scim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullisdb/portcullis/store"
)

// Options configures a Server.
type Options struct {
	// Store keeps the directory, the SCIM tokens and the event log.
	Store store.Store
	// Connection is the IdP connection this server serves: only a bearer
	// token stored for it (store.PutSCIMToken) is accepted. Empty accepts
	// the token of any connection.
	Connection string
	// BaseURL is where the SCIM endpoints are reachable from the IdP, e.g.
	// https://portcullis.example.com/scim/v2; meta.location, Location
	// headers and $ref values start with it.
	BaseURL string
	// Log receives request and provisioning logs; nil discards them.
	// Bodies and tokens are never logged.
	Log *slog.Logger
	// OnChange, if set, is called after the event of every change that
	// must end sessions has been appended to the store (see Change). It
	// runs in the request's goroutine: keep it quick.
	OnChange func(ctx context.Context, c Change)
}

// Change is a directory change that must end a user's sessions or
// refresh their roles. For each one the Server appends a store.Event
// (Kind, Subject = UserName, Data = {"user_id","connection","reason"})
// after the store write succeeded, then calls Options.OnChange.
type Change struct {
	// Kind is store.EventUserDeactivated (active became false),
	// store.EventUserDeleted, or store.EventUserRolesChanged (the role
	// attribute changed, the user left a group, a group of the user was
	// renamed or deleted, or the user was renamed: UserName is then the
	// old name).
	Kind     string
	UserName string
	UserID   string
}

// Server is the SCIM 2.0 service provider (RFC 7643, RFC 7644) of one IdP
// connection. It is an http.Handler for the paths below the SCIM base:
// /Users, /Users/{id}, /Groups, /Groups/{id}, /ServiceProviderConfig,
// /ResourceTypes and /Schemas.
type Server struct {
	store    store.Store
	conn     string
	base     string // BaseURL without a trailing slash
	prefix   string // BaseURL's path, accepted in front of request paths
	log      *slog.Logger
	onChange func(ctx context.Context, c Change)

	mu      sync.Mutex
	touched map[string]time.Time // token id -> last TouchSCIMToken
}

var _ http.Handler = (*Server)(nil)

// New returns a Server.
func New(opts Options) *Server {
	s := &Server{
		store:    opts.Store,
		conn:     opts.Connection,
		base:     strings.TrimRight(opts.BaseURL, "/"),
		log:      opts.Log,
		onChange: opts.OnChange,
		touched:  map[string]time.Time{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if u, err := url.Parse(s.base); err == nil {
		s.prefix = strings.TrimRight(u.Path, "/")
	}
	return s
}

// NewToken makes a SCIM bearer token: 32 random bytes, base64url. Give
// plain to the IdP once and store only hash, e.g.
// store.PutSCIMToken(ctx, store.SCIMToken{Connection: name, Hash: hash}).
func NewToken() (plain string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	plain = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(plain))
	return plain, sum[:]
}

// maxBody is the largest request body read (413 beyond it).
const maxBody = 1 << 20

// touchEvery spaces the writes that record a token's last use.
const touchEvery = time.Minute

// ServeHTTP implements http.Handler. Every failure is a SCIM error
// response written here; a panic is logged with its stack and answered
// with a 500.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &responseWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			s.log.Error("scim: panic serving request", "connection", s.conn, "method", r.Method,
				"path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if rw.status == 0 {
				s.writeError(rw, errorf(http.StatusInternalServerError, "", "internal error"))
			}
		}
		level := slog.LevelDebug
		if rw.status >= 500 {
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "scim request", "connection", s.conn, "method", r.Method,
			"path", r.URL.Path, "status", rw.status, "duration", time.Since(start))
	}()
	if err := s.serve(rw, r); err != nil {
		var se *scimError
		if !errors.As(err, &se) {
			s.log.Error("scim: request failed", "connection", s.conn, "method", r.Method, "path", r.URL.Path, "err", err)
			se = errorf(http.StatusInternalServerError, "", "internal error (the server log has the cause)")
		}
		s.writeError(rw, se)
	}
}

// responseWriter remembers the status written.
type responseWriter struct {
	http.ResponseWriter
	status int
}

func (w *responseWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) error {
	path := r.URL.Path
	if s.prefix != "" && (path == s.prefix || strings.HasPrefix(path, s.prefix+"/")) {
		path = path[len(s.prefix):]
	}
	if err := s.authenticate(r); err != nil {
		return err
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	name := segs[0]
	switch {
	case strings.EqualFold(name, "Users"):
		return s.serveResource(w, r, userType, segs[1:])
	case strings.EqualFold(name, "Groups"):
		return s.serveResource(w, r, groupType, segs[1:])
	case strings.EqualFold(name, "ServiceProviderConfig") && len(segs) == 1:
		if err := allow(r, http.MethodGet); err != nil {
			return err
		}
		return s.writeDoc(w, http.StatusOK, s.serviceProviderConfigDoc())
	case strings.EqualFold(name, "ResourceTypes"):
		if err := allow(r, http.MethodGet); err != nil {
			return err
		}
		var docs []map[string]any
		for _, rt := range resourceTypes {
			if len(segs) == 1 || strings.EqualFold(segs[1], rt.name) {
				docs = append(docs, s.resourceTypeDoc(rt))
			}
		}
		return s.writeDiscovery(w, segs, "ResourceType", docs)
	case strings.EqualFold(name, "Schemas"):
		if err := allow(r, http.MethodGet); err != nil {
			return err
		}
		var docs []map[string]any
		for _, d := range allSchemas {
			if len(segs) == 1 || strings.EqualFold(segs[1], d.id) {
				docs = append(docs, s.schemaDoc(d))
			}
		}
		return s.writeDiscovery(w, segs, "Schema", docs)
	case strings.EqualFold(name, "Bulk"), strings.EqualFold(name, "Me"), strings.EqualFold(name, ".search"):
		return errorf(http.StatusNotImplemented, "", "/%s is not supported", name)
	}
	return errorf(http.StatusNotFound, "", "no SCIM endpoint %s", path)
}

// writeDiscovery answers /ResourceTypes and /Schemas: a ListResponse, or
// the one document named.
func (s *Server) writeDiscovery(w http.ResponseWriter, segs []string, what string, docs []map[string]any) error {
	switch {
	case len(segs) > 2, len(segs) == 2 && len(docs) == 0:
		return errorf(http.StatusNotFound, "", "no %s %q", what, strings.Join(segs[1:], "/"))
	case len(segs) == 2:
		return s.writeDoc(w, http.StatusOK, docs[0])
	}
	raw := make([]json.RawMessage, len(docs))
	for i, d := range docs {
		b, err := marshal(d)
		if err != nil {
			return err
		}
		raw[i] = b
	}
	return s.writeDoc(w, http.StatusOK, listResponse{
		Schemas: []string{urnListResponse}, TotalResults: len(raw), ItemsPerPage: len(raw), StartIndex: 1, Resources: raw,
	})
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, rt *resourceType, rest []string) error {
	switch len(rest) {
	case 0:
		switch r.Method {
		case http.MethodGet:
			return s.list(w, r, rt)
		case http.MethodPost:
			if rt == userType {
				return s.createUser(w, r)
			}
			return s.createGroup(w, r)
		}
		return allow(r, http.MethodGet, http.MethodPost)
	case 1:
		id := rest[0]
		if id == ".search" {
			return errorf(http.StatusNotImplemented, "", "POST %s/.search is not supported: use GET with a filter", rt.endpoint)
		}
		h := map[string]func(http.ResponseWriter, *http.Request, string) error{}
		if rt == userType {
			h[http.MethodGet], h[http.MethodPut], h[http.MethodPatch], h[http.MethodDelete] = s.getUser, s.replaceUser, s.patchUser, s.deleteUser
		} else {
			h[http.MethodGet], h[http.MethodPut], h[http.MethodPatch], h[http.MethodDelete] = s.getGroup, s.replaceGroup, s.patchGroup, s.deleteGroup
		}
		if f, ok := h[r.Method]; ok {
			return f(w, r, id)
		}
		return allow(r, http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete)
	}
	return errorf(http.StatusNotFound, "", "no SCIM endpoint %s", r.URL.Path)
}

// allow refuses a method not among methods with a 405.
func allow(r *http.Request, methods ...string) error {
	for _, m := range methods {
		if r.Method == m {
			return nil
		}
	}
	return &scimError{status: http.StatusMethodNotAllowed, detail: fmt.Sprintf("%s is not allowed here (allowed: %s)",
		r.Method, strings.Join(methods, ", ")), allow: methods}
}

// --- authentication ---

// authenticate checks the bearer token: its SHA-256 must be a stored
// SCIM token of this connection.
func (s *Server) authenticate(r *http.Request) error {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return &scimError{status: http.StatusUnauthorized, detail: "authentication required: send the connection's SCIM token as Authorization: Bearer <token>"}
	}
	sum := sha256.Sum256([]byte(token))
	t, err := s.store.FindSCIMToken(r.Context(), sum[:])
	if errors.Is(err, store.ErrNotFound) || err == nil && s.conn != "" && t.Connection != s.conn {
		return &scimError{status: http.StatusUnauthorized, detail: "the bearer token is not valid for this SCIM connection", badToken: true}
	}
	if err != nil {
		return fmt.Errorf("look up scim token: %w", err)
	}
	s.touch(r.Context(), t.ID)
	return nil
}

// touch records a token's use, at most once a minute per token.
func (s *Server) touch(ctx context.Context, id string) {
	now := time.Now()
	s.mu.Lock()
	last, ok := s.touched[id]
	if ok && now.Sub(last) < touchEvery {
		s.mu.Unlock()
		return
	}
	s.touched[id] = now
	s.mu.Unlock()
	if err := s.store.TouchSCIMToken(ctx, id, now); err != nil {
		s.log.Warn("scim: record token use", "connection", s.conn, "err", err)
	}
}

// --- requests and responses ---

// readBody reads a JSON object body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	tooLarge := errorf(http.StatusRequestEntityTooLarge, "", "the request body is larger than %d bytes", maxBody)
	if r.ContentLength > maxBody {
		return nil, tooLarge
	}
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, err2 := dec.Token(); err2 != io.EOF {
			err = errors.New("data after the JSON value")
			if err2 != nil {
				err = err2
			}
		}
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case errors.Is(err, io.EOF):
		return nil, badRequest(invalidSyntax, "the request body is empty")
	case err != nil:
		return nil, badRequest(invalidSyntax, "the request body is not valid JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest(invalidSyntax, "the request body must be a JSON object")
	}
	return m, nil
}

const contentType = "application/scim+json"

func (s *Server) writeDoc(w http.ResponseWriter, status int, v any) error {
	b, err := marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	writeRaw(w, status, b)
	return nil
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func (s *Server) writeError(w http.ResponseWriter, e *scimError) {
	switch {
	case e.status == http.StatusUnauthorized && e.badToken:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	case e.status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", "Bearer")
	case e.status == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", strings.Join(e.allow, ", "))
	}
	b, err := marshal(e.body())
	if err != nil {
		b = []byte(`{"schemas":["` + urnError + `"],"status":"500"}`)
	}
	writeRaw(w, e.status, b)
}

// respond writes one resource, projected by the request's attributes and
// excludedAttributes, with its ETag (and Location when created).
func (s *Server) respond(w http.ResponseWriter, r *http.Request, rt *resourceType, status int, doc map[string]any, version int64) error {
	p := parseProjection(rt, r.URL.Query())
	b, err := encodeResource(rt, p.apply(rt, doc))
	if err != nil {
		return fmt.Errorf("encode %s: %w", rt.name, err)
	}
	w.Header().Set("ETag", etag(version))
	if status == http.StatusCreated {
		if meta, ok := doc["meta"].(map[string]any); ok {
			w.Header().Set("Location", meta["location"].(string))
		}
	}
	writeRaw(w, status, b)
	return nil
}

// --- conditional requests (RFC 7644 §3.14) ---

// checkIfMatch answers 412 when the request has an If-Match that does not
// name version.
func checkIfMatch(r *http.Request, version int64) error {
	h := r.Header.Get("If-Match")
	if h == "" || etagListMatches(h, version) {
		return nil
	}
	return errorf(http.StatusPreconditionFailed, "", "the resource changed: its version is %s, the If-Match header wants %s", etag(version), h)
}

func hasIfMatch(r *http.Request) bool { return r.Header.Get("If-Match") != "" }

// etagListMatches reports whether an If-Match or If-None-Match list
// ("*", or tags, weak or strong) names version.
func etagListMatches(list string, version int64) bool {
	want := strconv.FormatInt(version, 10)
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		t = strings.TrimPrefix(t, "W/")
		if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' && t[1:len(t)-1] == want {
			return true
		}
	}
	return false
}

// notModified answers a GET whose If-None-Match names version.
func notModified(w http.ResponseWriter, r *http.Request, version int64) bool {
	h := r.Header.Get("If-None-Match")
	if h == "" || !etagListMatches(h, version) {
		return false
	}
	w.Header().Set("ETag", etag(version))
	w.WriteHeader(http.StatusNotModified)
	return true
}

// maxAttempts bounds the re-reads of a PUT or PATCH without If-Match
// that raced another write.
const maxAttempts = 20

// backoff waits a little, more after each lost race, so that writers
// racing for one resource spread out.
func backoff(attempt int) {
	time.Sleep(time.Duration(mrand.Int64N(int64(attempt) * int64(2*time.Millisecond))))
}

// storeError maps a store failure to the client's error; what names the
// resource ("user \"alice\"").
func storeError(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrConflict):
		return errorf(http.StatusConflict, uniqueness, "%s: the name is taken (names are unique, compared case-insensitively)", what)
	case errors.Is(err, store.ErrVersionMismatch):
		return errorf(http.StatusPreconditionFailed, "", "%s changed since it was read: fetch it again", what)
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "", "%s not found", what)
	case errors.Is(err, store.ErrInvalid):
		return badRequest(invalidValue, "%s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
