package scim_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/directory/scim"
	"github.com/portcullisdb/portcullis/store"
)

// asConnection returns a harness on the same server and store whose
// requests carry a token of another connection.
func (h *harness) asConnection(t *testing.T, conn string) *harness {
	t.Helper()
	plain, hash := scim.NewToken()
	if _, err := h.st.PutSCIMToken(t.Context(), store.SCIMToken{Connection: conn, Hash: hash}); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, st: h.st, srv: h.srv, token: plain, vars: map[string]string{}}
}

// TestConnectionsApart: each SCIM token sees and changes only its own
// connection's users and groups, on one server.
func TestConnectionsApart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(t *testing.T) *harness) {
		a := newHarness(t)
		a.srv = scim.New(scim.Options{Store: a.st, Roles: testRoles, BaseURL: baseURL}) // one server for every connection
		b := a.asConnection(t, "entra")
		alice := a.createUser("alice@example.com")
		gid := a.do("POST", "/Groups", `{"schemas":["`+urnGroup+`"],"displayName":"okta-dbas","members":[{"value":"`+alice+`"}]}`).want(t, 201).body["id"].(string)

		// B lists nothing of A's and cannot read, change or delete it.
		if r := b.do("GET", "/Users", nil).want(t, 200); strings.Contains(r.raw, "alice@example.com") {
			t.Errorf("connection B lists connection A's user: %s", r.raw)
		}
		if r := b.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "alice@example.com"`), nil).want(t, 200); strings.Contains(r.raw, alice) {
			t.Errorf("connection B finds connection A's user by filter: %s", r.raw)
		}
		if r := b.do("GET", "/Groups", nil).want(t, 200); strings.Contains(r.raw, "okta-dbas") {
			t.Errorf("connection B lists connection A's group: %s", r.raw)
		}
		b.do("GET", "/Users/"+alice, nil).wantError(t, http.StatusNotFound, "")
		b.do("PATCH", "/Users/"+alice, patch(`{"op":"replace","path":"active","value":false}`)).wantError(t, http.StatusNotFound, "")
		b.do("DELETE", "/Users/"+alice, nil).wantError(t, http.StatusNotFound, "")
		b.do("PATCH", "/Groups/"+gid, patch(`{"op":"remove","path":"members"}`)).wantError(t, http.StatusNotFound, "")
		b.do("DELETE", "/Groups/"+gid, nil).wantError(t, http.StatusNotFound, "")
		// B cannot put A's user into its own group.
		b.do("POST", "/Groups", `{"schemas":["`+urnGroup+`"],"displayName":"entra-dbas","members":[{"value":"`+alice+`"}]}`).wantError(t, http.StatusBadRequest, "invalidValue")
		// An overlapping user name is a conflict, not a takeover.
		b.do("POST", "/Users", `{"schemas":["`+urnUser+`"],"userName":"Alice@example.com"}`).wantError(t, http.StatusConflict, "uniqueness")

		u, err := a.st.GetUser(t.Context(), alice)
		if err != nil || !u.Active || u.SourceName != connection {
			t.Fatalf("A's user after B's attempts: %+v (%v), want active, source %s", u, err, connection)
		}
		if g, err := a.st.GetGroup(t.Context(), gid); err != nil || len(g.Members) != 1 {
			t.Fatalf("A's group after B's attempts: %+v (%v)", g, err)
		}
		// B's own user stays B's.
		bob := b.createUser("bob@example.com")
		a.do("GET", "/Users/"+bob, nil).wantError(t, http.StatusNotFound, "")
		if u, _ := a.st.GetUser(t.Context(), bob); u.SourceName != "entra" || u.Source != store.SourceSCIM {
			t.Fatalf("B's user has source %s %s", u.Source, u.SourceName)
		}
	})
}

// TestRoleAttribute: the role attribute takes only configured database
// roles; "administrator" (the console's role) is refused, naming the
// allowed roles.
func TestRoleAttribute(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(t *testing.T) *harness) {
		h := newHarness(t)
		for _, role := range []string{"administrator", "superuser"} {
			r := h.do("POST", "/Users", `{"schemas":["`+urnUser+`","`+urnPortcullis+`"],"userName":"mallory-`+role+`@example.com","`+urnPortcullis+`":{"role":"`+role+`"}}`)
			r.wantError(t, http.StatusBadRequest, "invalidValue")
			if !strings.Contains(r.raw, "analyst, dba, reader") {
				t.Errorf("role %s: the error does not name the allowed roles: %s", role, r.raw)
			}
			if _, err := h.st.GetUserByName(t.Context(), "mallory-"+role+"@example.com"); err == nil {
				t.Errorf("role %s: the user was created", role)
			}
		}
		id := h.createUser("eve@example.com")
		h.do("PATCH", "/Users/"+id, patch(`{"op":"add","path":"`+urnPortcullis+`:role","value":"administrator"}`)).wantError(t, http.StatusBadRequest, "invalidValue")
		if u, _ := h.st.GetUser(t.Context(), id); u.Role != "" {
			t.Fatalf("PATCH set role %q", u.Role)
		}
		h.do("PATCH", "/Users/"+id, patch(`{"op":"add","path":"`+urnPortcullis+`:role","value":"dba"}`)).want(t, 200)
	})
}

// TestDeleteLeavesTombstone: a deleted user leaves a tombstone; creating
// the name again removes it and refuses tokens from before.
func TestDeleteLeavesTombstone(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(t *testing.T) *harness) {
		h := newHarness(t)
		id := h.createUser("gone@example.com")
		h.do("DELETE", "/Users/"+id, nil).want(t, 204)
		ts, err := h.st.GetTombstone(t.Context(), "gone@example.com")
		if err != nil || ts.Source != store.SourceSCIM || ts.SourceName != connection {
			t.Fatalf("tombstone: %+v (%v)", ts, err)
		}
		again := h.createUser("gone@example.com")
		u, err := h.st.GetUser(t.Context(), again)
		if err != nil || u.NotBefore.Before(ts.Deleted) {
			t.Fatalf("re-provisioned user: NotBefore %v (%v), want after the deletion at %v", u.NotBefore, err, ts.Deleted)
		}
		if _, err := h.st.GetTombstone(t.Context(), "gone@example.com"); err == nil {
			t.Fatal("the tombstone survived the re-provisioning")
		}
	})
}

// TestOktaAndEntraApart: the Okta and the Entra sequences run on one
// SCIM endpoint and one store, each with its own connection's token; each
// sees only its own users and groups, so both pass unchanged, and what
// each made records its connection.
func TestOktaAndEntraApart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		okta := newHarness(t)
		entra := okta.asConnection(t, "entra")
		current := entra
		srv := scim.New(scim.Options{Store: okta.st, Roles: testRoles, BaseURL: baseURL,
			OnChange: func(_ context.Context, c scim.Change) {
				current.mu.Lock()
				defer current.mu.Unlock()
				current.changes = append(current.changes, c)
			}})
		okta.srv, entra.srv = srv, srv
		manager := entra.createUser("manager@contoso.com")
		t.Run("entra", func(t *testing.T) { runSteps(t, entra, entraSteps()) })
		current = okta
		t.Run("okta", func(t *testing.T) { runSteps(t, okta, oktaSteps()) })

		u, err := okta.st.GetUser(t.Context(), manager)
		if err != nil || u.Source != store.SourceSCIM || u.SourceName != "entra" {
			t.Fatalf("Entra's manager after the Okta sequence: %+v %v", u, err)
		}
		groups, _, err := okta.st.ListGroups(t.Context(), store.ListOptions{})
		if err != nil || len(groups) != 1 || groups[0].Connection != "entra" {
			t.Fatalf("groups after both sequences: %+v %v, want Entra's one, recorded as entra's", groups, err)
		}
		okta.t = t
		if r := okta.do("GET", "/Groups", nil).want(t, 200); strings.Contains(r.raw, "Entra Group") {
			t.Fatalf("Okta's token lists Entra's group: %s", r.raw)
		}
	})
}
