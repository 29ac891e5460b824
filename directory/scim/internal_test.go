package scim_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/store"
)

// TestLocalAccountsOutOfScope: a SCIM token neither sees nor changes a
// local account (an administrator's least of all): GET, PUT, PATCH and
// DELETE answer 404, a list leaves it out, and the record is untouched.
func TestLocalAccountsOutOfScope(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(t *testing.T) *harness) {
		h := newHarness(t)
		u, err := h.st.CreateUser(t.Context(), store.User{UserName: "lia@example.com", Active: true, Source: store.SourceLocal, Role: "administrator",
			Emails: []store.Email{{Value: "lia@example.com"}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, req := range []struct{ method, body string }{
			{"GET", ""},
			{"PUT", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"lia@example.com","active":true,"emails":[{"value":"evil@attacker.test"}]}`},
			{"PATCH", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails","value":[{"value":"evil@attacker.test"}]}]}`},
			{"DELETE", ""},
		} {
			var body any
			if req.body != "" {
				body = req.body
			}
			if r := h.do(req.method, "/Users/"+u.ID, body); r.status != 404 {
				t.Errorf("%s of a local account: %d %s, want 404", req.method, r.status, r.raw)
			}
		}
		list := h.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "lia@example.com"`), nil)
		if strings.Contains(list.raw, "lia@example.com") {
			t.Errorf("a filtered list shows the local account: %s", list.raw)
		}
		if all := h.do("GET", "/Users", nil); strings.Contains(all.raw, "lia@example.com") {
			t.Errorf("the list shows the local account: %s", all.raw)
		}
		after, err := h.st.GetUser(t.Context(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.Version != u.Version || after.Emails[0].Value != "lia@example.com" {
			t.Fatalf("the local account changed: %+v", after)
		}
	})
}
