package scim_test

import (
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// directory seeds the users the filter and paging tests query, in this
// order (the store's list order), and returns their ids by short name.
func directory(t *testing.T, h *harness) map[string]string {
	t.Helper()
	ids := map[string]string{}
	users := []struct{ short, body string }{
		{"alice", `{"schemas":["` + urnUser + `","` + urnEnterprise + `","urn:example:ext:1.0:User"],
			"userName":"alice@example.com","displayName":"Alice Liddell","externalId":"EXT-1","title":"Engineer",
			"name":{"givenName":"Alice","familyName":"Liddell"},
			"emails":[{"value":"alice@example.com","type":"work","primary":true},{"value":"alice@home.org","type":"home"}],
			"` + urnEnterprise + `":{"department":"Eng","employeeNumber":"100"},
			"urn:example:ext:1.0:User":{"level":3}}`},
		{"bob", `{"schemas":["` + urnUser + `","` + urnEnterprise + `","urn:example:ext:1.0:User"],
			"userName":"Bob@Example.com","displayName":"Bob Builder","externalId":"ext-2","active":false,
			"emails":[{"value":"bob@example.com","type":"work"}],
			"` + urnEnterprise + `":{"department":"Ops"},
			"urn:example:ext:1.0:User":{"level":7}}`},
		{"carol", `{"schemas":["` + urnUser + `","urn:example:ext:1.0:User"],
			"userName":"carol@corp.test","title":"Manager","active":true,
			"urn:example:ext:1.0:User":{"level":5}}`},
		{"robert", `{"schemas":["` + urnUser + `"],"userName":"robert'); DROP TABLE users;--"}`},
	}
	for _, u := range users {
		r := h.do("POST", "/Users", u.body).want(t, http.StatusCreated)
		ids[u.short] = r.body["id"].(string)
		time.Sleep(2 * time.Millisecond) // distinct meta.created
	}
	h.createGroup("admins", ids["alice"])
	return ids
}

func TestFilters(t *testing.T) {
	const alice, bob, carol, robert = "alice@example.com", "Bob@Example.com", "carol@corp.test", "robert'); DROP TABLE users;--"
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		ids := directory(t, h)
		bobCreated := get(h.do("GET", "/Users/"+ids["bob"], nil).want(t, http.StatusOK).body, "meta.created").(string)
		tests := []struct {
			name     string
			filter   string
			want     []string
			scimType string // an error is expected
		}{
			{name: "eq", filter: `userName eq "alice@example.com"`, want: []string{alice}},
			{name: "eq ignores the case of userName", filter: `userName eq "ALICE@EXAMPLE.COM"`, want: []string{alice}},
			{name: "attribute names are case-insensitive", filter: `USERNAME Eq "bob@example.com"`, want: []string{bob}},
			{name: "ne", filter: `userName ne "alice@example.com"`, want: []string{bob, carol, robert}},
			{name: "co", filter: `userName co "EXAMPLE"`, want: []string{alice, bob}},
			{name: "sw", filter: `userName sw "car"`, want: []string{carol}},
			{name: "ew", filter: `userName ew ".test"`, want: []string{carol}},
			{name: "pr", filter: `displayName pr`, want: []string{alice, bob}},
			{name: "pr on a multi-valued attribute", filter: `emails pr`, want: []string{alice, bob}},
			{name: "gt on strings", filter: `userName gt "bob"`, want: []string{bob, carol, robert}},
			{name: "ge on strings", filter: `userName ge "carol@corp.test"`, want: []string{carol, robert}},
			{name: "lt on strings", filter: `userName lt "bob@example.com"`, want: []string{alice}},
			{name: "le on strings", filter: `userName le "BOB@example.com"`, want: []string{alice, bob}},
			{name: "gt on dates", filter: `meta.created gt "` + bobCreated + `"`, want: []string{carol, robert}},
			{name: "ge on dates", filter: `meta.created ge "` + bobCreated + `"`, want: []string{bob, carol, robert}},
			{name: "lt on dates", filter: `meta.created lt "` + bobCreated + `"`, want: []string{alice}},
			{name: "le on dates", filter: `meta.created le "` + bobCreated + `"`, want: []string{alice, bob}},
			{name: "lastModified after a past date", filter: `meta.lastModified gt "2011-05-13T04:42:34Z"`, want: []string{alice, bob, carol, robert}},
			{name: "gt on numbers", filter: `urn:example:ext:1.0:User:level gt 4`, want: []string{bob, carol}},
			{name: "le on numbers", filter: `urn:example:ext:1.0:User:level le 3`, want: []string{alice}},
			{name: "boolean eq false", filter: `active eq false`, want: []string{bob}},
			{name: "boolean ne true", filter: `active ne true`, want: []string{bob}},
			{name: "and", filter: `userName co "example" and active eq true`, want: []string{alice}},
			{name: "or", filter: `userName sw "alice" or userName sw "carol"`, want: []string{alice, carol}},
			{name: "not", filter: `not (userName co "example")`, want: []string{carol, robert}},
			{name: "and binds tighter than or", filter: `userName sw "alice" or userName sw "bob" and active eq true`, want: []string{alice}},
			{name: "parentheses", filter: `(userName sw "alice" or userName sw "bob") and active eq false`, want: []string{bob}},
			{name: "value path with a sub-attribute", filter: `emails[type eq "work"].value eq "bob@example.com"`, want: []string{bob}},
			{name: "value path alone", filter: `emails[type eq "home"]`, want: []string{alice}},
			{name: "value path with and", filter: `emails[type eq "work" and value ew "example.com"]`, want: []string{alice, bob}},
			{name: "value path with three terms", filter: `emails[type eq "work" and value co "alice" and primary eq true]`, want: []string{alice}},
			{name: "value path with not", filter: `emails[not (type eq "work")]`, want: []string{alice}},
			{name: "value paths combined", filter: `emails[type eq "home"] or emails[value sw "bob"]`, want: []string{alice, bob}},
			{name: "sub-attribute of a multi-valued attribute", filter: `emails.type eq "home"`, want: []string{alice}},
			{name: "complex attribute compares its value", filter: `emails co "bob"`, want: []string{bob}},
			{name: "sub-attribute of a complex attribute", filter: `name.givenName eq "alice"`, want: []string{alice}},
			{name: "enterprise extension by URN", filter: `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "ops"`, want: []string{bob}},
			{name: "enterprise attribute without its URN", filter: `department eq "Eng"`, want: []string{alice}},
			{name: "core attribute with its URN", filter: `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bob"`, want: []string{bob}},
			{name: "externalId is case-exact", filter: `externalId eq "ext-1"`, want: nil},
			{name: "externalId", filter: `externalId eq "EXT-1"`, want: []string{alice}},
			{name: "id", filter: `id eq "` + ids["carol"] + `"`, want: []string{carol}},
			{name: "groups of a user", filter: `groups.display eq "admins"`, want: []string{alice}},
			{name: "eq null is absent", filter: `title eq null`, want: []string{bob, robert}},
			{name: "unknown attribute matches nothing", filter: `favoriteColor eq "blue"`, want: nil},
			{name: "injection text matched literally", filter: `userName eq "robert'); DROP TABLE users;--"`, want: []string{robert}},
			{name: "quote injection is a string", filter: `userName eq "x\" or \"1\"=\"1"`, want: nil},
			{name: "SQL tautology is a string", filter: `userName eq "' OR '1'='1"`, want: nil},
			{name: "SQL comment is a string", filter: `userName eq "alice@example.com'--"`, want: nil},
			{name: "escaped quote in a value", filter: `userName co "\")"`, want: nil},
			{name: "unknown operator", filter: `userName xx "alice"`, scimType: "invalidFilter"},
			{name: "missing value", filter: `userName eq`, scimType: "invalidFilter"},
			{name: "unquoted value", filter: `userName eq alice`, scimType: "invalidFilter"},
			{name: "gt on a boolean", filter: `active gt true`, scimType: "invalidFilter"},
			{name: "string for a boolean", filter: `active eq "maybe"`, scimType: "invalidFilter"},
			{name: "not a date", filter: `meta.created gt "yesterday"`, scimType: "invalidFilter"},
			{name: "number for a string", filter: `userName co 5`, scimType: "invalidFilter"},
			{name: "unclosed bracket", filter: `emails[type eq "work"`, scimType: "invalidFilter"},
			{name: "nested brackets", filter: `emails[type[value eq "x"]]`, scimType: "invalidFilter"},
			{name: "complex attribute without sub-attribute", filter: `name eq "Alice"`, scimType: "invalidFilter"},
			{name: "value path compared whole", filter: `emails[type eq "work"] eq "x"`, scimType: "invalidFilter"},
			{name: "gt null", filter: `userName gt null`, scimType: "invalidFilter"},
			{name: "SQL instead of a filter", filter: `1=1; DROP TABLE users`, scimType: "invalidFilter"},
			{name: "nested too deeply", filter: strings.Repeat("(", 2000) + `userName pr` + strings.Repeat(")", 2000), scimType: "invalidFilter"},
			{name: "too long", filter: `userName eq "` + strings.Repeat("a", 5000) + `"`, scimType: "invalidFilter"},
		}
		before := h.snapshot()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.t = t
				r := h.do("GET", "/Users?filter="+url.QueryEscape(tt.filter), nil)
				if tt.scimType != "" {
					r.wantError(t, http.StatusBadRequest, tt.scimType)
					return
				}
				r.want(t, http.StatusOK)
				wantList(len(tt.want), 1, tt.want...)(t, h, r)
			})
		}
		h.t = t
		h.wantUnchanged(t, before)

		groupTests := []struct {
			name, filter string
			want         []string
		}{
			{"displayName", `displayName eq "ADMINS"`, []string{"admins"}},
			{"member", `members[value eq "` + ids["alice"] + `"]`, []string{"admins"}},
			{"not a member", `members.value eq "` + ids["bob"] + `"`, nil},
			{"id and member", `id pr and members[value eq "` + ids["alice"] + `"]`, []string{"admins"}},
		}
		for _, tt := range groupTests {
			t.Run("groups "+tt.name, func(t *testing.T) {
				h.t = t
				r := h.do("GET", "/Groups?filter="+url.QueryEscape(tt.filter), nil).want(t, http.StatusOK)
				wantList(len(tt.want), 1, tt.want...)(t, h, r)
			})
		}
	})
}

func TestPaging(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		all := []string{"u1@x.test", "u2@x.test", "u3@x.test", "u4@x.test", "u5@x.test"}
		for _, n := range all {
			h.createUser(n)
		}
		tests := []struct {
			name     string
			query    string
			start    int
			want     []string
			scimType string
		}{
			{name: "defaults", query: "", start: 1, want: all},
			{name: "first page", query: "startIndex=1&count=2", start: 1, want: all[:2]},
			{name: "middle page", query: "startIndex=3&count=2", start: 3, want: all[2:4]},
			{name: "last partial page", query: "startIndex=5&count=2", start: 5, want: all[4:]},
			{name: "startIndex beyond the total", query: "startIndex=6&count=2", start: 6, want: nil},
			{name: "startIndex far beyond", query: "startIndex=1000", start: 1000, want: nil},
			{name: "count=0 counts only", query: "count=0", start: 1, want: nil},
			{name: "negative count is 0", query: "count=-3", start: 1, want: nil},
			{name: "huge count is capped", query: "count=100000", start: 1, want: all},
			{name: "startIndex 0 is 1", query: "startIndex=0&count=1", start: 1, want: all[:1]},
			{name: "negative startIndex is 1", query: "startIndex=-4&count=1", start: 1, want: all[:1]},
			{name: "filter and page", query: "filter=" + url.QueryEscape(`userName ne "u1@x.test"`) + "&startIndex=2&count=2", start: 2, want: all[2:4]},
			{name: "sortBy descending", query: "sortBy=userName&sortOrder=descending&count=3", start: 1, want: []string{"u5@x.test", "u4@x.test", "u3@x.test"}},
			{name: "sortBy created ascending, page 2", query: "sortBy=meta.created&startIndex=4", start: 4, want: all[3:]},
			{name: "startIndex not a number", query: "startIndex=abc", scimType: "invalidValue"},
			{name: "count not a number", query: "count=1.5", scimType: "invalidValue"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.t = t
				r := h.do("GET", "/Users?"+tt.query, nil)
				if tt.scimType != "" {
					r.wantError(t, http.StatusBadRequest, tt.scimType)
					return
				}
				r.want(t, http.StatusOK)
				total := len(all)
				if strings.Contains(tt.query, "filter") {
					total = len(all) - 1
				}
				wantList(total, tt.start, tt.want...)(t, h, r)
			})
		}
	})
}

func TestAttributesParameters(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newHarness func(*testing.T) *harness) {
		h := newHarness(t)
		ids := directory(t, h)
		tests := []struct {
			name  string
			query string
			keys  []string // top-level keys of the resource
			check func(t *testing.T, doc map[string]any)
		}{
			{name: "attributes with a sub-attribute", query: "attributes=userName,emails.value",
				keys: []string{"emails", "id", "schemas", "userName"},
				check: func(t *testing.T, doc map[string]any) {
					if got := get(doc, "emails.1"); len(got.(map[string]any)) != 1 || get(doc, "emails.1.value") != "alice@home.org" {
						t.Errorf("emails = %v", doc["emails"])
					}
				}},
			{name: "attributes naming an extension attribute", query: "attributes=" + urnEnterprise + ":department",
				keys: []string{"id", "schemas", urnEnterprise},
				check: func(t *testing.T, doc map[string]any) {
					if got := doc[urnEnterprise]; len(got.(map[string]any)) != 1 {
						t.Errorf("extension = %v", got)
					}
					if got := strs(doc["schemas"]); !slices.Equal(got, []string{urnUser, urnEnterprise}) {
						t.Errorf("schemas = %v", got)
					}
				}},
			{name: "attributes naming a whole extension", query: "attributes=" + urnEnterprise,
				keys: []string{"id", "schemas", urnEnterprise}},
			{name: "attribute names are case-insensitive", query: "attributes=USERNAME,Meta.Version",
				keys: []string{"id", "meta", "schemas", "userName"}},
			{name: "excludedAttributes", query: "excludedAttributes=emails,meta,groups,urn:example:ext:1.0:User",
				keys: []string{"active", "displayName", "externalId", "id", "name", "schemas", "title", urnEnterprise, "userName"}},
			{name: "id cannot be excluded", query: "excludedAttributes=id,name,emails.type",
				check: func(t *testing.T, doc map[string]any) {
					if doc["id"] == nil || doc["name"] != nil || get(doc, "emails.0.type") != nil || get(doc, "emails.0.value") == nil {
						t.Errorf("resource = %v", doc)
					}
				}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.t = t
				for _, path := range []string{"/Users/" + ids["alice"] + "?" + tt.query,
					"/Users?filter=" + url.QueryEscape(`userName eq "alice@example.com"`) + "&" + tt.query} {
					r := h.do("GET", path, nil).want(t, http.StatusOK)
					doc := r.body
					if list, ok := r.body["Resources"].([]any); ok {
						doc = list[0].(map[string]any)
					}
					if tt.keys != nil {
						var keys []string
						for k := range doc {
							keys = append(keys, k)
						}
						sort.Strings(keys)
						if !slices.Equal(keys, tt.keys) {
							t.Errorf("%s: keys = %q, want %q", path, keys, tt.keys)
						}
					}
					if tt.check != nil {
						tt.check(t, doc)
					}
				}
			})
		}
	})
}
