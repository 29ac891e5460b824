package scim_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/directory/scim"
)

// fuzzUser and fuzzGroup are the resources fuzzed filters run on.
const (
	fuzzUser = `{"schemas":["` + urnUser + `","` + urnEnterprise + `"],"id":"2819c223-7f76-453a-919d-413861904646",
		"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"bjensen@example.com","displayName":"Babs Jensen",
		"name":{"givenName":"Barbara","familyName":"Jensen","formatted":"Ms. Barbara J Jensen III"},
		"emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
		"phoneNumbers":[{"value":"555-555-8377","type":"work"}],"active":true,"title":"Tour Guide","userType":"Employee",
		"groups":[{"value":"e9e30dba-f08f-4109-8486-d5c6a331660a","display":"Tour Guides","type":"direct"}],
		"` + urnEnterprise + `":{"employeeNumber":"701984","department":"Tour Operations","manager":{"value":"26118915"}},
		"urn:example:ext:1.0:User":{"level":3,"tags":["a","b"],"nested":{"deep":[1,2,{"x":null}]}},
		"meta":{"resourceType":"User","created":"2010-01-23T04:56:22Z","lastModified":"2011-05-13T04:42:34Z","version":"W/\"3\""}}`
	fuzzGroup = `{"schemas":["` + urnGroup + `"],"id":"e9e30dba-f08f-4109-8486-d5c6a331660a","displayName":"Tour Guides",
		"members":[{"value":"2819c223-7f76-453a-919d-413861904646","type":"User"},{"value":"902c246b","type":"User"}],
		"meta":{"resourceType":"Group","created":"2010-01-23T04:56:22Z","lastModified":"2011-05-13T04:42:34Z","version":"W/\"3\""}}`
)

// FuzzFilter feeds filter text (and the same text as a PATCH path) to the
// parser and evaluator IdP input reaches: whatever the input, they return
// a result or an error, never panic, and never take long.
func FuzzFilter(f *testing.F) {
	for _, seed := range []string{
		// Okta
		`userName eq "test.user@okta.local"`,
		`userName eq "isv.user@example.com"`,
		`displayName eq "Test SCIMv2"`,
		`id eq "2819c223-7f76-453a-919d-413861904646"`,
		// Entra ID
		`userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"`,
		`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
		`displayName eq "Group_ae5fb2c2"`,
		`id eq "e9e30dba-f08f-4109-8486-d5c6a331660a" and members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		// RFC 7644 §3.4.2.2 examples
		`userName Eq "john"`,
		`title pr`,
		`name.familyName co "O'Malley"`,
		`userName sw "J"`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`meta.lastModified ge "2011-05-13T04:42:34Z"`,
		`meta.lastModified lt "2011-05-13T04:42:34Z"`,
		`title pr and userType eq "Employee"`,
		`title pr or userType eq "Intern"`,
		`schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`,
		`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
		`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
		`userType eq "Employee" and (emails.type eq "work")`,
		`userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`,
		`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
		// PATCH paths and oddities
		`members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		`emails[type eq "work"].value`,
		`emails[type eq "work"].value eq "x@y"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`,
		`urn:example:ext:1.0:User:level gt 2.5e0 and active eq true`,
		`userName eq "a\"b\\c\u00E9" or displayName eq null`,
		`not(not(not(userName pr)))`,
		`((((userName pr))))`,
		`emails[not (type eq "work")]`,
		`pcvp--0 pr`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		start := time.Now()
		for _, res := range []struct{ typ, doc string }{{"User", fuzzUser}, {"Group", fuzzGroup}} {
			if _, err := scim.MatchFilter(res.typ, filter, []byte(res.doc)); err != nil && errors.Unwrap(err) != nil {
				t.Fatalf("filter error wraps another error: %v", err)
			}
			for _, op := range []string{"add", "replace", "remove"} {
				scim.ApplyPatchPath(res.typ, op, filter, "v", []byte(res.doc))
			}
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%q took %v", filter, d)
		}
	})
}
