package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/portcullisdb/portcullis/directory/scim"
	"github.com/portcullisdb/portcullis/store"
	"github.com/portcullisdb/portcullis/store/storetest"
)

const (
	baseURL    = "https://portcullis.example.com/scim/v2"
	connection = "okta"

	urnUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	urnGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	urnEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	urnPortcullis = "urn:ietf:params:scim:schemas:extension:portcullis:2.0:User"
	urnPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	urnList       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	urnError      = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// testRoles are the configured database roles the tests' role
// attributes name.
var testRoles = []string{"analyst", "dba", "reader"}

// engines are the stores every behaviour test runs against.
var engines = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store {
		return storetest.OpenOrFail(t, func(ctx context.Context) (*store.DB, error) {
			return store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "portcullis.db"))
		})
	}},
	{"mariadb", func(t *testing.T) store.Store {
		dsn := storetest.MySQLDatabase(t, "pcscim")
		return storetest.OpenOrFail(t, func(ctx context.Context) (*store.DB, error) { return store.OpenMySQL(ctx, dsn) })
	}},
}

// forEachEngine runs fn once per store engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, newHarness func(t *testing.T) *harness)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			fn(t, func(t *testing.T) *harness { return newHarness(t, e.open(t)) })
		})
	}
}

// harness is a Server over a fresh store, with a valid token.
type harness struct {
	t     *testing.T
	st    store.Store
	srv   *scim.Server
	token string

	// vars are ids saved by runSteps, expanded as {name}.
	vars map[string]string

	mu      sync.Mutex
	changes []scim.Change
}

func (h *harness) expand(s string) string {
	for k, v := range h.vars {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	return s
}

func newHarness(t *testing.T, st store.Store) *harness {
	h := &harness{t: t, st: st, vars: map[string]string{}}
	plain, hash := scim.NewToken()
	if _, err := st.PutSCIMToken(t.Context(), store.SCIMToken{Connection: connection, Hash: hash}); err != nil {
		t.Fatalf("PutSCIMToken: %v", err)
	}
	h.token = plain
	h.srv = scim.New(scim.Options{
		Store:      st,
		Roles:      testRoles,
		Connection: connection,
		BaseURL:    baseURL,
		OnChange: func(_ context.Context, c scim.Change) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.changes = append(h.changes, c)
		},
	})
	return h
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// do sends a request with the harness's token; body is a JSON string, or
// an io.Reader sent as is. header holds name, value pairs.
func (h *harness) do(method, path string, body any, header ...string) *response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequestWithContext(h.t.Context(), method, path, rd)
	if _, ok := body.(string); ok || body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	if _, ok := body.(io.Reader); ok {
		req.ContentLength = -1 // unknown length: the server must bound it itself
	}
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	return decode(h.t, rec.Result())
}

func decode(t *testing.T, res *http.Response) *response {
	t.Helper()
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("response %d is not a JSON object: %v\n%s", res.StatusCode, err, raw)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/scim+json" {
			t.Errorf("Content-Type = %q, want application/scim+json", ct)
		}
	}
	return r
}

// want fails unless r has status.
func (r *response) want(t *testing.T, status int) *response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body: %s", r.status, status, r.raw)
	}
	return r
}

// wantError checks a SCIM error response (RFC 7644 §3.12).
func (r *response) wantError(t *testing.T, status int, scimType string) {
	t.Helper()
	r.want(t, status)
	if got := strs(r.body["schemas"]); !slices.Equal(got, []string{urnError}) {
		t.Errorf("error schemas = %v, want [%s]", got, urnError)
	}
	if got := r.body["status"]; got != fmt.Sprint(status) {
		t.Errorf("error status = %#v, want the string %q", got, fmt.Sprint(status))
	}
	if got, _ := r.body["scimType"].(string); got != scimType {
		t.Errorf("scimType = %q, want %q (detail %v)", got, scimType, r.body["detail"])
	}
}

// get walks a decoded document: "meta.version", "emails.0.value",
// "urn:...:User:department" (a URN key is matched whole first).
func get(doc any, path string) any {
	cur := doc
	for path != "" {
		var part string
		if m, ok := cur.(map[string]any); ok {
			found := false
			for k := range m {
				if strings.HasPrefix(k, "urn:") && strings.HasPrefix(path, k) {
					part, path, found = k, strings.TrimPrefix(strings.TrimPrefix(path, k), ":"), true
					break
				}
			}
			if !found {
				part, path, _ = strings.Cut(path, ".")
			}
			cur = m[part]
			continue
		}
		part, path, _ = strings.Cut(path, ".")
		list, ok := cur.([]any)
		if !ok {
			return nil
		}
		var i int
		if _, err := fmt.Sscan(part, &i); err != nil || i < 0 || i >= len(list) {
			return nil
		}
		cur = list[i]
	}
	return cur
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// resources returns the userNames (or displayNames) of a ListResponse.
func names(t *testing.T, r *response) []string {
	t.Helper()
	var out []string
	list, _ := r.body["Resources"].([]any)
	for _, x := range list {
		m := x.(map[string]any)
		if n, ok := m["userName"].(string); ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprint(m["displayName"]))
		}
	}
	return out
}

// snapshot is everything a SCIM request may change.
type snapshot struct {
	Users     []store.User
	Groups    []store.Group
	LastEvent int64
}

func (h *harness) snapshot() snapshot {
	h.t.Helper()
	ctx := h.t.Context()
	users, _, err := h.st.ListUsers(ctx, store.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	groups, _, err := h.st.ListGroups(ctx, store.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	last, err := h.st.LatestEventID(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return snapshot{users, groups, last}
}

func (h *harness) wantUnchanged(t *testing.T, before snapshot) {
	t.Helper()
	if after := h.snapshot(); !reflect.DeepEqual(before, after) {
		t.Errorf("the store changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// events returns the events appended after id, as "kind subject".
func (h *harness) events(after int64) []string {
	h.t.Helper()
	evs, err := h.st.EventsSince(h.t.Context(), after, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind+" "+e.Subject)
	}
	return out
}

func (h *harness) lastEvent() int64 {
	h.t.Helper()
	id, err := h.st.LatestEventID(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// takeChanges returns and forgets the OnChange calls so far.
func (h *harness) takeChanges() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.changes {
		out = append(out, c.Kind+" "+c.UserName)
	}
	h.changes = nil
	return out
}

// createUser POSTs a minimal user and returns its id.
func (h *harness) createUser(userName string, extra ...string) string {
	h.t.Helper()
	body := `{"schemas":["` + urnUser + `"],"userName":` + quote(userName)
	for i := 0; i+1 < len(extra); i += 2 {
		body += `,` + quote(extra[i]) + `:` + extra[i+1]
	}
	body += `}`
	r := h.do("POST", "/Users", body).want(h.t, http.StatusCreated)
	return r.body["id"].(string)
}

func (h *harness) createGroup(displayName string, members ...string) string {
	h.t.Helper()
	var ms []string
	for _, m := range members {
		ms = append(ms, `{"value":`+quote(m)+`}`)
	}
	body := `{"schemas":["` + urnGroup + `"],"displayName":` + quote(displayName) + `,"members":[` + strings.Join(ms, ",") + `]}`
	r := h.do("POST", "/Groups", body).want(h.t, http.StatusCreated)
	return r.body["id"].(string)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// patch builds a PatchOp body from operations written as JSON objects.
func patch(ops ...string) string {
	return `{"schemas":["` + urnPatchOp + `"],"Operations":[` + strings.Join(ops, ",") + `]}`
}
