package saml

import (
	"strings"

	crewsaml "github.com/crewjam/saml"

	"github.com/portcullisdb/portcullis/auth/username"
)

// Well-known attribute names (OIDs, and the short names IdPs use).
var (
	emailAttrs = []string{"urn:oid:0.9.2342.19200300.100.1.3", "mail", "email", "emailaddress",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}
	nameAttrs    = []string{"urn:oid:2.16.840.1.113730.3.1.241", "displayName", "urn:oid:2.5.4.3", "cn"}
	givenAttrs   = []string{"urn:oid:2.5.4.42", "givenName", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"}
	surnameAttrs = []string{"urn:oid:2.5.4.4", "sn", "surname", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"}
)

// identity reads who logged in from a validated assertion.
func (s *SP) identity(a *crewsaml.Assertion) (Identity, error) {
	attrs := map[string][]string{}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			var values []string
			for _, v := range at.Values {
				values = append(values, strings.TrimSpace(v.Value))
			}
			for _, name := range []string{at.Name, at.FriendlyName} {
				if name != "" {
					attrs[name] = append(attrs[name], values...)
				}
			}
		}
	}
	id := Identity{
		Subject:     strings.TrimSpace(a.Subject.NameID.Value),
		Email:       first(attrs, emailAttrs),
		DisplayName: first(attrs, nameAttrs),
		GivenName:   first(attrs, givenAttrs),
		FamilyName:  first(attrs, surnameAttrs),
		Attributes:  attrs,
	}
	if s.cfg.UsernameAttribute == "" {
		id.Username = id.Subject
		if id.Email == "" && strings.Contains(id.Subject, "@") {
			id.Email = id.Subject
		}
	} else {
		id.Username = first(attrs, []string{s.cfg.UsernameAttribute})
	}
	switch {
	case id.Subject == "":
		return Identity{}, refused("the assertion has an empty NameID")
	case id.Username == "" && s.cfg.UsernameAttribute != "":
		return Identity{}, refused("the assertion has no %q attribute: release it to portcullis at the IdP, or change saml.username_attribute", s.cfg.UsernameAttribute)
	}
	var err error
	if id.Username, err = username.Display(id.Username); err != nil {
		return Identity{}, refused("the assertion's user name cannot be a portcullis user name: %v (fix it at the IdP, or change saml.username_attribute)", err)
	}
	if id.Email != "" {
		if _, err := username.Normalize(id.Email); err != nil {
			return Identity{}, refused("the assertion's email cannot be used: %v (fix the address at the IdP)", err)
		}
	}
	switch {
	case strings.ContainsAny(id.Username, "/ \t\r\n"):
		return Identity{}, refused("the user name %q holds \"/\" or whitespace, which MySQL user names here cannot", id.Username)
	}
	return id, nil
}

// first is the first non-empty value of the first attribute present.
func first(attrs map[string][]string, names []string) string {
	for _, n := range names {
		for _, v := range attrs[n] {
			if v != "" {
				return v
			}
		}
	}
	return ""
}
