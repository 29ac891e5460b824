package integration

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/store"
)

// TestConsoleTeams: an administrator creates, edits and deletes a team in
// the console. Taking reader away from the team ends a live session of a
// member that used it; a form without the CSRF token and an unknown role
// are refused; every change is audited.
func TestConsoleTeams(t *testing.T) {
	h := startLocal(t)
	const adminName, member = "root@example.com", "tara@example.com"
	b := newBrowser(t)
	b.enrolAdmin(h, adminName, createLocal(t, h, adminName, "administrator"))
	provision(t, h.svc.Store, member) // in db-readers-dir, which team "readers" maps to reader
	ctx := context.Background()
	post := func(path string, form url.Values) page {
		t.Helper()
		form.Set("csrf", b.csrf(h.http))
		return b.post(h.http+path, form)
	}
	team := func(name string) (store.Team, error) { return h.svc.Store.GetTeam(ctx, name) }

	// Create, with two groups and one role.
	if p := post("/console/teams", url.Values{"name": {"analysts"}, "groups": {"bi, finance "}, "roles": {"reader"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create team: %d %.500s", p.status, p.body)
	}
	if got, err := team("analysts"); err != nil || !slices.Equal(got.Groups, []string{"bi", "finance"}) || !slices.Equal(got.Roles, []string{"reader"}) {
		t.Fatalf("created team: %+v %v", got, err)
	}
	if p := b.get(h.http + "/console/directory"); !strings.Contains(p.body, `data-team="analysts"`) || !strings.Contains(p.body, `value="bi, finance"`) {
		t.Fatalf("the directory page lists the new team: %.3000s", p.body)
	}

	// Refused: an unknown role, a missing name, a form without the CSRF token.
	for _, tt := range []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"unknown role", url.Values{"name": {"analysts"}, "roles": {"superuser"}}, http.StatusBadRequest, `role &#34;superuser&#34; is not configured: use one of`},
		{"no name", url.Values{"roles": {"reader"}}, http.StatusBadRequest, "a team needs a name"},
	} {
		if p := post("/console/teams", tt.form); p.status != tt.status || !strings.Contains(p.body, tt.want) {
			t.Errorf("%s: %d %.800s", tt.name, p.status, p.body)
		}
	}
	if p := b.post(h.http+"/console/teams", url.Values{"name": {"analysts"}, "roles": {"writer"}}); p.status != http.StatusForbidden || !strings.Contains(p.body, "came from another site") {
		t.Errorf("a form without the CSRF token: %d %.500s", p.status, p.body)
	}
	if got, _ := team("analysts"); !slices.Equal(got.Roles, []string{"reader"}) {
		t.Fatalf("a refused change must not land: %+v", got)
	}

	// Update "readers" so it no longer gives reader: the member's live
	// reader session ends.
	db := h.open(member, h.mint(member, nil, nil))
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatalf("the member's reader session: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := db.Exec("SELECT SLEEP(30)"); done <- err }()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if p := post("/console/teams", url.Values{"name": {"readers"}, "groups": {"db-readers-dir"}, "roles": {"writer"}}); p.status != http.StatusSeeOther {
		t.Fatalf("update team: %d %.500s", p.status, p.body)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the member's query finished instead of being ended")
		}
		t.Logf("the reader session ended after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		t.Fatal("the member's reader session outlived the team losing reader")
	}

	// Delete.
	if p := post("/console/teams/analysts/delete", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("delete team: %d %.500s", p.status, p.body)
	}
	if _, err := team("analysts"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted team: %v", err)
	}
	if p := post("/console/teams/analysts/delete", url.Values{}); p.status != http.StatusNotFound || !strings.Contains(p.body, "no team is named analysts") {
		t.Fatalf("delete a team that is gone: %d %.500s", p.status, p.body)
	}

	all := auditText(h)
	for _, want := range []string{
		"granted console: create team analysts (groups bi, finance; roles reader) by " + adminName,
		`denied console: update team analysts: role "superuser" is not configured`,
		"granted console: update team readers (groups db-readers-dir; roles writer) by " + adminName,
		"granted console: delete team analysts by " + adminName,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("audit lacks %q; admin events:\n%s", want, all)
		}
	}
}
