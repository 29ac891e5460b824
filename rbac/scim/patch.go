package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// PATCH (RFC 7644 §3.5.2) edits a resource's document; the result is then
// normalized and stored like a PUT, so a PATCH can only produce what a PUT
// could.

// patchOp is one operation of a PatchOp request.
type patchOp struct {
	Op       string
	Path     string
	Value    any
	HasValue bool
}

// parsePatch reads a PatchOp body: its schema, and operations whose
// "op" is add, replace or remove in any case (Entra sends "Replace").
func parsePatch(body map[string]any) ([]patchOp, error) {
	schemas, _ := getCI(body, "schemas").([]any)
	if !slices.ContainsFunc(schemas, func(s any) bool { s2, _ := s.(string); return strings.EqualFold(s2, urnPatchOp) }) {
		return nil, badRequest(invalidValue, `a PATCH body's "schemas" must list %s`, urnPatchOp)
	}
	for k := range body {
		if !strings.EqualFold(k, "schemas") && !strings.EqualFold(k, "Operations") {
			return nil, badRequest(invalidValue, "unknown attribute %q in a PatchOp", k)
		}
	}
	list, ok := getCI(body, "Operations").([]any)
	if !ok || len(list) == 0 {
		return nil, badRequest(invalidValue, `a PatchOp needs an "Operations" array with at least one operation`)
	}
	ops := make([]patchOp, 0, len(list))
	for i, raw := range list {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, badRequest(invalidSyntax, "operation %d is not an object", i+1)
		}
		var op patchOp
		for k, v := range m {
			switch strings.ToLower(k) {
			case "op":
				s, _ := v.(string)
				op.Op = strings.ToLower(s)
			case "path":
				s, ok := v.(string)
				if !ok && v != nil {
					return nil, badRequest(invalidPath, "operation %d: path must be a string", i+1)
				}
				op.Path = strings.TrimSpace(s)
			case "value":
				op.Value, op.HasValue = v, true
			default:
				return nil, badRequest(invalidSyntax, "operation %d: unknown member %q", i+1, k)
			}
		}
		switch op.Op {
		case "add", "replace", "remove":
		default:
			return nil, badRequest(invalidSyntax, `operation %d: op must be "add", "replace" or "remove"`, i+1)
		}
		if op.Op != "remove" && !op.HasValue {
			return nil, badRequest(invalidValue, "operation %d: %s needs a value", i+1, op.Op)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// patcher applies operations to the document of one resource.
type patcher struct {
	rt  *resourceType
	doc map[string]any
	id  string // the resource's id: an operation may restate it
	// touched records the attributes (canonical, with extension URN
	// prefix) the operations named.
	touched map[string]bool
}

func (p *patcher) apply(op patchOp) error {
	if op.Path == "" {
		return p.applyNoPath(op)
	}
	if k, ok := keyCI(p.doc, op.Path); ok && hasPrefixFold(k, "urn:") {
		// The whole object of an extension we do not know.
		return p.applyTarget(op, &patchTarget{ref: ref{ext: k}, whole: true})
	}
	t, err := parsePatchPath(p.rt, op.Path)
	if err != nil {
		return err
	}
	return p.applyTarget(op, t)
}

// applyNoPath is an add or replace whose value holds the attributes: each
// key is a path of its own, so Entra's {"name.givenName": "x"} and
// {"urn:...:enterprise:2.0:User:department": "y"} work as well as
// {"name": {"givenName": "x"}}.
func (p *patcher) applyNoPath(op patchOp) error {
	if op.Op == "remove" {
		return badRequest(noTarget, "a remove operation needs a path")
	}
	m, ok := op.Value.(map[string]any)
	if !ok {
		return badRequest(invalidValue, "an %s operation without a path needs an object value", op.Op)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if strings.EqualFold(k, "schemas") || strings.EqualFold(k, "meta") {
			continue // server-managed; some clients echo them back
		}
		if strings.TrimSpace(k) == "" {
			return badRequest(invalidPath, "an attribute name in the value is empty")
		}
		if err := p.apply(patchOp{Op: op.Op, Path: k, Value: m[k], HasValue: true}); err != nil {
			return err
		}
	}
	return nil
}

// patchTarget is a parsed PATCH path.
type patchTarget struct {
	ref   ref  // the attribute (with .sub when no filter)
	whole bool // the path is an extension URN: its whole object
	// attr[filter] and attr[filter].fsub
	filter  expr
	fsub    string
	fsubDef *attr
	// eq holds the "sub eq value" terms the filter requires, to make the
	// element when none matches (Entra's emails[type eq "work"].value).
	eq map[string]any
}

func (t *patchTarget) String() string {
	if t.whole {
		return t.ref.ext
	}
	return t.ref.String()
}

// parsePatchPath parses a PATCH path (RFC 7644 §3.5.2's PATH). Errors are
// invalidPath.
func parsePatchPath(rt *resourceType, path string) (*patchTarget, error) {
	if len(path) > maxFilterLen {
		return nil, badRequest(invalidPath, "the path is longer than %d bytes", maxFilterLen)
	}
	if e := rt.extension(path); e != nil {
		return &patchTarget{ref: ref{ext: e.id}, whole: true}, nil
	}
	head, inner, tail := path, "", ""
	hasFilter := false
	if i := strings.IndexByte(path, '['); i >= 0 {
		j := -1
		for k := i + 1; k < len(path) && j < 0; k++ {
			switch path[k] {
			case '"':
				end, err := skipString(path, k)
				if err != nil {
					return nil, badRequest(invalidPath, "path %q: %v", path, err)
				}
				k = end
			case ']':
				j = k
			}
		}
		if j < 0 {
			return nil, badRequest(invalidPath, "path %q: '[' is never closed", path)
		}
		head, inner, tail, hasFilter = path[:i], path[i+1:j], path[j+1:], true
		if tail != "" && (!strings.HasPrefix(tail, ".") || strings.ContainsAny(tail[1:], ".[]")) {
			return nil, badRequest(invalidPath, "path %q: only .subAttribute may follow [...]", path)
		}
	}
	ap, err := parseAttrPath(head)
	if err != nil {
		return nil, badRequest(invalidPath, "path %q: %v", path, err)
	}
	r, err := scope{rt: rt}.resolve(ap)
	if err != nil {
		return nil, badRequest(invalidPath, "path %q: %v", path, err)
	}
	if r.ext == "" && r.def == nil {
		return nil, badRequest(invalidPath, "path %q: %s has no attribute %q", path, rt.schema.id, r.name)
	}
	if r.sub != "" && r.subDef == nil && r.def != nil && r.ext == "" {
		return nil, badRequest(invalidPath, "path %q: %s has no sub-attribute %q", path, r.name, r.sub)
	}
	t := &patchTarget{ref: r}
	if !hasFilter {
		return t, nil
	}
	if r.sub != "" {
		return nil, badRequest(invalidPath, "path %q: a [filter] follows the attribute, not a sub-attribute", path)
	}
	if r.def != nil && !r.def.multi {
		return nil, badRequest(invalidPath, "path %q: %s is single-valued: it takes no [filter]", path, r.name)
	}
	var subAttrs []*attr
	if r.def != nil {
		subAttrs = r.def.sub
	}
	es := scope{attrs: subAttrs}
	if t.filter, err = es.compile(inner); err != nil {
		var se *scimError
		if !errors.As(err, &se) {
			return nil, err
		}
		return nil, badRequest(invalidPath, "path %q: %s", path, se.detail)
	}
	if tail != "" {
		t.fsub = tail[1:]
		if t.fsubDef = find(subAttrs, t.fsub); t.fsubDef != nil {
			t.fsub = t.fsubDef.name
		} else if r.def != nil && r.ext == "" {
			return nil, badRequest(invalidPath, "path %q: %s has no sub-attribute %q", path, r.name, t.fsub)
		}
	}
	t.eq = map[string]any{}
	if !eqTerms(t.filter, t.eq) {
		t.eq = nil
	}
	return t, nil
}

// eqTerms collects the "sub eq value" terms of a filter made of them and
// "and"; false for any other filter.
func eqTerms(e expr, into map[string]any) bool {
	switch e := e.(type) {
	case *andExpr:
		return eqTerms(e.l, into) && eqTerms(e.r, into)
	case *cmpExpr:
		if e.op != filter.EQ || e.ref.sub != "" || e.raw == nil {
			return false
		}
		into[e.ref.name] = e.raw
		return true
	}
	return false
}

func (p *patcher) applyTarget(op patchOp, t *patchTarget) error {
	p.touched[strings.ToLower(t.String())] = true
	if t.whole {
		return p.applyWhole(op, t)
	}
	def := t.ref.leaf()
	if t.filter != nil && t.fsub != "" {
		def = t.fsubDef
	}
	if t.ref.def.isReadOnly() || def.isReadOnly() {
		return p.readOnly(op, t)
	}
	if op.Op != "remove" && op.Value == nil {
		op.Op = "remove" // replace with null: unassign
	}
	c := p.container(t, op.Op != "remove")
	if c == nil {
		return nil // removing from an extension that is not there
	}
	key := t.ref.name
	if k, ok := keyCI(c, key); ok {
		if k != key {
			c[key] = c[k]
			delete(c, k)
		}
	}
	var err error
	switch {
	case t.filter != nil:
		err = p.applyFiltered(op, t, c, key)
	case t.ref.sub != "":
		err = applySub(op, t, c, key)
	default:
		err = applyAttr(op, t, c, key)
	}
	if err != nil {
		return err
	}
	if !present(c[key]) {
		delete(c, key)
	}
	if t.ref.ext != "" && len(c) == 0 {
		if k, ok := keyCI(p.doc, t.ref.ext); ok {
			delete(p.doc, k)
		}
	}
	return nil
}

// readOnly refuses to change a read-only attribute, but lets an operation
// restate its value (Okta's group PATCH repeats the id).
func (p *patcher) readOnly(op patchOp, t *patchTarget) error {
	if op.Op != "remove" && t.filter == nil && t.ref.ext == "" && t.ref.sub == "" && t.ref.name == "id" {
		if s, ok := op.Value.(string); ok && s == p.id {
			return nil
		}
	}
	return badRequest(mutability, "attribute %s is read-only", t.String())
}

// container returns the object t's attribute lives in (the document, or
// its extension object, made when create is set).
func (p *patcher) container(t *patchTarget, create bool) map[string]any {
	if t.ref.ext == "" {
		return p.doc
	}
	key, ok := keyCI(p.doc, t.ref.ext)
	if !ok {
		if !create {
			return nil
		}
		key = t.ref.ext
		p.doc[key] = map[string]any{}
	}
	m, ok := p.doc[key].(map[string]any)
	if !ok {
		m = map[string]any{}
		p.doc[key] = m
	}
	return m
}

// applyWhole handles a path that is an extension URN.
func (p *patcher) applyWhole(op patchOp, t *patchTarget) error {
	if op.Op == "remove" || op.Value == nil {
		if k, ok := keyCI(p.doc, t.ref.ext); ok {
			delete(p.doc, k)
		}
		return nil
	}
	m, ok := op.Value.(map[string]any)
	if !ok {
		return badRequest(invalidValue, "%s is an extension: its value must be an object", t.ref.ext)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := p.apply(patchOp{Op: op.Op, Path: t.ref.ext + ":" + k, Value: m[k], HasValue: true}); err != nil {
			return err
		}
	}
	return nil
}

// applyAttr handles attr (no sub-attribute, no filter).
func applyAttr(op patchOp, t *patchTarget, c map[string]any, key string) error {
	def := t.ref.def
	cur := c[key]
	_, curIsList := cur.([]any)
	_, valueIsList := op.Value.([]any)
	multi := def != nil && def.multi || def == nil && (curIsList || valueIsList)
	if op.Op == "remove" {
		if multi && op.Value != nil {
			// Entra removes members by listing them in the value.
			drop := elements(op.Value)
			kept := slices.DeleteFunc(slices.Clone(elements(cur)), func(el any) bool {
				return slices.ContainsFunc(drop, func(d any) bool { return sameValue(el, d) })
			})
			c[key] = kept
			return nil
		}
		delete(c, key)
		return nil
	}
	switch {
	case multi:
		items := elements(op.Value)
		if def.isComplex() {
			for i, it := range items {
				if s, ok := it.(string); ok && def.subAttr("value") != nil {
					items[i] = map[string]any{"value": s}
				}
			}
		}
		if op.Op == "replace" {
			c[key] = items
			return nil
		}
		list := slices.Clone(elements(cur))
		for _, it := range items {
			if !slices.ContainsFunc(list, func(el any) bool { return sameValue(el, it) }) {
				if isPrimary(it) {
					clearPrimary(list)
				}
				list = append(list, it)
			}
		}
		c[key] = list
	case def.isComplex() || def == nil && isObject(cur) && isObject(op.Value):
		m, ok := op.Value.(map[string]any)
		if !ok {
			s, isString := op.Value.(string)
			if !isString || def.subAttr("value") == nil {
				return badRequest(invalidValue, "%s is complex: its value must be an object", t.String())
			}
			m = map[string]any{"value": s} // Entra's manager: the id alone
		}
		// Sub-attributes not in the value are left as they are (§3.5.2.3).
		merged, _ := cur.(map[string]any)
		merged = maps.Clone(merged)
		if merged == nil {
			merged = map[string]any{}
		}
		for k, v := range m {
			name := k
			if sd := def.subAttr(k); sd != nil {
				name = sd.name
			}
			setCI(merged, name, v)
		}
		c[key] = merged
	default:
		c[key] = op.Value
	}
	return nil
}

// applySub handles attr.sub.
func applySub(op patchOp, t *patchTarget, c map[string]any, key string) error {
	sub := t.ref.sub
	switch cur := c[key].(type) {
	case []any:
		// Every element of a multi-valued attribute.
		list := make([]any, len(cur))
		for i, el := range cur {
			m, _ := el.(map[string]any)
			m = maps.Clone(m)
			if m == nil {
				m = map[string]any{}
			}
			setOrDelete(m, sub, op)
			list[i] = m
		}
		if len(list) == 0 && op.Op != "remove" {
			list = []any{map[string]any{sub: op.Value}}
		}
		c[key] = list
	default:
		m, _ := cur.(map[string]any)
		m = maps.Clone(m)
		if m == nil {
			if op.Op == "remove" {
				return nil
			}
			m = map[string]any{}
		}
		setOrDelete(m, sub, op)
		if t.ref.def != nil && t.ref.def.multi {
			c[key] = []any{m}
		} else {
			c[key] = m
		}
	}
	return nil
}

// applyFiltered handles attr[filter] and attr[filter].sub.
func (p *patcher) applyFiltered(op patchOp, t *patchTarget, c map[string]any, key string) error {
	if t.fsubDef != nil && t.fsubDef.mutability == immutable && op.Op != "remove" {
		return badRequest(mutability, "%s.%s cannot change once set", t.ref.name, t.fsub)
	}
	list := slices.Clone(elements(c[key]))
	var matched []int
	for i, el := range list {
		if t.filter.match(elementObject(el)) {
			matched = append(matched, i)
		}
	}
	if op.Op == "remove" {
		if t.fsub == "" {
			for _, i := range slices.Backward(matched) {
				list = slices.Delete(list, i, i+1)
			}
		} else {
			for _, i := range matched {
				m := maps.Clone(elementObject(list[i]))
				delete(m, t.fsub)
				list[i] = m
			}
		}
		c[key] = list
		return nil
	}
	var value map[string]any
	if t.fsub == "" {
		m, ok := op.Value.(map[string]any)
		if !ok {
			return badRequest(invalidValue, "%s[...] takes an object value", t.ref.name)
		}
		value = m
	}
	if len(matched) == 0 {
		if t.eq == nil {
			return badRequest(noTarget, "no value of %s matches the filter", t.ref.name)
		}
		// Make the element the filter describes.
		el := maps.Clone(t.eq)
		if t.fsub != "" {
			el[t.fsub] = op.Value
		} else {
			maps.Copy(el, value)
		}
		c[key] = append(list, el)
		return nil
	}
	for _, i := range matched {
		m := maps.Clone(elementObject(list[i]))
		if t.fsub != "" {
			setCI(m, t.fsub, op.Value)
		} else {
			for k, v := range value {
				setCI(m, k, v)
			}
		}
		list[i] = m
	}
	c[key] = list
	return nil
}

func setOrDelete(m map[string]any, k string, op patchOp) {
	if op.Op == "remove" || op.Value == nil {
		if key, ok := keyCI(m, k); ok {
			delete(m, key)
		}
		return
	}
	setCI(m, k, op.Value)
}

// setCI sets m[k], replacing a key that differs only in case.
func setCI(m map[string]any, k string, v any) {
	if old, ok := keyCI(m, k); ok && old != k {
		delete(m, old)
	}
	m[k] = v
}

func isObject(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}

func isPrimary(v any) bool {
	m, _ := v.(map[string]any)
	b, _ := asBool(getCI(m, "primary"))
	return b
}

// clearPrimary unsets "primary" on every element: one value at most is
// primary (RFC 7643 §2.4).
func clearPrimary(list []any) {
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && isPrimary(m) {
			m = maps.Clone(m)
			if k, ok := keyCI(m, "primary"); ok {
				delete(m, k)
			}
			list[i] = m
		}
	}
}

// sameValue reports whether two values of a multi-valued attribute are
// the same one: by "value" when both have one (members), else equal JSON.
func sameValue(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		av, bv := getCI(am, "value"), getCI(bm, "value")
		if av != nil && bv != nil {
			return reflect.DeepEqual(av, bv)
		}
	}
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}
