package scim_test

import (
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/store"
)

// TestInternalExtraKeys: what portcullis keeps on a user under
// urn:portcullis:local: (a local account's sealed credentials) is never
// shown by SCIM, cannot be set through it, and survives a PUT.
func TestInternalExtraKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(t *testing.T) *harness) {
		h := newHarness(t)
		u, err := h.st.CreateUser(t.Context(), store.User{UserName: "lia@example.com", Active: true, Source: store.SourceLocal,
			Extra: []byte(`{"urn:portcullis:local:credentials":"c2VhbGVk"}`)})
		if err != nil {
			t.Fatal(err)
		}
		get := h.do("GET", "/Users/"+u.ID, nil)
		if get.status != 200 || strings.Contains(string(get.raw), "urn:portcullis:local") {
			t.Fatalf("GET shows the internal key: %d %s", get.status, get.raw)
		}
		put := h.do("PUT", "/Users/"+u.ID, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"lia@example.com","active":true}`)
		if put.status != 200 {
			t.Fatalf("PUT: %d %s", put.status, put.raw)
		}
		forged := h.do("PUT", "/Users/"+u.ID, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"lia@example.com","active":true,
			"urn:portcullis:local:credentials":{"totp":"forged"}}`)
		if forged.status != 200 && forged.status != 400 {
			t.Fatalf("forged PUT: %d %s", forged.status, forged.raw)
		}
		after, err := h.st.GetUser(t.Context(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(after.Extra), `"c2VhbGVk"`) || strings.Contains(string(after.Extra), "forged") {
			t.Fatalf("after PUTs, Extra = %s: the stored credentials must survive and a forged value never land", after.Extra)
		}
	})
}
