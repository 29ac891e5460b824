package scim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/auth/username"
	"github.com/portcullisdb/portcullis/store"
)

// A resource travels as a "document": its JSON object decoded into
// map[string]any (numbers as json.Number, so what the IdP sent is kept
// exactly). Requests are normalized into documents, PATCH edits documents,
// filters and projections read them, and only then are they mapped onto
// store.User and store.Group: the core attributes the store has columns
// for go there, everything else into Extra, verbatim.

// normalize checks doc (a request body, or a resource after a PATCH)
// against rt and returns it with canonical attribute names, "True"/"False"
// as booleans, read-only and write-only attributes dropped and empty
// values removed. Errors are *scimError invalidValue naming the attribute.
func normalize(rt *resourceType, doc map[string]any) (map[string]any, error) {
	if err := checkSchemas(rt, getCI(doc, "schemas")); err != nil {
		return nil, err
	}
	doc, err := unflatten(rt, doc)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		if err := normalizeTop(rt, out, k, doc[k]); err != nil {
			return nil, err
		}
	}
	for _, a := range rt.schema.attrs {
		if a.required && !present(out[a.name]) {
			return nil, badRequest(invalidValue, "%s is required", a.name)
		}
	}
	out["schemas"] = schemasOf(rt, out)
	return out, nil
}

// checkSchemas wants the resource's core schema among the "schemas" of
// a body, and no other resource's.
func checkSchemas(rt *resourceType, v any) error {
	list, ok := v.([]any)
	if !ok {
		return badRequest(invalidValue, `"schemas" must be an array listing %s`, rt.schema.id)
	}
	found := false
	for _, s := range list {
		s, ok := s.(string)
		if !ok {
			return badRequest(invalidValue, `"schemas" must hold strings`)
		}
		for _, other := range resourceTypes {
			if strings.EqualFold(s, other.schema.id) && other != rt {
				return badRequest(invalidValue, "schema %s is not a %s: this is the %s endpoint", s, rt.name, rt.endpoint)
			}
		}
		if strings.EqualFold(s, rt.schema.id) {
			found = true
		}
	}
	if !found {
		return badRequest(invalidValue, `"schemas" does not list %s`, rt.schema.id)
	}
	return nil
}

// unflatten moves attributes written with their schema URN as a key
// prefix ("urn:...:enterprise:2.0:User:department": "x", or the core
// schema's own URN) to where they belong, and merges an object under the
// core schema's URN into the top level.
func unflatten(rt *resourceType, doc map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(doc))
	moved := map[string]map[string]any{} // extension -> attributes
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		v := doc[k]
		switch {
		case strings.EqualFold(k, "schemas"):
			continue
		case strings.EqualFold(k, rt.schema.id):
			m, ok := v.(map[string]any)
			if !ok {
				return nil, badRequest(invalidValue, "%s must be an object", rt.schema.id)
			}
			for sk, sv := range m {
				out[sk] = sv
			}
			continue
		case hasPrefixFold(k, rt.schema.id+":"):
			out[k[len(rt.schema.id)+1:]] = v
			continue
		}
		flat := false
		for _, e := range rt.extensions {
			if hasPrefixFold(k, e.id+":") {
				if moved[e.id] == nil {
					moved[e.id] = map[string]any{}
				}
				moved[e.id][k[len(e.id)+1:]] = v
				flat = true
			}
		}
		if !flat {
			out[k] = v
		}
	}
	for ext, attrs := range moved {
		key, ok := keyCI(out, ext)
		if !ok {
			out[ext] = attrs
			continue
		}
		m, ok := out[key].(map[string]any)
		if !ok {
			return nil, badRequest(invalidValue, "%s must be an object", ext)
		}
		merged := maps.Clone(m)
		maps.Copy(merged, attrs)
		out[key] = merged
	}
	return out, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// normalizeTop normalizes one top-level attribute k of a document into out.
func normalizeTop(rt *resourceType, out map[string]any, k string, v any) error {
	if hasPrefixFold(k, "urn:") {
		if v == nil {
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return badRequest(invalidValue, "extension %s must be an object", k)
		}
		if ext := rt.extension(k); ext != nil {
			nm, err := normalizeObject(ext.attrs, m, ext.id+":", true)
			if err != nil {
				return err
			}
			return put(out, ext.id, nm)
		}
		// An extension we do not know: kept as sent.
		if len(m) == 0 {
			return nil
		}
		return put(out, k, m)
	}
	a := rt.coreAttr(k)
	if a == nil {
		return badRequest(invalidValue, "unknown attribute %q: %s has no such attribute (extension attributes go under their schema URN)", k, rt.schema.id)
	}
	if a.mutability == readOnly || a.mutability == writeOnly {
		return nil // ignored (RFC 7643 §2.2); a password is never kept
	}
	nv, err := normalizeValue(a, v, a.name, false)
	if err != nil {
		return err
	}
	return put(out, a.name, nv)
}

// put sets out[k] = v, refusing a key given twice in different cases.
func put(out map[string]any, k string, v any) error {
	if v == nil {
		return nil
	}
	if prev, ok := keyCI(out, k); ok {
		return badRequest(invalidValue, "attribute %q is given twice (as %q)", k, prev)
	}
	out[k] = v
	return nil
}

func normalizeValue(a *attr, v any, where string, lenient bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	if !a.multi {
		return normalizeSingle(a, v, where, lenient)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, badRequest(invalidValue, "%s is multi-valued: expected an array", where)
	}
	var out []any
	for _, e := range list {
		ne, err := normalizeSingle(a, e, where, lenient)
		if err != nil {
			return nil, err
		}
		if ne != nil {
			out = append(out, ne)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func normalizeSingle(a *attr, v any, where string, lenient bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch a.typ {
	case typeComplex:
		m, ok := v.(map[string]any)
		if !ok {
			// Entra sends manager as the manager's id alone.
			s, isString := v.(string)
			if !isString || a.subAttr("value") == nil {
				return nil, badRequest(invalidValue, "%s is complex: expected an object", where)
			}
			m = map[string]any{"value": s}
		}
		nm, err := normalizeObject(a.sub, m, where+".", lenient)
		if nm == nil || err != nil {
			return nil, err
		}
		return nm, nil
	case typeBoolean:
		b, ok := asBool(v)
		if !ok {
			return nil, badRequest(invalidValue, "%s is a boolean: expected true or false, got %s", where, jsonText(v))
		}
		return b, nil
	case typeInteger, typeDecimal:
		n, ok := v.(json.Number)
		if !ok {
			return nil, badRequest(invalidValue, "%s is a number, got %s", where, jsonText(v))
		}
		if _, err := n.Int64(); a.typ == typeInteger && err != nil {
			return nil, badRequest(invalidValue, "%s is an integer, got %s", where, n)
		}
		return n, nil
	case typeDateTime:
		s, ok := v.(string)
		if _, err := parseTime(s); !ok || err != nil {
			return nil, badRequest(invalidValue, "%s is a date-time: expected an RFC 3339 time, got %s", where, jsonText(v))
		}
		return s, nil
	default: // string, reference, binary
		s, ok := v.(string)
		if !ok {
			return nil, badRequest(invalidValue, "%s is a string, got %s", where, jsonText(v))
		}
		return s, nil
	}
}

// normalizeObject normalizes a complex value's sub-attributes (or an
// extension's attributes). lenient keeps attributes attrs does not define,
// as under a known extension; otherwise they are an error.
func normalizeObject(attrs []*attr, m map[string]any, where string, lenient bool) (map[string]any, error) {
	out := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		a := find(attrs, k)
		if a == nil {
			if !lenient {
				return nil, badRequest(invalidValue, "unknown attribute %q", where+k)
			}
			if err := put(out, k, v); err != nil {
				return nil, err
			}
			continue
		}
		if a.mutability == readOnly || a.mutability == writeOnly {
			continue
		}
		nv, err := normalizeValue(a, v, where+a.name, lenient)
		if err != nil {
			return nil, err
		}
		if err := put(out, a.name, nv); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// schemasOf lists the core schema and every extension doc carries.
func schemasOf(rt *resourceType, doc map[string]any) []any {
	out := []any{rt.schema.id}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		if hasPrefixFold(k, "urn:") {
			out = append(out, k)
		}
	}
	return out
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil || len(b) > 64 {
		return fmt.Sprintf("a %T", v)
	}
	return string(b)
}

// internalPrefix marks keys of a user's Extra that portcullis itself
// keeps there (a local account's sealed credentials): SCIM neither shows
// nor accepts them, and a PUT keeps them.
const internalPrefix = "urn:portcullis:local:"

// decodeExtra reads a resource's Extra (written by this package).
func decodeExtra(raw json.RawMessage) map[string]any {
	m := map[string]any{}
	if len(raw) == 0 {
		return m
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil || m == nil {
		return map[string]any{}
	}
	return m
}

func encodeExtra(m map[string]any) (json.RawMessage, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode extra attributes: %w", err)
	}
	return b, nil
}

// marshal is json.Marshal without HTML escaping.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// --- users ---

// userDoc is the editable document of u: everything a client may set,
// without id, meta and groups.
func userDoc(u store.User) map[string]any {
	doc := decodeExtra(u.Extra)
	for k := range doc {
		if strings.HasPrefix(k, internalPrefix) {
			delete(doc, k) // portcullis' own data on the user: never SCIM's
		}
	}
	doc["userName"] = u.UserName
	setString(doc, "externalId", u.ExternalID)
	setString(doc, "displayName", u.DisplayName)
	name, _ := doc["name"].(map[string]any)
	if name == nil {
		name = map[string]any{}
	}
	setString(name, "givenName", u.GivenName)
	setString(name, "familyName", u.FamilyName)
	if len(name) > 0 {
		doc["name"] = name
	}
	if len(u.Emails) > 0 {
		emails := make([]any, len(u.Emails))
		for i, e := range u.Emails {
			m := map[string]any{"value": e.Value}
			setString(m, "type", e.Type)
			if e.Primary {
				m["primary"] = true
			}
			emails[i] = m
		}
		doc["emails"] = emails
	}
	doc["active"] = u.Active
	if u.Role != "" {
		ext, _ := doc[URNPortcullisUser].(map[string]any)
		if ext == nil {
			ext = map[string]any{}
		}
		ext["role"] = u.Role
		doc[URNPortcullisUser] = ext
	}
	doc["schemas"] = schemasOf(userType, doc)
	return doc
}

func setString(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// userFrom maps a normalized document onto base (whose ID, Source and
// times it keeps). Without "active" the user keeps base.Active: a PUT that
// leaves it out never reactivates anyone.
func userFrom(doc map[string]any, base store.User) (store.User, error) {
	extra := maps.Clone(doc)
	delete(extra, "schemas")
	// Internal keys are neither set by a client nor lost by a replace:
	// they come from the stored user only.
	for k := range extra {
		if strings.HasPrefix(k, internalPrefix) {
			delete(extra, k)
		}
	}
	for k, v := range decodeExtra(base.Extra) {
		if strings.HasPrefix(k, internalPrefix) {
			extra[k] = v
		}
	}
	u := base
	u.UserName, _ = take(extra, "userName").(string)
	if u.UserName == "" {
		return store.User{}, badRequest(invalidValue, "userName is required")
	}
	// One rule for user names (auth/username): " alice@example.com" is
	// alice, and a name with control or invisible characters is refused.
	name, nerr := username.Display(u.UserName)
	if nerr != nil {
		return store.User{}, badRequest(invalidValue, "userName: %v", nerr)
	}
	u.UserName = name
	u.ExternalID, _ = take(extra, "externalId").(string)
	u.DisplayName, _ = take(extra, "displayName").(string)
	u.GivenName, u.FamilyName = "", ""
	if name, ok := extra["name"].(map[string]any); ok {
		name = maps.Clone(name)
		u.GivenName, _ = take(name, "givenName").(string)
		u.FamilyName, _ = take(name, "familyName").(string)
		if len(name) > 0 {
			extra["name"] = name
		} else {
			delete(extra, "name")
		}
	}
	u.Emails = nil
	for _, e := range elements(take(extra, "emails")) {
		m, _ := e.(map[string]any)
		value, _ := m["value"].(string)
		if value == "" {
			return store.User{}, badRequest(invalidValue, "emails: every email needs a value")
		}
		typ, _ := m["type"].(string)
		primary, _ := m["primary"].(bool)
		u.Emails = append(u.Emails, store.Email{Value: value, Type: typ, Primary: primary})
	}
	if active, ok := take(extra, "active").(bool); ok {
		u.Active = active
	}
	u.Role = ""
	if ext, ok := extra[URNPortcullisUser].(map[string]any); ok {
		ext = maps.Clone(ext)
		u.Role, _ = take(ext, "role").(string)
		if len(ext) > 0 {
			extra[URNPortcullisUser] = ext
		} else {
			delete(extra, URNPortcullisUser)
		}
	}
	if err := checkLengths(map[string]string{"userName": u.UserName, "externalId": u.ExternalID, "displayName": u.DisplayName,
		"name.givenName": u.GivenName, "name.familyName": u.FamilyName, URNPortcullisUser + ":role": u.Role}); err != nil {
		return store.User{}, err
	}
	var err error
	if u.Extra, err = encodeExtra(extra); err != nil {
		return store.User{}, err
	}
	return u, nil
}

// maxColumnLen is the longest value kept in a store column of its own
// (a TEXT column in MySQL holds 64 KiB).
const maxColumnLen = 16 << 10

// checkLengths refuses column values the engines would keep differently.
func checkLengths(values map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(values)) {
		if len(values[name]) > maxColumnLen {
			return badRequest(invalidValue, "%s is longer than %d bytes", name, maxColumnLen)
		}
	}
	return nil
}

// take removes m[k] and returns it.
func take(m map[string]any, k string) any {
	v := m[k]
	delete(m, k)
	return v
}

// userResource is u as the client sees it.
func (s *Server) userResource(u store.User, groups []store.Group) map[string]any {
	doc := userDoc(u)
	doc["id"] = u.ID
	if len(groups) > 0 {
		list := make([]any, len(groups))
		for i, g := range groups {
			list[i] = map[string]any{
				"value":   g.ID,
				"display": g.DisplayName,
				"$ref":    s.location(groupType, g.ID),
				"type":    "direct",
			}
		}
		doc["groups"] = list
	}
	doc["meta"] = s.meta(userType, u.ID, u.Created, u.Updated, u.Version)
	return doc
}

// --- groups ---

// groupDoc is the editable document of g.
func groupDoc(g store.Group) map[string]any {
	doc := decodeExtra(g.Extra)
	doc["displayName"] = g.DisplayName
	setString(doc, "externalId", g.ExternalID)
	if len(g.Members) > 0 {
		members := make([]any, len(g.Members))
		for i, id := range g.Members {
			members[i] = map[string]any{"value": id}
		}
		doc["members"] = members
	}
	doc["schemas"] = schemasOf(groupType, doc)
	return doc
}

// groupFrom maps a normalized document onto base.
func groupFrom(doc map[string]any, base store.Group) (store.Group, error) {
	extra := maps.Clone(doc)
	delete(extra, "schemas")
	g := base
	g.DisplayName, _ = take(extra, "displayName").(string)
	if strings.TrimSpace(g.DisplayName) == "" {
		return store.Group{}, badRequest(invalidValue, "displayName is required")
	}
	g.ExternalID, _ = take(extra, "externalId").(string)
	g.Members = nil
	seen := map[string]bool{}
	for _, e := range elements(take(extra, "members")) {
		m, _ := e.(map[string]any)
		value, _ := m["value"].(string)
		if value == "" {
			return store.Group{}, badRequest(invalidValue, "members: every member needs a value (a User id)")
		}
		if typ, _ := m["type"].(string); typ != "" && !strings.EqualFold(typ, "User") {
			return store.Group{}, badRequest(invalidValue, "member %q is a %s: groups hold users only (no nested groups)", value, typ)
		}
		if !seen[value] {
			seen[value] = true
			g.Members = append(g.Members, value)
		}
	}
	slices.Sort(g.Members)
	if err := checkLengths(map[string]string{"displayName": g.DisplayName, "externalId": g.ExternalID}); err != nil {
		return store.Group{}, err
	}
	var err error
	if g.Extra, err = encodeExtra(extra); err != nil {
		return store.Group{}, err
	}
	return g, nil
}

func (s *Server) groupResource(g store.Group) map[string]any {
	doc := groupDoc(g)
	doc["id"] = g.ID
	if members, ok := doc["members"].([]any); ok {
		for _, m := range members {
			m := m.(map[string]any)
			m["$ref"] = s.location(userType, m["value"].(string))
			m["type"] = "User"
		}
	}
	doc["meta"] = s.meta(groupType, g.ID, g.Created, g.Updated, g.Version)
	return doc
}

// --- common ---

func (s *Server) location(rt *resourceType, id string) string {
	return s.base + rt.endpoint + "/" + url.PathEscape(id)
}

func (s *Server) meta(rt *resourceType, id string, created, updated time.Time, version int64) map[string]any {
	return map[string]any{
		"resourceType": rt.name,
		"created":      created.UTC().Format(time.RFC3339Nano),
		"lastModified": updated.UTC().Format(time.RFC3339Nano),
		"location":     s.location(rt, id),
		"version":      etag(version),
	}
}

// etag is a resource version as a weak entity tag (RFC 7644 §3.14).
func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// encodeResource writes doc with its keys in the order people expect:
// schemas, id, externalId, the core attributes in schema order, others,
// extensions, meta.
func encodeResource(rt *resourceType, doc map[string]any) ([]byte, error) {
	order := []string{"schemas", "id", "externalId"}
	for _, a := range rt.schema.attrs {
		order = append(order, a.name)
	}
	var rest, exts []string
	for k := range doc {
		switch {
		case slices.Contains(order, k) || k == "meta":
		case hasPrefixFold(k, "urn:"):
			exts = append(exts, k)
		default:
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	slices.Sort(exts)
	order = append(append(append(order, rest...), exts...), "meta")
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	for _, k := range order {
		v, ok := doc[k]
		if !ok {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, err := marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode attribute %s: %w", k, err)
		}
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
