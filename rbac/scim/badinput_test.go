package scim_test

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/store"
)

// countingReader counts what the server read of a body.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// hugeBody is a 10 MB user, never fully in memory.
func hugeBody() io.Reader {
	return io.MultiReader(
		strings.NewReader(`{"schemas":["`+urnUser+`"],"userName":"huge","displayName":"`),
		io.LimitReader(repeatReader('a'), 10<<20),
		strings.NewReader(`"}`))
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestBadInput sends what a broken or hostile client might: each request
// gets the right SCIM error and changes nothing in the store.
func TestBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		h.vars["alice"] = h.createUser("alice@example.com", "emails", `[{"value":"alice@example.com","type":"work"}]`)
		h.vars["bob"] = h.createUser("bob@example.com")
		h.vars["group"] = h.createGroup("eng", h.vars["alice"])
		h.createGroup("ops")
		_, otherHash := sha256Token("token-of-another-connection")
		if _, err := h.st.PutSCIMToken(t.Context(), store.SCIMToken{Connection: "entra", Hash: otherHash}); err != nil {
			t.Fatal(err)
		}
		user := func(attrs string) string { return `{"schemas":["` + urnUser + `"],` + attrs + `}` }

		tests := []struct {
			name     string
			method   string
			path     string
			body     string
			header   []string
			send     func(t *testing.T, h *harness) *response // instead of method/path/body
			status   int
			scimType string
			detail   string // the error detail must contain it
		}{
			{name: "invalid JSON", method: "POST", path: "/Users", body: `{"schemas":[`, status: 400, scimType: "invalidSyntax"},
			{name: "JSON array", method: "POST", path: "/Users", body: `[{"userName":"x"}]`, status: 400, scimType: "invalidSyntax"},
			{name: "empty body", method: "POST", path: "/Users", body: ` `, status: 400, scimType: "invalidSyntax"},
			{name: "data after the object", method: "POST", path: "/Users", body: user(`"userName":"x"`) + ` {}`, status: 400, scimType: "invalidSyntax"},
			{name: "wrong schema", method: "POST", path: "/Users", body: `{"schemas":["` + urnGroup + `"],"userName":"x"}`, status: 400, scimType: "invalidValue"},
			{name: "no schemas", method: "POST", path: "/Users", body: `{"userName":"x"}`, status: 400, scimType: "invalidValue"},
			{name: "unknown attribute", method: "POST", path: "/Users", body: user(`"userName":"x","favoriteColor":"blue"`),
				status: 400, scimType: "invalidValue", detail: "favoriteColor"},
			{name: "unknown sub-attribute", method: "POST", path: "/Users", body: user(`"userName":"x","name":{"nickname":"x"}`),
				status: 400, scimType: "invalidValue", detail: "name.nickname"},
			{name: "boolean as a word", method: "POST", path: "/Users", body: user(`"userName":"x","active":"maybe"`), status: 400, scimType: "invalidValue", detail: "active"},
			{name: "number for a string", method: "POST", path: "/Users", body: user(`"userName":5`), status: 400, scimType: "invalidValue", detail: "userName"},
			{name: "object for a multi-valued attribute", method: "POST", path: "/Users", body: user(`"userName":"x","emails":{"value":"x@y"}`), status: 400, scimType: "invalidValue", detail: "emails"},
			{name: "no userName", method: "POST", path: "/Users", body: user(`"displayName":"x"`), status: 400, scimType: "invalidValue", detail: "userName"},
			{name: "email without value", method: "POST", path: "/Users", body: user(`"userName":"x","emails":[{"type":"work"}]`), status: 400, scimType: "invalidValue"},
			{name: "attribute twice in two cases", method: "POST", path: "/Users", body: user(`"userName":"x","UserName":"y"`), status: 400, scimType: "invalidValue"},
			{name: "extension that is not an object", method: "POST", path: "/Users", body: user(`"userName":"x","urn:example:ext:1.0:User":"x"`), status: 400, scimType: "invalidValue"},
			{name: "userName too long", method: "POST", path: "/Users", body: user(`"userName":"` + strings.Repeat("x", 2000) + `"`), status: 400, scimType: "invalidValue"},
			{name: "displayName too long for its column", method: "POST", path: "/Users", body: user(`"userName":"x","displayName":"` + strings.Repeat("x", 20000) + `"`),
				status: 400, scimType: "invalidValue", detail: "displayName"},
			{name: "duplicate userName", method: "POST", path: "/Users", body: user(`"userName":"ALICE@example.com"`), status: 409, scimType: "uniqueness"},
			{name: "rename onto a taken userName", method: "PUT", path: "/Users/{bob}", body: user(`"userName":"alice@example.com"`), status: 409, scimType: "uniqueness"},
			{name: "PATCH onto a taken userName", method: "PATCH", path: "/Users/{bob}", body: patch(`{"op":"replace","path":"userName","value":"Alice@Example.com"}`), status: 409, scimType: "uniqueness"},
			// One user-name rule (auth/username): look-alikes are alice;
			// control, zero-width and bidi characters are refused.
			{name: "leading space is alice", method: "POST", path: "/Users", body: user(`"userName":" alice@example.com"`), status: 409, scimType: "uniqueness"},
			{name: "trailing no-break space is alice", method: "POST", path: "/Users", body: user(`"userName":"alice@example.com\u00a0"`), status: 409, scimType: "uniqueness"},
			{name: "full-width letters are alice", method: "POST", path: "/Users", body: user(`"userName":"ａｌｉｃｅ@example.com"`), status: 409, scimType: "uniqueness"},
			{name: "NUL in userName", method: "POST", path: "/Users", body: user(`"userName":"eve@example.com\u0000"`),
				status: 400, scimType: "invalidValue", detail: "control character (U+0000) at position 16"},
			{name: "vertical tab in userName", method: "POST", path: "/Users", body: user(`"userName":"eve\u000b@example.com"`),
				status: 400, scimType: "invalidValue", detail: "control character (U+000B)"},
			{name: "zero-width space in userName", method: "POST", path: "/Users", body: user(`"userName":"al\u200bice@example.com"`),
				status: 400, scimType: "invalidValue", detail: "zero-width character (U+200B)"},
			{name: "bidi override in userName", method: "POST", path: "/Users", body: user(`"userName":"eve\u202e@example.com"`),
				status: 400, scimType: "invalidValue", detail: "bidirectional control character (U+202E)"},
			{name: "userName of spaces", method: "POST", path: "/Users", body: user(`"userName":"   "`), status: 400, scimType: "invalidValue", detail: "is empty"},
			{name: "PUT a userName with NUL", method: "PUT", path: "/Users/{bob}", body: user(`"userName":"bob@example.com\u0000"`),
				status: 400, scimType: "invalidValue", detail: "control character"},
			{name: "PATCH a userName with a zero-width joiner", method: "PATCH", path: "/Users/{bob}", body: patch(`{"op":"replace","path":"userName","value":"bob\u200d@example.com"}`),
				status: 400, scimType: "invalidValue", detail: "zero-width character (U+200D)"},
			{name: "PATCH onto alice with a leading space", method: "PATCH", path: "/Users/{bob}", body: patch(`{"op":"replace","path":"userName","value":" alice@example.com"}`),
				status: 409, scimType: "uniqueness"},
			{name: "duplicate group name", method: "POST", path: "/Groups", body: `{"schemas":["` + urnGroup + `"],"displayName":"ENG"}`, status: 409, scimType: "uniqueness"},
			{name: "group rename onto a taken name", method: "PATCH", path: "/Groups/{group}", body: patch(`{"op":"replace","path":"displayName","value":"ops"}`), status: 409, scimType: "uniqueness"},
			{name: "group without displayName", method: "POST", path: "/Groups", body: `{"schemas":["` + urnGroup + `"]}`, status: 400, scimType: "invalidValue"},
			{name: "group with an unknown member", method: "POST", path: "/Groups", body: `{"schemas":["` + urnGroup + `"],"displayName":"new","members":[{"value":"no-such-user"}]}`,
				status: 400, scimType: "invalidValue", detail: "no-such-user"},
			{name: "nested group", method: "POST", path: "/Groups", body: `{"schemas":["` + urnGroup + `"],"displayName":"new","members":[{"value":"{group}","type":"Group"}]}`,
				status: 400, scimType: "invalidValue"},
			{name: "PATCH adds an unknown member", method: "PATCH", path: "/Groups/{group}", body: patch(`{"op":"add","path":"members","value":[{"value":"{bob}"},{"value":"ghost"}]}`),
				status: 400, scimType: "invalidValue", detail: "ghost"},
			{name: "PUT group with an unknown member", method: "PUT", path: "/Groups/{group}", body: `{"schemas":["` + urnGroup + `"],"displayName":"eng","members":[{"value":"ghost"}]}`,
				status: 400, scimType: "invalidValue", detail: "ghost"},
			{name: "unsupported filter", method: "GET", path: "/Users?filter=" + url.QueryEscape(`userName regex ".*"`), status: 400, scimType: "invalidFilter"},
			{name: "10 MB body with its length", send: func(t *testing.T, h *harness) *response {
				req := httptest.NewRequestWithContext(t.Context(), "POST", "/Users", strings.NewReader(strings.Repeat(" ", 10<<20)))
				req.Header.Set("Authorization", "Bearer "+h.token)
				body := &countingReader{r: req.Body}
				req.Body = io.NopCloser(body)
				rec := httptest.NewRecorder()
				h.srv.ServeHTTP(rec, req)
				if body.n > 0 {
					t.Errorf("read %d bytes of a body whose Content-Length is over the limit", body.n)
				}
				return decode(t, rec.Result())
			}, status: 413},
			{name: "10 MB body of unknown length", send: func(t *testing.T, h *harness) *response {
				body := &countingReader{r: hugeBody()}
				r := h.do("POST", "/Users", body)
				if body.n > 2<<20 {
					t.Errorf("read %d bytes of a 10 MB body", body.n)
				}
				return r
			}, status: 413},
			{name: "no bearer token", method: "GET", path: "/Users", header: []string{"Authorization", ""}, status: 401},
			{name: "wrong bearer token", method: "POST", path: "/Users", body: user(`"userName":"x"`), header: []string{"Authorization", "Bearer not-the-token"}, status: 401},
			{name: "basic auth", method: "GET", path: "/Users", header: []string{"Authorization", "Basic dXNlcjpwdw=="}, status: 401},
			{name: "token of another connection", method: "DELETE", path: "/Users/{alice}", header: []string{"Authorization", "Bearer token-of-another-connection"}, status: 401},
			{name: "If-Match mismatch on PUT", method: "PUT", path: "/Users/{alice}", body: user(`"userName":"alice@example.com","displayName":"A"`),
				header: []string{"If-Match", `W/"7"`}, status: 412},
			{name: "If-Match mismatch on PATCH", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"replace","path":"active","value":false}`),
				header: []string{"If-Match", `W/"2"`}, status: 412},
			{name: "If-Match garbage", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"replace","path":"active","value":false}`),
				header: []string{"If-Match", `1`}, status: 412},
			{name: "If-Match mismatch on DELETE", method: "DELETE", path: "/Users/{alice}", header: []string{"If-Match", `W/"9"`}, status: 412},
			{name: "If-Match mismatch on group PATCH", method: "PATCH", path: "/Groups/{group}", body: patch(`{"op":"remove","path":"members"}`),
				header: []string{"If-Match", `"5"`}, status: 412},
			{name: "If-Match mismatch on group DELETE", method: "DELETE", path: "/Groups/{group}", header: []string{"If-Match", `W/"5"`}, status: 412},
			{name: "PATCH op move", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"move","path":"title","value":"x"}`), status: 400, scimType: "invalidSyntax"},
			{name: "PATCH without operations", method: "PATCH", path: "/Users/{alice}", body: `{"schemas":["` + urnPatchOp + `"]}`, status: 400, scimType: "invalidValue"},
			{name: "PATCH with a User schema", method: "PATCH", path: "/Users/{alice}", body: user(`"Operations":[{"op":"replace","path":"title","value":"x"}]`), status: 400, scimType: "invalidValue"},
			{name: "PATCH add without value", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"add","path":"title"}`), status: 400, scimType: "invalidValue"},
			{name: "PATCH remove without path", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"remove"}`), status: 400, scimType: "noTarget"},
			{name: "PATCH unknown attribute", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"replace","path":"favoriteColor","value":"x"}`), status: 400, scimType: "invalidPath"},
			{name: "PATCH unknown attribute without path", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"replace","value":{"favoriteColor":"x"}}`), status: 400, scimType: "invalidPath"},
			{name: "PATCH members of a user", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"add","path":"members","value":[{"value":"x"}]}`), status: 400, scimType: "invalidPath"},
			{name: "PATCH broken path", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"replace","path":"emails[type eq \"work\"","value":"x"}`), status: 400, scimType: "invalidPath"},
			{name: "PATCH another id", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"replace","path":"id","value":"other"}`), status: 400, scimType: "mutability"},
			{name: "PATCH groups of a user", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"add","path":"groups","value":[{"value":"{group}"}]}`), status: 400, scimType: "mutability"},
			{name: "PATCH meta", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"replace","path":"meta.created","value":"2020-01-01T00:00:00Z"}`), status: 400, scimType: "mutability"},
			{name: "PATCH a member's value", method: "PATCH", path: "/Groups/{group}", body: patch(`{"op":"replace","path":"members[value eq \"{alice}\"].value","value":"{bob}"}`), status: 400, scimType: "mutability"},
			{name: "PATCH filter that matches nothing", method: "PATCH", path: "/Users/{alice}",
				body: patch(`{"op":"replace","path":"emails[type eq \"home\" or type eq \"other\"].value","value":"x@y"}`), status: 400, scimType: "noTarget"},
			{name: "PATCH fails on its second operation", method: "PATCH", path: "/Users/{alice}",
				body: patch(`{"op":"replace","path":"displayName","value":"changed"}`, `{"op":"replace","path":"active","value":"maybe"}`), status: 400, scimType: "invalidValue"},
			{name: "PATCH empties userName", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"replace","path":"userName","value":""}`), status: 400, scimType: "invalidValue"},
			{name: "PATCH removes userName", method: "PATCH", path: "/Users/{alice}", body: patch(`{"op":"remove","path":"userName"}`), status: 400, scimType: "invalidValue"},
			{name: "PUT unknown user", method: "PUT", path: "/Users/no-such-id", body: user(`"userName":"x"`), status: 404},
			{name: "PATCH unknown user", method: "PATCH", path: "/Users/no-such-id", body: patch(`{"op":"replace","path":"title","value":"x"}`), status: 404},
			{name: "DELETE unknown user", method: "DELETE", path: "/Users/no-such-id", status: 404},
			{name: "GET unknown user", method: "GET", path: "/Users/no-such-id", status: 404},
			{name: "DELETE unknown group", method: "DELETE", path: "/Groups/no-such-id", status: 404},
			{name: "POST to a user", method: "POST", path: "/Users/{alice}", body: user(`"userName":"x"`), status: 405},
			{name: "unknown endpoint", method: "GET", path: "/Devices", status: 404},
			{name: "bulk", method: "POST", path: "/Bulk", body: `{}`, status: 501},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.t = t
				before := h.snapshot()
				h.takeChanges()
				var r *response
				if tt.send != nil {
					r = tt.send(t, h)
				} else {
					var body any
					if tt.body != "" {
						body = h.expand(tt.body)
					}
					r = h.do(tt.method, h.expand(tt.path), body, tt.header...)
				}
				r.wantError(t, tt.status, tt.scimType)
				if detail, _ := r.body["detail"].(string); !strings.Contains(detail, h.expand(tt.detail)) {
					t.Errorf("detail %q does not mention %q", detail, tt.detail)
				}
				if tt.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want Bearer", r.header.Get("WWW-Authenticate"))
				}
				if strings.Contains(r.raw, h.token) {
					t.Errorf("the response shows the token")
				}
				h.wantUnchanged(t, before)
				if got := h.takeChanges(); len(got) > 0 {
					t.Errorf("OnChange called: %q", got)
				}
			})
		}
	})
}

func sha256Token(plain string) (string, []byte) {
	sum := sha256.Sum256([]byte(plain))
	return plain, sum[:]
}

// TestInjectionValues stores values that look like SQL: they come back
// verbatim, match literally, and touch nothing else.
func TestInjectionValues(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		bystander := h.createUser("bystander@example.com")
		h.createGroup("bystanders", bystander)
		others := h.snapshot()
		tests := []struct {
			name, method, path, body string
			status                   int
			attr, want               string
		}{
			{"userName", "POST", "/Users", `{"schemas":["` + urnUser + `"],"userName":"robert'); DROP TABLE users;--","displayName":"\" OR 1=1 --"}`,
				201, "userName", "robert'); DROP TABLE users;--"},
			{"displayName with a quote", "GET", `/Users?filter=` + url.QueryEscape(`displayName eq "\" OR 1=1 --"`), "", 200, "Resources.0.displayName", `" OR 1=1 --`},
			{"group name", "POST", "/Groups", `{"schemas":["` + urnGroup + `"],"displayName":"x'; DELETE FROM directory_groups; --"}`,
				201, "displayName", "x'; DELETE FROM directory_groups; --"},
			{"PATCH value", "PATCH", "/Users/{robert}", patch(`{"op":"replace","path":"title","value":"'; UPDATE users SET active=0; --"}`),
				200, "title", "'; UPDATE users SET active=0; --"},
			{"PATCH path filter value", "PATCH", "/Users/{robert}", patch(`{"op":"add","path":"emails[type eq \"work' OR '1'='1\"].value","value":"r@x.test"}`),
				200, "emails.0.type", "work' OR '1'='1"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.t = t
				var body any
				if tt.body != "" {
					body = h.expand(tt.body)
				}
				r := h.do(tt.method, h.expand(tt.path), body).want(t, tt.status)
				if got := get(r.body, tt.attr); got != tt.want {
					t.Errorf("%s = %#v, want %#v", tt.attr, got, tt.want)
				}
				if tt.attr == "userName" {
					h.vars["robert"] = r.body["id"].(string)
				}
			})
		}
		h.t = t
		after := h.snapshot()
		bystanders := func(s snapshot) (users []store.User, groups []store.Group) {
			for _, u := range s.Users {
				if u.ID == bystander {
					users = append(users, u)
				}
			}
			for _, g := range s.Groups {
				if g.DisplayName == "bystanders" {
					groups = append(groups, g)
				}
			}
			return users, groups
		}
		u1, g1 := bystanders(others)
		u2, g2 := bystanders(after)
		if len(u2) != 1 || len(g2) != 1 || !equalUsers(u1, u2) || g1[0].Version != g2[0].Version {
			t.Errorf("bystanders changed: %+v %+v -> %+v %+v", u1, g1, u2, g2)
		}
		if len(after.Users) != 2 || len(after.Groups) != 2 {
			t.Errorf("want 2 users and 2 groups, have %d and %d", len(after.Users), len(after.Groups))
		}
		if _, err := h.st.GetUserByName(context.Background(), "robert'); DROP TABLE users;--"); err != nil {
			t.Errorf("GetUserByName: %v", err)
		}
	})
}

func equalUsers(a, b []store.User) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Version != b[i].Version || a[i].UserName != b[i].UserName || a[i].Active != b[i].Active {
			return false
		}
	}
	return true
}
