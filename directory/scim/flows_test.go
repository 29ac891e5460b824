package scim_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// step is one request of an IdP's sequence. Path and body may name ids
// saved by earlier steps as {user}, {group}, ...
type step struct {
	name   string
	method string
	path   string
	body   string
	header []string
	status int
	// save stores the response's id under this name.
	save  string
	check func(t *testing.T, h *harness, r *response)
	// events are the events the step must append, as "kind subject".
	events []string
}

// runSteps runs a sequence; a failed step stops it (the next depend on it).
func runSteps(t *testing.T, h *harness, steps []step) {
	expand := h.expand
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			h.t = t
			before := h.lastEvent()
			h.takeChanges()
			path := expand(st.path)
			if i := strings.IndexByte(path, '?'); i >= 0 {
				q, err := url.ParseQuery(path[i+1:])
				if err != nil {
					t.Fatal(err)
				}
				path = path[:i] + "?" + q.Encode()
			}
			var body any
			if st.body != "" {
				body = expand(st.body)
			}
			r := h.do(st.method, path, body, st.header...).want(t, st.status)
			if st.save != "" {
				h.vars[st.save] = r.body["id"].(string)
			}
			if st.check != nil {
				st.check(t, h, r)
			}
			want := make([]string, len(st.events))
			for i, e := range st.events {
				want[i] = expand(e)
			}
			if got := h.events(before); !slices.Equal(got, want) {
				t.Errorf("events = %q, want %q", got, want)
			}
			if got := h.takeChanges(); !slices.Equal(got, want) {
				t.Errorf("OnChange calls = %q, want %q", got, want)
			}
		})
		if !ok {
			return
		}
	}
}

// wantResource checks the RFC 7644 shape of a returned resource: schemas,
// id, meta with resourceType, created, lastModified, location and a weak
// ETag version matching the ETag header.
func wantResource(t *testing.T, r *response, resourceType, version string) {
	t.Helper()
	id, _ := r.body["id"].(string)
	if id == "" {
		t.Fatalf("no id in %s", r.raw)
	}
	endpoint := "/Users/"
	core := urnUser
	if resourceType == "Group" {
		endpoint, core = "/Groups/", urnGroup
	}
	if got := strs(r.body["schemas"]); len(got) == 0 || got[0] != core {
		t.Errorf("schemas = %v, want %s first", got, core)
	}
	if got := get(r.body, "meta.resourceType"); got != resourceType {
		t.Errorf("meta.resourceType = %v, want %s", got, resourceType)
	}
	if got := get(r.body, "meta.location"); got != baseURL+endpoint+id {
		t.Errorf("meta.location = %v, want %s", got, baseURL+endpoint+id)
	}
	for _, k := range []string{"meta.created", "meta.lastModified"} {
		if s, _ := get(r.body, k).(string); s == "" {
			t.Errorf("%s is missing", k)
		}
	}
	if got := get(r.body, "meta.version"); got != version {
		t.Errorf("meta.version = %v, want %s", got, version)
	}
	if got := r.header.Get("ETag"); got != version {
		t.Errorf("ETag = %q, want %q", got, version)
	}
	if r.status == http.StatusCreated {
		if got := r.header.Get("Location"); got != baseURL+endpoint+id {
			t.Errorf("Location = %q, want %q", got, baseURL+endpoint+id)
		}
	}
}

// wantList checks a ListResponse and its names.
func wantList(total, start int, want ...string) func(t *testing.T, h *harness, r *response) {
	return func(t *testing.T, h *harness, r *response) {
		t.Helper()
		if got := strs(r.body["schemas"]); !slices.Equal(got, []string{urnList}) {
			t.Errorf("schemas = %v", got)
		}
		if got := r.body["totalResults"]; got != float64(total) {
			t.Errorf("totalResults = %v, want %d", got, total)
		}
		if got := r.body["itemsPerPage"]; got != float64(len(want)) {
			t.Errorf("itemsPerPage = %v, want %d", got, len(want))
		}
		if got := r.body["startIndex"]; got != float64(start) {
			t.Errorf("startIndex = %v, want %d", got, start)
		}
		if _, ok := r.body["Resources"].([]any); !ok {
			t.Errorf("Resources is not an array: %s", r.raw)
		}
		if got := names(t, r); !slices.Equal(got, want) {
			t.Errorf("resources = %q, want %q", got, want)
		}
	}
}

func wantAttr(path string, want any) func(t *testing.T, h *harness, r *response) {
	return func(t *testing.T, h *harness, r *response) {
		t.Helper()
		if s, ok := want.(string); ok {
			want = h.expand(s)
		}
		if got := get(r.body, path); !equalJSON(got, want) {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
}

func equalJSON(got, want any) bool {
	if want == nil {
		return got == nil
	}
	switch w := want.(type) {
	case int:
		return got == float64(w)
	}
	return got == want
}

func checks(fs ...func(t *testing.T, h *harness, r *response)) func(t *testing.T, h *harness, r *response) {
	return func(t *testing.T, h *harness, r *response) {
		t.Helper()
		for _, f := range fs {
			f(t, h, r)
		}
	}
}

func resource(kind, version string) func(t *testing.T, h *harness, r *response) {
	return func(t *testing.T, h *harness, r *response) { t.Helper(); wantResource(t, r, kind, version) }
}

// TestOkta replays the requests Okta's SCIM 2.0 provisioning sends
// (its test suite and a user's lifecycle).
func TestOkta(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		runSteps(t, h, oktaSteps())
	})
}

// oktaSteps is the sequence of requests the IdP sends.
func oktaSteps() []step {
	return []step{
		{name: "look the user up before creating it", method: "GET",
			path:   `/Users?filter=userName eq "alice@example.com"&startIndex=1&count=100`,
			status: http.StatusOK, check: wantList(0, 1)},
		{name: "create the user", method: "POST", path: "/Users", status: http.StatusCreated, save: "user",
			body: `{"schemas":["` + urnUser + `"],"userName":"alice@example.com",
				"name":{"givenName":"Alice","familyName":"Liddell"},
				"emails":[{"primary":true,"value":"alice@example.com","type":"work"}],
				"displayName":"Alice Liddell","locale":"en-US","externalId":"00ujl29u0le5T6Aj10h7",
				"groups":[],"password":"1mz050nq","active":true}`,
			check: checks(resource("User", `W/"1"`),
				wantAttr("userName", "alice@example.com"), wantAttr("active", true),
				wantAttr("name.givenName", "Alice"), wantAttr("locale", "en-US"),
				wantAttr("externalId", "00ujl29u0le5T6Aj10h7"), wantAttr("emails.0.type", "work"),
				wantAttr("password", nil),
				func(t *testing.T, h *harness, r *response) {
					if strings.Contains(r.raw, "1mz050nq") {
						t.Errorf("the password came back: %s", r.raw)
					}
					u, err := h.st.GetUserByName(t.Context(), "alice@example.com")
					if err != nil {
						t.Fatal(err)
					}
					if u.Source != "scim" || !u.Active || u.GivenName != "Alice" || u.ExternalID != "00ujl29u0le5T6Aj10h7" {
						t.Errorf("stored user = %+v", u)
					}
					if strings.Contains(string(u.Extra), "1mz050nq") {
						t.Errorf("the password was stored: %s", u.Extra)
					}
				})},
		{name: "find it by userName, case-insensitively", method: "GET",
			path:   `/Users?filter=userName eq "ALICE@example.com"&startIndex=1&count=100`,
			status: http.StatusOK, check: wantList(1, 1, "alice@example.com")},
		{name: "get it", method: "GET", path: "/Users/{user}", status: http.StatusOK,
			check: resource("User", `W/"1"`)},
		{name: "deactivate", method: "PATCH", path: "/Users/{user}", status: http.StatusOK,
			body:   patch(`{"op":"replace","value":{"active":false}}`),
			check:  checks(resource("User", `W/"2"`), wantAttr("active", false)),
			events: []string{"user.deactivated alice@example.com"}},
		{name: "reactivate", method: "PATCH", path: "/Users/{user}", status: http.StatusOK,
			body:  patch(`{"op":"replace","value":{"active":true}}`),
			check: checks(resource("User", `W/"3"`), wantAttr("active", true))},
		{name: "replace the whole user", method: "PUT", path: "/Users/{user}", status: http.StatusOK,
			body: `{"schemas":["` + urnUser + `"],"id":"{user}","userName":"alice@example.com",
				"name":{"givenName":"Alicia","familyName":"Liddell"},
				"emails":[{"primary":true,"value":"alicia@example.com","type":"work"}],
				"displayName":"Alicia Liddell","locale":"en-GB","externalId":"00ujl29u0le5T6Aj10h7",
				"groups":[],"active":true,"meta":{"resourceType":"User"}}`,
			check: checks(resource("User", `W/"4"`), wantAttr("name.givenName", "Alicia"),
				wantAttr("emails.0.value", "alicia@example.com"), wantAttr("locale", "en-GB"))},
		{name: "create a group", method: "POST", path: "/Groups", status: http.StatusCreated, save: "group",
			body:  `{"schemas":["` + urnGroup + `"],"displayName":"Engineering","members":[]}`,
			check: checks(resource("Group", `W/"1"`), wantAttr("displayName", "Engineering"), wantAttr("members", nil))},
		{name: "push a member", method: "PATCH", path: "/Groups/{group}", status: http.StatusOK,
			body: patch(`{"op":"add","path":"members","value":[{"value":"{user}","display":"alice@example.com"}]}`),
			check: checks(resource("Group", `W/"2"`), wantAttr("members.0.value", "{user}"),
				wantAttr("members.0.type", "User"), wantAttr("members.0.$ref", baseURL+"/Users/{user}"),
				wantAttr("members.0.display", nil))},
		{name: "the user lists the group", method: "GET", path: "/Users/{user}", status: http.StatusOK,
			check: checks(wantAttr("groups.0.display", "Engineering"), wantAttr("groups.0.type", "direct"))},
		{name: "get the group without members", method: "GET", path: "/Groups/{group}?excludedAttributes=members",
			status: http.StatusOK, check: checks(resource("Group", `W/"2"`), wantAttr("members", nil))},
		{name: "rename the group", method: "PATCH", path: "/Groups/{group}", status: http.StatusOK,
			body:   patch(`{"op":"replace","value":{"id":"{group}","displayName":"Engineering Team"}}`),
			check:  checks(wantAttr("displayName", "Engineering Team"), resource("Group", `W/"3"`)),
			events: []string{"user.roles_changed alice@example.com"}},
		{name: "remove the member", method: "PATCH", path: "/Groups/{group}", status: http.StatusOK,
			body:   patch(`{"op":"remove","path":"members[value eq \"{user}\"]"}`),
			check:  wantAttr("members", nil),
			events: []string{"user.roles_changed alice@example.com"}},
		{name: "list the groups", method: "GET", path: "/Groups?startIndex=1&count=100", status: http.StatusOK,
			check: wantList(1, 1, "Engineering Team")},
		{name: "delete the group", method: "DELETE", path: "/Groups/{group}", status: http.StatusNoContent},
		{name: "the group is gone", method: "GET", path: "/Groups/{group}", status: http.StatusNotFound,
			check: func(t *testing.T, h *harness, r *response) { r.wantError(t, http.StatusNotFound, "") }},
		{name: "delete the user", method: "DELETE", path: "/Users/{user}", status: http.StatusNoContent,
			events: []string{"user.deleted alice@example.com"}},
		{name: "the user is gone", method: "GET", path: "/Users/{user}", status: http.StatusNotFound,
			check: func(t *testing.T, h *harness, r *response) { r.wantError(t, http.StatusNotFound, "") }},
	}
}

// TestEntra replays the requests Microsoft Entra ID's provisioning
// service sends, with its capitalised ops, path-less PATCH with dotted
// keys, booleans as strings and the enterprise extension.
func TestEntra(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		h.createUser("manager@contoso.com")
		runSteps(t, h, entraSteps())
	})
}

// entraSteps is the sequence of requests the IdP sends.
func entraSteps() []step {
	return []step{
		{name: "look the user up", method: "GET",
			path:   `/Users?filter=userName eq "Test_User_dfeef4c5@contoso.com"`,
			status: http.StatusOK, check: wantList(0, 1)},
		{name: "create the user with the enterprise extension", method: "POST", path: "/Users",
			status: http.StatusCreated, save: "user",
			body: `{"schemas":["` + urnUser + `","` + urnEnterprise + `"],
				"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_dfeef4c5@contoso.com",
				"active":true,"displayName":"Test User",
				"emails":[{"primary":true,"type":"work","value":"Test_User_fd0ea19b@contoso.com"}],
				"meta":{"resourceType":"User"},
				"name":{"formatted":"Test User","familyName":"User","givenName":"Test"},
				"roles":[],
				"` + urnEnterprise + `":{"employeeNumber":"701984","department":"Tour Operations",
					"costCenter":"4130","manager":{"value":"26118915-6090-4610-87e4-49d8ca9f808d"}}}`,
			check: checks(resource("User", `W/"1"`),
				wantAttr(urnEnterprise+":employeeNumber", "701984"),
				wantAttr(urnEnterprise+":manager.value", "26118915-6090-4610-87e4-49d8ca9f808d"),
				wantAttr("name.formatted", "Test User"),
				func(t *testing.T, h *harness, r *response) {
					if got := strs(r.body["schemas"]); !slices.Equal(got, []string{urnUser, urnEnterprise}) {
						t.Errorf("schemas = %v", got)
					}
				})},
		{name: "find it by externalId", method: "GET",
			path:   `/Users?filter=externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
			status: http.StatusOK, check: wantList(1, 1, "Test_User_dfeef4c5@contoso.com")},
		{name: "capitalised ops with value-filter and URN paths", method: "PATCH", path: "/Users/{user}",
			status: http.StatusOK,
			body: patch(`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@contoso.com"}`,
				`{"op":"Replace","path":"name.familyName","value":"updatedFamilyName"}`,
				`{"op":"Add","path":"`+urnEnterprise+`:manager","value":"f3b3c2b1-0000-4000-8000-000000000001"}`,
				`{"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555 0100"}`),
			check: checks(resource("User", `W/"2"`),
				wantAttr("emails.0.value", "updatedEmail@contoso.com"), wantAttr("emails.0.type", "work"),
				wantAttr("name.familyName", "updatedFamilyName"), wantAttr("name.givenName", "Test"),
				wantAttr(urnEnterprise+":manager.value", "f3b3c2b1-0000-4000-8000-000000000001"),
				wantAttr(urnEnterprise+":department", "Tour Operations"),
				wantAttr("phoneNumbers.0.type", "mobile"), wantAttr("phoneNumbers.0.value", "+1 555 0100"))},
		{name: "path-less replace with dotted keys", method: "PATCH", path: "/Users/{user}", status: http.StatusOK,
			body: patch(`{"op":"Replace","value":{"name.givenName":"Testy","displayName":"Testy User",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Sales",
				"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"}}`),
			check: checks(wantAttr("name.givenName", "Testy"), wantAttr("name.familyName", "updatedFamilyName"),
				wantAttr("displayName", "Testy User"), wantAttr(urnEnterprise+":department", "Sales"),
				wantAttr(urnEnterprise+":employeeNumber", "701984"))},
		{name: "disable with the string False", method: "PATCH", path: "/Users/{user}", status: http.StatusOK,
			body:   patch(`{"op":"Replace","path":"active","value":"False"}`),
			check:  wantAttr("active", false),
			events: []string{"user.deactivated Test_User_dfeef4c5@contoso.com"}},
		{name: "enable with the string True, path-less", method: "PATCH", path: "/Users/{user}", status: http.StatusOK,
			body:  patch(`{"op":"Replace","value":{"active":"True"}}`),
			check: wantAttr("active", true)},
		{name: "assign a role through the portcullis extension", method: "PATCH", path: "/Users/{user}",
			status: http.StatusOK,
			body:   patch(`{"op":"Add","path":"` + urnPortcullis + `:role","value":"dba"}`),
			check: checks(wantAttr(urnPortcullis+":role", "dba"), func(t *testing.T, h *harness, r *response) {
				u, err := h.st.GetUserByName(t.Context(), "Test_User_dfeef4c5@contoso.com")
				if err != nil || u.Role != "dba" {
					t.Errorf("stored role = %q (%v), want dba", u.Role, err)
				}
			}),
			events: []string{"user.roles_changed Test_User_dfeef4c5@contoso.com"}},
		{name: "a custom extension attribute", method: "PATCH", path: "/Users/{user}", status: http.StatusOK,
			body: patch(`{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:CustomAttribute","value":"custom"}`),
			check: checks(wantAttr("urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:CustomAttribute", "custom"),
				func(t *testing.T, h *harness, r *response) {
					if !slices.Contains(strs(r.body["schemas"]), "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User") {
						t.Errorf("schemas = %v", r.body["schemas"])
					}
				})},
		{name: "remove the custom extension", method: "PATCH", path: "/Users/{user}", status: http.StatusOK,
			body: patch(`{"op":"Remove","path":"urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"}`),
			check: func(t *testing.T, h *harness, r *response) {
				if strings.Contains(r.raw, "CustomExtensionName") {
					t.Errorf("the extension is still there: %s", r.raw)
				}
			}},
		{name: "create a group", method: "POST", path: "/Groups", status: http.StatusCreated, save: "group",
			body: `{"externalId":"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159","displayName":"Entra Group",
				"meta":{"resourceType":"Group"},"members":[],"schemas":["` + urnGroup + `"]}`,
			check: checks(resource("Group", `W/"1"`), wantAttr("externalId", "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"))},
		{name: "find the group by displayName without members", method: "GET",
			path:   `/Groups?excludedAttributes=members&filter=displayName eq "Entra Group"`,
			status: http.StatusOK, check: checks(wantList(1, 1, "Entra Group"), wantAttr("Resources.0.members", nil))},
		{name: "add a member", method: "PATCH", path: "/Groups/{group}", status: http.StatusOK,
			body:  patch(`{"op":"Add","path":"members","value":[{"value":"{user}"}]}`),
			check: wantAttr("members.0.value", "{user}")},
		{name: "check membership with a filter", method: "GET",
			path:   `/Groups?excludedAttributes=members&filter=id eq "{group}" and members[value eq "{user}"]`,
			status: http.StatusOK, check: wantList(1, 1, "Entra Group")},
		{name: "remove the member by value", method: "PATCH", path: "/Groups/{group}", status: http.StatusOK,
			body:   patch(`{"op":"Remove","path":"members","value":[{"value":"{user}"}]}`),
			check:  wantAttr("members", nil),
			events: []string{"user.roles_changed Test_User_dfeef4c5@contoso.com"}},
		{name: "membership filter finds nothing", method: "GET",
			path:   `/Groups?excludedAttributes=members&filter=id eq "{group}" and members[value eq "{user}"]`,
			status: http.StatusOK, check: wantList(0, 1)},
		{name: "rename the group", method: "PATCH", path: "/Groups/{group}", status: http.StatusOK,
			body:  patch(`{"op":"Replace","path":"displayName","value":"Entra Group Renamed"}`),
			check: wantAttr("displayName", "Entra Group Renamed")},
		{name: "delete the user", method: "DELETE", path: "/Users/{user}", status: http.StatusNoContent,
			events: []string{"user.deleted Test_User_dfeef4c5@contoso.com"}},
	}
}
