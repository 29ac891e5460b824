package scim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/directory/scim"
	"github.com/portcullisdb/portcullis/store"
)

// TestEvents checks the offboarding contract: each change that must end
// sessions appends its event (after the write) and calls OnChange; other
// changes append nothing.
func TestEvents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		// Each case gets its own users "<case>-a@x.test" and "<case>-b@x.test"
		// in a group "<case>-g": ids as {a}, {b}, {g}.
		tests := []struct {
			name   string
			setup  string // extra attributes of user a, as JSON members
			method string
			path   string
			body   string
			status int
			want   []string // "kind user" with {a}/{b} standing for the user names
		}{
			{name: "deactivate by PATCH", method: "PATCH", path: "/Users/{a}", body: patch(`{"op":"replace","path":"active","value":false}`),
				status: 200, want: []string{"user.deactivated {an}"}},
			{name: "deactivate by Entra's string", method: "PATCH", path: "/Users/{a}", body: patch(`{"op":"Replace","path":"active","value":"False"}`),
				status: 200, want: []string{"user.deactivated {an}"}},
			{name: "deactivate by PUT", method: "PUT", path: "/Users/{a}", body: `{"schemas":["` + urnUser + `"],"userName":"{an}","active":false}`,
				status: 200, want: []string{"user.deactivated {an}"}},
			{name: "deactivating again is recorded again", setup: `"active":false`, method: "PATCH", path: "/Users/{a}",
				body: patch(`{"op":"replace","value":{"active":false}}`), status: 200, want: []string{"user.deactivated {an}"}},
			{name: "editing an inactive user is not a deactivation", setup: `"active":false`, method: "PATCH", path: "/Users/{a}",
				body: patch(`{"op":"replace","path":"displayName","value":"x"}`), status: 200},
			{name: "reactivation", setup: `"active":false`, method: "PATCH", path: "/Users/{a}",
				body: patch(`{"op":"replace","path":"active","value":true}`), status: 200},
			{name: "PUT without active keeps the user inactive", setup: `"active":false`, method: "PUT", path: "/Users/{a}",
				body: `{"schemas":["` + urnUser + `"],"userName":"{an}","title":"t"}`, status: 200},
			{name: "delete", method: "DELETE", path: "/Users/{a}", status: 204, want: []string{"user.deleted {an}"}},
			{name: "role set", method: "PATCH", path: "/Users/{a}", body: patch(`{"op":"add","path":"` + urnPortcullis + `:role","value":"dba"}`),
				status: 200, want: []string{"user.roles_changed {an}"}},
			{name: "role changed by PUT", setup: `"` + urnPortcullis + `":{"role":"dba"}`, method: "PUT", path: "/Users/{a}",
				body:   `{"schemas":["` + urnUser + `","` + urnPortcullis + `"],"userName":"{an}","` + urnPortcullis + `":{"role":"reader"}}`,
				status: 200, want: []string{"user.roles_changed {an}"}},
			{name: "role removed", setup: `"` + urnPortcullis + `":{"role":"dba"}`, method: "PATCH", path: "/Users/{a}",
				body: patch(`{"op":"remove","path":"` + urnPortcullis + `:role"}`), status: 200, want: []string{"user.roles_changed {an}"}},
			{name: "role unchanged", setup: `"` + urnPortcullis + `":{"role":"dba"}`, method: "PUT", path: "/Users/{a}",
				body: `{"schemas":["` + urnUser + `","` + urnPortcullis + `"],"userName":"{an}","title":"x","` + urnPortcullis + `":{"role":"dba"}}`, status: 200},
			{name: "rename ends the old name's sessions", method: "PATCH", path: "/Users/{a}",
				body: patch(`{"op":"replace","path":"userName","value":"renamed-{an}"}`), status: 200, want: []string{"user.roles_changed {an}"}},
			{name: "removed from a group by filter", method: "PATCH", path: "/Groups/{g}",
				body: patch(`{"op":"remove","path":"members[value eq \"{a}\"]"}`), status: 200, want: []string{"user.roles_changed {an}"}},
			{name: "removed from a group by value", method: "PATCH", path: "/Groups/{g}",
				body: patch(`{"op":"Remove","path":"members","value":[{"value":"{b}"}]}`), status: 200, want: []string{"user.roles_changed {bn}"}},
			{name: "members replaced", method: "PATCH", path: "/Groups/{g}",
				body: patch(`{"op":"replace","path":"members","value":[{"value":"{b}"}]}`), status: 200, want: []string{"user.roles_changed {an}"}},
			{name: "all members removed", method: "PATCH", path: "/Groups/{g}",
				body: patch(`{"op":"remove","path":"members"}`), status: 200, want: []string{"user.roles_changed {an}", "user.roles_changed {bn}"}},
			{name: "removed by PUT", method: "PUT", path: "/Groups/{g}",
				body: `{"schemas":["` + urnGroup + `"],"displayName":"{gn}","members":[{"value":"{a}"}]}`, status: 200, want: []string{"user.roles_changed {bn}"}},
			{name: "group renamed", method: "PATCH", path: "/Groups/{g}",
				body: patch(`{"op":"replace","path":"displayName","value":"renamed-{gn}"}`), status: 200, want: []string{"user.roles_changed {an}", "user.roles_changed {bn}"}},
			{name: "group deleted", method: "DELETE", path: "/Groups/{g}", status: 204, want: []string{"user.roles_changed {an}", "user.roles_changed {bn}"}},
			{name: "member added", method: "PATCH", path: "/Groups/{g}",
				body: patch(`{"op":"add","path":"members","value":[{"value":"{c}"}]}`), status: 200},
			{name: "group externalId changed", method: "PATCH", path: "/Groups/{g}",
				body: patch(`{"op":"replace","path":"externalId","value":"x"}`), status: 200},
			{name: "bad request", method: "PATCH", path: "/Users/{a}",
				body: patch(`{"op":"replace","path":"active","value":false}`, `{"op":"replace","path":"nope","value":1}`), status: 400},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.t = t
				prefix := string(rune('a'+i%26)) + string(rune('a'+i/26))
				h.vars["an"], h.vars["bn"], h.vars["gn"] = prefix+"-a@x.test", prefix+"-b@x.test", prefix+"-g"
				var extra []string
				if tt.setup != "" {
					var m map[string]json.RawMessage
					if err := json.Unmarshal([]byte("{"+tt.setup+"}"), &m); err != nil {
						t.Fatal(err)
					}
					for k, v := range m {
						extra = append(extra, k, string(v))
					}
				}
				h.vars["a"] = h.createUser(h.vars["an"], extra...)
				h.vars["b"] = h.createUser(h.vars["bn"])
				h.vars["c"] = h.createUser(prefix + "-c@x.test")
				h.vars["g"] = h.createGroup(h.vars["gn"], h.vars["a"], h.vars["b"])
				before := h.lastEvent()
				h.takeChanges()

				var body any
				if tt.body != "" {
					body = h.expand(tt.body)
				}
				h.do(tt.method, h.expand(tt.path), body).want(t, tt.status)

				var want []string
				for _, w := range tt.want {
					want = append(want, h.expand(w))
				}
				if got := h.events(before); !slices.Equal(got, want) {
					t.Errorf("events = %q, want %q", got, want)
				}
				if got := h.takeChanges(); !slices.Equal(got, want) {
					t.Errorf("OnChange = %q, want %q", got, want)
				}
				evs, err := h.st.EventsSince(t.Context(), before, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range evs {
					var data map[string]string
					if err := json.Unmarshal(e.Data, &data); err != nil {
						t.Fatalf("event data %s: %v", e.Data, err)
					}
					if data["user_id"] == "" || data["connection"] != connection || data["reason"] == "" {
						t.Errorf("event data = %s", e.Data)
					}
				}
			})
		}
	})
}

// TestDeactivationRevokesRefreshTokens: a deactivated user cannot refresh
// their way back in.
func TestDeactivationRevokesRefreshTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		id := h.createUser("leaver@example.com")
		rt, err := h.st.CreateRefreshToken(t.Context(), store.RefreshToken{UserID: id, Hash: []byte("0123456789abcdef0123456789abcdef"),
			ExpiresAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		h.do("PATCH", "/Users/"+id, patch(`{"op":"replace","value":{"active":false}}`)).want(t, http.StatusOK)
		got, err := h.st.GetRefreshTokenByHash(t.Context(), rt.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.RevokedAt == nil {
			t.Errorf("the refresh token of a deactivated user is not revoked")
		}
	})
}

// flakyStore fails AppendEvent while failing is set, and ListUsers always.
type flakyStore struct {
	store.Store
	mu      sync.Mutex
	failing bool
}

func (s *flakyStore) AppendEvent(ctx context.Context, e store.Event) (int64, error) {
	s.mu.Lock()
	failing := s.failing
	s.mu.Unlock()
	if failing {
		return 0, errors.New("event log unavailable")
	}
	return s.Store.AppendEvent(ctx, e)
}

// Update hands fn a transaction whose event inserts fail the same way.
func (s *flakyStore) Update(ctx context.Context, fn func(tx store.Store) error) error {
	return s.Store.Update(ctx, func(tx store.Store) error { return fn(&flakyStore{Store: tx, failing: s.isFailing()}) })
}

func (s *flakyStore) isFailing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failing
}

func (s *flakyStore) ListUsers(context.Context, store.ListOptions) ([]store.User, int, error) {
	return nil, 0, errors.New("Error 1205: Lock wait timeout exceeded; SELECT secret FROM users")
}

// TestEventFailure: when the event cannot be appended the write rolls
// back with it (one transaction), the IdP gets a 500 and retries, and the
// retry records both.
func TestEventFailure(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		flaky := &flakyStore{Store: h.st, failing: true}
		h.srv = scim.New(scim.Options{Store: flaky, Roles: testRoles, Connection: connection, BaseURL: baseURL,
			OnChange: func(_ context.Context, c scim.Change) {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.changes = append(h.changes, c)
			}})
		id := h.createUser("flaky@example.com")
		before := h.lastEvent()
		deactivate := patch(`{"op":"replace","path":"active","value":false}`)
		tests := []struct {
			name    string
			failing bool
			status  int
			active  bool
			events  []string
			changes []string
		}{
			{"event log down: 500, the write rolls back, no hook", true, http.StatusInternalServerError, true,
				nil, nil},
			{"the retry records the event", false, http.StatusOK, false,
				[]string{"user.deactivated flaky@example.com"}, []string{"user.deactivated flaky@example.com"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.t = t
				flaky.mu.Lock()
				flaky.failing = tt.failing
				flaky.mu.Unlock()
				r := h.do("PATCH", "/Users/"+id, deactivate)
				if tt.status != http.StatusOK {
					r.wantError(t, tt.status, "")
				} else {
					r.want(t, tt.status)
				}
				u, err := h.st.GetUser(t.Context(), id)
				if err != nil || u.Active != tt.active {
					t.Errorf("user active = %v (%v), want %v", u.Active, err, tt.active)
				}
				if got := h.events(before); !slices.Equal(got, tt.events) {
					t.Errorf("events = %q, want %q", got, tt.events)
				}
				if got := h.takeChanges(); !slices.Equal(got, tt.changes) {
					t.Errorf("OnChange = %q, want %q", got, tt.changes)
				}
			})
		}
		t.Run("store errors stay in the log", func(t *testing.T) {
			h.t = t
			r := h.do("GET", "/Users", nil)
			r.wantError(t, http.StatusInternalServerError, "")
			if strings.Contains(r.raw, "secret") || strings.Contains(r.raw, "1205") {
				t.Errorf("the response shows the store error: %s", r.raw)
			}
		})
	})
}
