package scim

import (
	"strings"
)

// Schema URNs (RFC 7643 §8.7, RFC 7644 §3) and portcullis's own extension.
const (
	URNUser           = "urn:ietf:params:scim:schemas:core:2.0:User"
	URNGroup          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	URNEnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	// URNPortcullisUser carries the role an IdP assigns a user; its
	// attribute "role" is store.User.Role.
	URNPortcullisUser = "urn:ietf:params:scim:schemas:extension:portcullis:2.0:User"

	urnListResponse          = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	urnPatchOp               = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	urnError                 = "urn:ietf:params:scim:api:messages:2.0:Error"
	urnSchema                = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	urnResourceType          = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	urnServiceProviderConfig = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
)

// Attribute types (RFC 7643 §2.3).
const (
	typeString    = "string"
	typeBoolean   = "boolean"
	typeDecimal   = "decimal"
	typeInteger   = "integer"
	typeDateTime  = "dateTime"
	typeBinary    = "binary"
	typeReference = "reference"
	typeComplex   = "complex"
)

// Mutability and returned values (RFC 7643 §7).
const (
	readOnly  = "readOnly"
	readWrite = "readWrite"
	immutable = "immutable"
	writeOnly = "writeOnly"

	returnedAlways  = "always"
	returnedNever   = "never"
	returnedDefault = "default"
)

// attr is one attribute definition; the schemas below are built from them
// and serve both the /Schemas endpoint and input validation.
type attr struct {
	name        string
	typ         string
	multi       bool
	required    bool
	caseExact   bool
	mutability  string // "" is readWrite
	returned    string // "" is default
	uniqueness  string // "" is none
	canonical   []string
	refTypes    []string
	description string
	sub         []*attr
}

// find returns the attribute of attrs named name, case-insensitively.
func find(attrs []*attr, name string) *attr {
	for _, a := range attrs {
		if strings.EqualFold(a.name, name) {
			return a
		}
	}
	return nil
}

func (a *attr) subAttr(name string) *attr {
	if a == nil {
		return nil
	}
	return find(a.sub, name)
}

func (a *attr) isComplex() bool { return a != nil && a.typ == typeComplex }

func (a *attr) isReadOnly() bool { return a != nil && a.mutability == readOnly }

// schemaDef is a schema (RFC 7643 §7).
type schemaDef struct {
	id, name, description string
	attrs                 []*attr
}

// resourceType binds an endpoint to its core schema and extensions.
type resourceType struct {
	name, endpoint, description string
	schema                      *schemaDef
	extensions                  []*schemaDef
}

// extension returns the extension schema named urn, case-insensitively.
func (rt *resourceType) extension(urn string) *schemaDef {
	for _, e := range rt.extensions {
		if strings.EqualFold(e.id, urn) {
			return e
		}
	}
	return nil
}

// coreAttr finds a common (id, externalId, meta) or core attribute.
func (rt *resourceType) coreAttr(name string) *attr {
	if a := find(commonAttrs, name); a != nil {
		return a
	}
	return find(rt.schema.attrs, name)
}

func str(name, desc string) *attr { return &attr{name: name, typ: typeString, description: desc} }

// multiSub is the usual sub-attributes of a multi-valued attribute
// (emails, phoneNumbers, ...), value typed typ.
func multiSub(typ string, types ...string) []*attr {
	return []*attr{
		{name: "value", typ: typ, description: "The attribute's value."},
		{name: "display", typ: typeString, description: "A human-readable name, primarily used for display purposes."},
		{name: "type", typ: typeString, canonical: types, description: "A label indicating the attribute's function."},
		{name: "primary", typ: typeBoolean, description: "Whether this is the primary value."},
	}
}

// commonAttrs are on every resource (RFC 7643 §3.1); they belong to no
// schema, so /Schemas does not list them.
var commonAttrs = []*attr{
	{name: "id", typ: typeString, caseExact: true, mutability: readOnly, returned: returnedAlways, uniqueness: "server",
		description: "Unique identifier for the resource, assigned by portcullis."},
	{name: "externalId", typ: typeString, caseExact: true, description: "The identifier the provisioning client uses."},
	{name: "meta", typ: typeComplex, mutability: readOnly, description: "Resource metadata.", sub: []*attr{
		{name: "resourceType", typ: typeString, caseExact: true, mutability: readOnly},
		{name: "created", typ: typeDateTime, mutability: readOnly},
		{name: "lastModified", typ: typeDateTime, mutability: readOnly},
		{name: "location", typ: typeReference, caseExact: true, mutability: readOnly, refTypes: []string{"uri"}},
		{name: "version", typ: typeString, caseExact: true, mutability: readOnly},
	}},
}

var userSchema = &schemaDef{
	id:          URNUser,
	name:        "User",
	description: "User Account",
	attrs: []*attr{
		{name: "userName", typ: typeString, required: true, uniqueness: "server",
			description: "Unique identifier for the user, used to log in; compared case-insensitively."},
		{name: "name", typ: typeComplex, description: "The components of the user's real name.", sub: []*attr{
			str("formatted", "The full name, formatted for display."),
			str("familyName", "The family name."),
			str("givenName", "The given name."),
			str("middleName", "The middle name(s)."),
			str("honorificPrefix", "The honorific prefix(es)."),
			str("honorificSuffix", "The honorific suffix(es)."),
		}},
		str("displayName", "The name of the user, suitable for display."),
		str("nickName", "The casual way to address the user."),
		{name: "profileUrl", typ: typeReference, refTypes: []string{"external"}, description: "A URI of the user's online profile."},
		str("title", "The user's title."),
		str("userType", "The relationship between the organization and the user."),
		str("preferredLanguage", "The user's preferred written or spoken language."),
		str("locale", "The user's default location."),
		str("timezone", "The user's time zone, in IANA form."),
		{name: "active", typ: typeBoolean, description: "Whether the user may log in; false deprovisions."},
		{name: "password", typ: typeString, mutability: writeOnly, returned: returnedNever,
			description: "Accepted and discarded: portcullis keeps no SCIM passwords."},
		{name: "emails", typ: typeComplex, multi: true, description: "Email addresses.", sub: multiSub(typeString, "work", "home", "other")},
		{name: "phoneNumbers", typ: typeComplex, multi: true, description: "Phone numbers.", sub: multiSub(typeString, "work", "home", "mobile", "fax", "pager", "other")},
		{name: "ims", typ: typeComplex, multi: true, description: "Instant messaging addresses.", sub: multiSub(typeString)},
		{name: "photos", typ: typeComplex, multi: true, description: "URLs of photos.", sub: multiSub(typeReference, "photo", "thumbnail")},
		{name: "addresses", typ: typeComplex, multi: true, description: "Physical mailing addresses.", sub: []*attr{
			str("formatted", "The full mailing address."),
			str("streetAddress", "The street address."),
			str("locality", "The city or locality."),
			str("region", "The state or region."),
			str("postalCode", "The zip or postal code."),
			str("country", "The country."),
			{name: "type", typ: typeString, canonical: []string{"work", "home", "other"}},
			{name: "primary", typ: typeBoolean},
		}},
		{name: "groups", typ: typeComplex, multi: true, mutability: readOnly,
			description: "The groups the user belongs to; change them through the Group resources.", sub: []*attr{
				{name: "value", typ: typeString, mutability: readOnly},
				{name: "$ref", typ: typeReference, mutability: readOnly, refTypes: []string{"Group"}},
				{name: "display", typ: typeString, mutability: readOnly},
				{name: "type", typ: typeString, mutability: readOnly, canonical: []string{"direct", "indirect"}},
			}},
		{name: "entitlements", typ: typeComplex, multi: true, description: "Entitlements.", sub: multiSub(typeString)},
		{name: "roles", typ: typeComplex, multi: true, description: "Roles (kept, not interpreted: portcullis reads the role of " + URNPortcullisUser + ").", sub: multiSub(typeString)},
		{name: "x509Certificates", typ: typeComplex, multi: true, description: "X.509 certificates.", sub: multiSub(typeBinary)},
	},
}

var groupSchema = &schemaDef{
	id:          URNGroup,
	name:        "Group",
	description: "Group",
	attrs: []*attr{
		{name: "displayName", typ: typeString, required: true, uniqueness: "server",
			description: "A human-readable name for the group; unique, case-insensitively. Teams refer to groups by it."},
		{name: "members", typ: typeComplex, multi: true, description: "The members of the group: users only.", sub: []*attr{
			{name: "value", typ: typeString, caseExact: true, mutability: immutable, description: "The id of a User."},
			{name: "$ref", typ: typeReference, mutability: immutable, refTypes: []string{"User"}},
			{name: "type", typ: typeString, mutability: immutable, canonical: []string{"User"}},
			{name: "display", typ: typeString, mutability: readOnly},
		}},
	},
}

var enterpriseSchema = &schemaDef{
	id:          URNEnterpriseUser,
	name:        "EnterpriseUser",
	description: "Enterprise User",
	attrs: []*attr{
		str("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
		str("costCenter", "Identifies the name of a cost center."),
		str("organization", "Identifies the name of an organization."),
		str("division", "Identifies the name of a division."),
		str("department", "Identifies the name of a department."),
		{name: "manager", typ: typeComplex, description: "The user's manager.", sub: []*attr{
			{name: "value", typ: typeString, description: "The id of the manager's User."},
			{name: "$ref", typ: typeReference, refTypes: []string{"User"}},
			{name: "displayName", typ: typeString, mutability: readOnly},
		}},
	},
}

var portcullisSchema = &schemaDef{
	id:          URNPortcullisUser,
	name:        "PortcullisUser",
	description: "portcullis attributes of a user",
	attrs: []*attr{
		{name: "role", typ: typeString, caseExact: true,
			description: "The portcullis role the IdP assigns this user; a change ends the user's sessions."},
	},
}

var (
	userType = &resourceType{
		name: "User", endpoint: "/Users", description: "User Account",
		schema: userSchema, extensions: []*schemaDef{enterpriseSchema, portcullisSchema},
	}
	groupType = &resourceType{
		name: "Group", endpoint: "/Groups", description: "Group",
		schema: groupSchema,
	}
	resourceTypes = []*resourceType{userType, groupType}
	allSchemas    = []*schemaDef{userSchema, groupSchema, enterpriseSchema, portcullisSchema}
)

// --- discovery documents (RFC 7643 §5-7) ---

func (a *attr) describe() map[string]any {
	m := map[string]any{
		"name":        a.name,
		"type":        a.typ,
		"multiValued": a.multi,
		"description": a.description,
		"required":    a.required,
		"mutability":  orDefault(a.mutability, readWrite),
		"returned":    orDefault(a.returned, returnedDefault),
	}
	if a.typ != typeComplex && a.typ != typeBoolean {
		m["caseExact"] = a.caseExact
		m["uniqueness"] = orDefault(a.uniqueness, "none")
	}
	if len(a.canonical) > 0 {
		m["canonicalValues"] = a.canonical
	}
	if len(a.refTypes) > 0 {
		m["referenceTypes"] = a.refTypes
	}
	if len(a.sub) > 0 {
		subs := make([]any, len(a.sub))
		for i, s := range a.sub {
			subs[i] = s.describe()
		}
		m["subAttributes"] = subs
	}
	return m
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (s *Server) schemaDoc(d *schemaDef) map[string]any {
	attrs := make([]any, len(d.attrs))
	for i, a := range d.attrs {
		attrs[i] = a.describe()
	}
	return map[string]any{
		"schemas":     []string{urnSchema},
		"id":          d.id,
		"name":        d.name,
		"description": d.description,
		"attributes":  attrs,
		"meta": map[string]any{
			"resourceType": "Schema",
			"location":     s.base + "/Schemas/" + d.id,
		},
	}
}

func (s *Server) resourceTypeDoc(rt *resourceType) map[string]any {
	exts := make([]any, 0, len(rt.extensions))
	for _, e := range rt.extensions {
		exts = append(exts, map[string]any{"schema": e.id, "required": false})
	}
	return map[string]any{
		"schemas":          []string{urnResourceType},
		"id":               rt.name,
		"name":             rt.name,
		"endpoint":         rt.endpoint,
		"description":      rt.description,
		"schema":           rt.schema.id,
		"schemaExtensions": exts,
		"meta": map[string]any{
			"resourceType": "ResourceType",
			"location":     s.base + "/ResourceTypes/" + rt.name,
		},
	}
}

func (s *Server) serviceProviderConfigDoc() map[string]any {
	return map[string]any{
		"schemas":          []string{urnServiceProviderConfig},
		"documentationUri": "https://github.com/portcullisdb/portcullis",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": maxCount},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "Bearer token",
			"description": "The connection's SCIM token in an Authorization: Bearer header (RFC 6750).",
			"primary":     true,
		}},
		"meta": map[string]any{
			"resourceType": "ServiceProviderConfig",
			"location":     s.base + "/ServiceProviderConfig",
		},
	}
}
