package scim_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/portcullisdb/portcullis/directory/scim"
	"github.com/portcullisdb/portcullis/store"
)

func TestNewToken(t *testing.T) {
	plain, hash := scim.NewToken()
	other, _ := scim.NewToken()
	raw, err := base64.RawURLEncoding.DecodeString(plain)
	tests := []struct {
		name string
		ok   bool
	}{
		{"32 random bytes, base64url", err == nil && len(raw) == 32},
		{"hash is the SHA-256 of the token", func() bool { s := sha256.Sum256([]byte(plain)); return string(s[:]) == string(hash) }()},
		{"tokens differ", plain != other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Errorf("token %q, hash %x", plain, hash)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	h := newHarness(t, engines[0].open(t))
	tests := []struct {
		name  string
		path  string
		check func(t *testing.T, r *response)
	}{
		{"ServiceProviderConfig", "/ServiceProviderConfig", func(t *testing.T, r *response) {
			for path, want := range map[string]any{"patch.supported": true, "filter.supported": true, "filter.maxResults": float64(1000),
				"etag.supported": true, "sort.supported": true, "bulk.supported": false, "changePassword.supported": false,
				"authenticationSchemes.0.type": "oauthbearertoken"} {
				if got := get(r.body, path); got != want {
					t.Errorf("%s = %v, want %v", path, got, want)
				}
			}
		}},
		{"ResourceTypes", "/ResourceTypes", func(t *testing.T, r *response) {
			wantList(2, 1, "<nil>", "<nil>")
			if got := r.body["totalResults"]; got != float64(2) {
				t.Errorf("totalResults = %v", got)
			}
			if got := get(r.body, "Resources.0.schemaExtensions.1.schema"); got != urnPortcullis {
				t.Errorf("User extensions: %v", get(r.body, "Resources.0.schemaExtensions"))
			}
			if got := get(r.body, "Resources.1.endpoint"); got != "/Groups" {
				t.Errorf("Group endpoint = %v", got)
			}
		}},
		{"one ResourceType", "/ResourceTypes/User", func(t *testing.T, r *response) {
			if r.body["schema"] != urnUser || get(r.body, "meta.location") != baseURL+"/ResourceTypes/User" {
				t.Errorf("%s", r.raw)
			}
		}},
		{"Schemas", "/Schemas", func(t *testing.T, r *response) {
			var ids []string
			for i := range 4 {
				ids = append(ids, fmt.Sprint(get(r.body, fmt.Sprintf("Resources.%d.id", i))))
			}
			if want := []string{urnUser, urnGroup, urnEnterprise, urnPortcullis}; !slices.Equal(ids, want) {
				t.Errorf("schemas = %q, want %q", ids, want)
			}
		}},
		{"one Schema", "/Schemas/" + urnPortcullis, func(t *testing.T, r *response) {
			if get(r.body, "attributes.0.name") != "role" || get(r.body, "attributes.0.type") != "string" {
				t.Errorf("%s", r.raw)
			}
		}},
		{"userName is unique and not case-exact", "/Schemas/" + urnUser, func(t *testing.T, r *response) {
			if get(r.body, "attributes.0.name") != "userName" || get(r.body, "attributes.0.uniqueness") != "server" ||
				get(r.body, "attributes.0.caseExact") != false || get(r.body, "attributes.0.required") != true {
				t.Errorf("userName: %v", get(r.body, "attributes.0"))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			tt.check(t, h.do("GET", tt.path, nil).want(t, http.StatusOK))
		})
	}
	t.Run("unknown schema", func(t *testing.T) {
		h.t = t
		h.do("GET", "/Schemas/urn:nope", nil).wantError(t, http.StatusNotFound, "")
	})
}

// TestMount serves the handler as the portal would: under /scim/v2 with
// the prefix stripped, and with the full path.
func TestMount(t *testing.T) {
	h := newHarness(t, engines[0].open(t))
	mux := http.NewServeMux()
	mux.Handle("/scim/v2/", http.StripPrefix("/scim/v2", h.srv))
	stripped := httptest.NewServer(mux)
	defer stripped.Close()
	full := httptest.NewServer(h.srv)
	defer full.Close()
	tests := []struct {
		name, url string
	}{
		{"StripPrefix", stripped.URL + "/scim/v2/Users"},
		{"full path", full.URL + "/scim/v2/Users"},
		{"already stripped", full.URL + "/Users"},
		{"trailing slash", stripped.URL + "/scim/v2/Users/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", tt.url, nil)
			req.Header.Set("Authorization", "Bearer "+h.token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r := decode(t, res).want(t, http.StatusOK)
			if r.body["totalResults"] != float64(0) {
				t.Errorf("%s", r.raw)
			}
		})
	}
}

func TestConditionalGet(t *testing.T) {
	h := newHarness(t, engines[0].open(t))
	id := h.createUser("etag@example.com")
	tests := []struct {
		name, ifNoneMatch string
		status            int
	}{
		{"current version", `W/"1"`, http.StatusNotModified},
		{"in a list", `W/"7", W/"1"`, http.StatusNotModified},
		{"star", `*`, http.StatusNotModified},
		{"old version", `W/"0"`, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			r := h.do("GET", "/Users/"+id, nil, "If-None-Match", tt.ifNoneMatch).want(t, tt.status)
			if r.header.Get("ETag") != `W/"1"` {
				t.Errorf("ETag = %q", r.header.Get("ETag"))
			}
		})
	}
	t.Run("If-Match that matches", func(t *testing.T) {
		h.t = t
		h.do("PATCH", "/Users/"+id, patch(`{"op":"replace","path":"title","value":"x"}`), "If-Match", `W/"1"`).want(t, http.StatusOK)
		h.do("DELETE", "/Users/"+id, nil, "If-Match", `"2"`).want(t, http.StatusNoContent)
	})
}

// TestConcurrentPatches: PATCHes without If-Match that race are all
// applied (each re-reads on a version conflict), on both engines.
func TestConcurrentPatches(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		user := h.createUser("busy@example.com")
		group := h.createGroup("busy")
		const n = 6
		var members []string
		for i := range n {
			members = append(members, h.createUser(fmt.Sprintf("m%d@example.com", i)))
		}
		var wg sync.WaitGroup
		errs := make(chan string, 2*n)
		for i := range n {
			wg.Go(func() {
				r := h.doQuiet("PATCH", "/Users/"+user, patch(fmt.Sprintf(`{"op":"add","path":"urn:example:ext:1.0:User:f%d","value":"v"}`, i)))
				if r.status != http.StatusOK {
					errs <- r.raw
				}
				r = h.doQuiet("PATCH", "/Groups/"+group, patch(`{"op":"add","path":"members","value":[{"value":"`+members[i]+`"}]}`))
				if r.status != http.StatusOK {
					errs <- r.raw
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("concurrent PATCH failed: %s", e)
		}
		u := h.do("GET", "/Users/"+user, nil).want(t, http.StatusOK)
		ext, _ := u.body["urn:example:ext:1.0:User"].(map[string]any)
		if len(ext) != n {
			t.Errorf("extension = %v, want %d attributes", ext, n)
		}
		g, err := h.st.GetGroup(t.Context(), group)
		if err != nil || len(g.Members) != n {
			t.Errorf("group members = %v (%v), want %d", g.Members, err, n)
		}
	})
}

// doQuiet is do for other goroutines: failures are returned, not fatal.
func (h *harness) doQuiet(method, path, body string) *response {
	req := httptest.NewRequestWithContext(context.Background(), method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+h.token)
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	return &response{status: rec.Code, raw: rec.Body.String()}
}

// TestOnChangePanics: a panicking hook neither loses the event nor the
// response.
func TestOnChangePanics(t *testing.T) {
	st := engines[0].open(t)
	plain, hash := scim.NewToken()
	if _, err := st.PutSCIMToken(t.Context(), store.SCIMToken{Connection: connection, Hash: hash}); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, st: st, token: plain, vars: map[string]string{}, srv: scim.New(scim.Options{
		Store: st, Roles: testRoles, Connection: connection, BaseURL: baseURL,
		OnChange: func(context.Context, scim.Change) { panic("hook bug") },
	})}
	id := h.createUser("panic@example.com")
	before := h.lastEvent()
	h.do("DELETE", "/Users/"+id, nil).want(t, http.StatusNoContent)
	if got := h.events(before); !slices.Equal(got, []string{"user.deleted panic@example.com"}) {
		t.Errorf("events = %q", got)
	}
}
