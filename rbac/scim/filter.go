package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/portcullisdb/portcullis/auth/username"
)

// Filters (RFC 7644 §3.4.2.2) are parsed by scim2/filter-parser and
// evaluated here, in Go, over the JSON form of each resource: no filter
// text ever reaches the store, so a filter can only ever match or not.
//
// The parser's grammar allows only one "and"/"or" inside brackets and no
// attr[...].sub in filters; IdPs send both. So before parsing, each value
// path attr[inner] (with an optional .sub) is cut out of the text and put
// back as a placeholder attribute, and its inner filter is parsed on its
// own with the full grammar.

// maxFilterLen bounds a filter and a PATCH path; real IdP filters are a
// few hundred bytes at most.
const maxFilterLen = 4096

// maxFilterDepth bounds the nesting of parentheses, which the parser
// pays for dearly.
const maxFilterDepth = 32

// placeholder prefixes the stand-in attribute of a value path; "--" does
// not occur in SCIM attribute names.
const placeholder = "pcvp--"

// expr is a compiled filter; it matches one JSON object: a resource, or an
// element of a multi-valued attribute inside a value path.
type expr interface {
	match(c map[string]any) bool
}

type andExpr struct{ l, r expr }

func (e *andExpr) match(c map[string]any) bool { return e.l.match(c) && e.r.match(c) }

type orExpr struct{ l, r expr }

func (e *orExpr) match(c map[string]any) bool { return e.l.match(c) || e.r.match(c) }

type notExpr struct{ e expr }

func (e *notExpr) match(c map[string]any) bool { return !e.e.match(c) }

// scope is where attribute names resolve: a resource (rt set: common and
// core attributes, extensions by URN) or the elements of a multi-valued
// attribute (attrs: its sub-attributes; nil when the attribute is not in
// any schema).
type scope struct {
	rt    *resourceType
	attrs []*attr
}

// ref locates an attribute's values in a JSON object.
type ref struct {
	ext    string // the extension URN the attribute is under; "" for the object itself
	name   string
	def    *attr // nil: in no schema we know (kept verbatim, compared by its JSON type)
	sub    string
	subDef *attr
}

// leaf is the definition of the values ref yields.
func (r *ref) leaf() *attr {
	if r.sub != "" {
		return r.subDef
	}
	return r.def
}

func (r *ref) String() string {
	s := r.name
	if r.ext != "" {
		s = r.ext + ":" + s
	}
	if r.sub != "" {
		s += "." + r.sub
	}
	return s
}

// container returns the object r's attribute lives in.
func (r *ref) container(c map[string]any) map[string]any {
	if r.ext == "" {
		return c
	}
	m, _ := getCI(c, r.ext).(map[string]any)
	return m
}

// values returns the non-empty values r names in c: one per element of a
// multi-valued attribute.
func (r *ref) values(c map[string]any) []any {
	var out []any
	for _, x := range elements(getCI(r.container(c), r.name)) {
		if r.sub != "" {
			m, ok := x.(map[string]any)
			if !ok {
				continue
			}
			x = getCI(m, r.sub)
		}
		if present(x) {
			out = append(out, x)
		}
	}
	return out
}

// elements is v's values: the elements of an array, or v itself.
func elements(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

// present is RFC 7644's "pr": not null, not empty.
func present(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

// getCI looks key up in m, case-insensitively (attribute names are).
func getCI(m map[string]any, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// keyCI returns the key of m that equals key case-insensitively, or "".
func keyCI(m map[string]any, key string) (string, bool) {
	if _, ok := m[key]; ok {
		return key, true
	}
	for k := range m {
		if strings.EqualFold(k, key) {
			return k, true
		}
	}
	return "", false
}

// Comparison kinds.
const (
	kindString = iota
	kindBool
	kindNumber
	kindTime
	kindNull
)

// cmpExpr is attrPath op value.
type cmpExpr struct {
	ref       ref
	op        filter.CompareOperator
	raw       any // the value as written (unescaped)
	kind      int
	caseExact bool
	userName  bool   // the Users userName: compared as auth/username normalises it
	s         string // kindString (folded, see fold), kindTime (as given)
	b         bool
	n         float64
	t         time.Time
}

// fold puts a string in the form the comparison uses: userName as
// auth/username normalises it (the store's key), other case-insensitive
// attributes lowercased.
func (e *cmpExpr) fold(s string) string {
	switch {
	case e.userName:
		if n, err := username.Normalize(s); err == nil {
			return n
		}
		return strings.ToLower(s)
	case !e.caseExact:
		return strings.ToLower(s)
	}
	return s
}

func (e *cmpExpr) match(c map[string]any) bool {
	vals := e.ref.values(c)
	switch {
	case e.op == filter.PR:
		return len(vals) > 0
	case e.kind == kindNull:
		return (len(vals) == 0) == (e.op == filter.EQ)
	case e.op == filter.NE:
		// "not equal": true when the attribute has no value, or any value
		// differs (a multi-valued attribute matches if any value does).
		if len(vals) == 0 {
			return true
		}
		for _, v := range vals {
			if !e.compare(v, filter.EQ) {
				return true
			}
		}
		return false
	}
	for _, v := range vals {
		if e.compare(v, e.op) {
			return true
		}
	}
	return false
}

// compare applies op (not pr or ne) to one value; a value of another type
// never matches.
func (e *cmpExpr) compare(v any, op filter.CompareOperator) bool {
	switch e.kind {
	case kindBool:
		b, ok := asBool(v)
		return ok && b == e.b
	case kindNumber:
		n, ok := asNumber(v)
		return ok && ordered(op, cmpFloat(n, e.n))
	case kindTime:
		s, ok := v.(string)
		if !ok {
			return false
		}
		t, err := parseTime(s)
		if err != nil {
			return false
		}
		return ordered(op, t.Compare(e.t))
	case kindString:
		s, ok := v.(string)
		if !ok {
			return false
		}
		s = e.fold(s)
		switch op {
		case filter.CO:
			return strings.Contains(s, e.s)
		case filter.SW:
			return strings.HasPrefix(s, e.s)
		case filter.EW:
			return strings.HasSuffix(s, e.s)
		}
		return ordered(op, strings.Compare(s, e.s))
	}
	return false
}

func ordered(op filter.CompareOperator, c int) bool {
	switch op {
	case filter.EQ:
		return c == 0
	case filter.GT:
		return c > 0
	case filter.GE:
		return c >= 0
	case filter.LT:
		return c < 0
	case filter.LE:
		return c <= 0
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func asBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		// Entra sends "True" and "False".
		switch {
		case strings.EqualFold(v, "true"):
			return true, true
		case strings.EqualFold(v, "false"):
			return false, true
		}
	}
	return false, false
}

func asNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	case int:
		return float64(v), true
	}
	return 0, false
}

// parseTime reads an xsd:dateTime as SCIM uses it (RFC 3339).
func parseTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// valuePathExpr is attr[filter] or attr[filter].sub op value: true when
// one element of attr matches the filter (and the comparison).
type valuePathExpr struct {
	ref    ref
	filter expr
	sub    *cmpExpr // nil: attr[filter] alone
}

func (e *valuePathExpr) match(c map[string]any) bool {
	for _, el := range elements(getCI(e.ref.container(c), e.ref.name)) {
		m := elementObject(el)
		if e.filter.match(m) && (e.sub == nil || e.sub.match(m)) {
			return true
		}
	}
	return false
}

// elementObject is el as an object; a simple value v is {"value": v}, as
// RFC 7644 filters name it.
func elementObject(el any) map[string]any {
	if m, ok := el.(map[string]any); ok {
		return m
	}
	return map[string]any{"value": el}
}

// compileFilter compiles a filter over resources of rt. Errors are
// *scimError invalidFilter.
func compileFilter(rt *resourceType, text string) (expr, error) {
	return scope{rt: rt}.compile(text)
}

func (sc scope) compile(text string) (e expr, err error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, badRequest(invalidFilter, "the filter is empty")
	}
	if len(text) > maxFilterLen {
		return nil, badRequest(invalidFilter, "the filter is longer than %d bytes", maxFilterLen)
	}
	rewritten, pieces, err := extractValuePaths(text)
	if err != nil {
		return nil, badRequest(invalidFilter, "filter %q: %v", text, err)
	}
	ast, err := parseFilter(rewritten)
	if err != nil {
		return nil, badRequest(invalidFilter, "filter %q is not a SCIM filter (RFC 7644 §3.4.2.2): %v", text, err)
	}
	c := compiler{scope: sc, pieces: pieces}
	e, err = c.compile(ast)
	if err != nil {
		return nil, badRequest(invalidFilter, "filter %q: %v", text, err)
	}
	return e, nil
}

// parseFilter runs the parser, which must never take the server down.
func parseFilter(text string) (e filter.Expression, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("parser failure: %v", r)
		}
	}()
	e, err = filter.ParseFilter([]byte(text))
	if err != nil {
		return nil, cleanParseError(err)
	}
	return e, nil
}

// parseAttrPath runs the attribute path parser, recovering as parseFilter.
func parseAttrPath(text string) (p filter.AttributePath, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = filter.AttributePath{}, fmt.Errorf("parser failure: %v", r)
		}
	}()
	p, err = filter.ParseAttrPath([]byte(text))
	if err != nil {
		return filter.AttributePath{}, cleanParseError(err)
	}
	return p, nil
}

// cleanParseError keeps the position of the parser's message and drops
// its grammar internals.
func cleanParseError(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "["); i >= 0 {
		if j := strings.Index(msg[i:], "]"); j > 0 {
			pos := strings.TrimLeft(strings.ReplaceAll(msg[i+1:i+j], ":", ""), "0")
			if pos == "" {
				pos = "0"
			}
			return fmt.Errorf("syntax error near byte %s", pos)
		}
	}
	return fmt.Errorf("syntax error")
}

// vpPiece is a value path cut out of a filter's text.
type vpPiece struct {
	attr  string // the attribute path before "["
	inner string // the filter between the brackets
}

// extractValuePaths replaces every attr[inner] in text (outside string
// literals) by a placeholder attribute: "pcvp--N pr" for attr[inner]
// alone, "pcvp--N.sub" when a sub-attribute follows.
func extractValuePaths(text string) (string, []vpPiece, error) {
	var (
		b      strings.Builder
		pieces []vpPiece
		last   int // text[:last] is written to b
	)
	depth := 0
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '"':
			end, err := skipString(text, i)
			if err != nil {
				return "", nil, err
			}
			i = end
		case '(':
			if depth++; depth > maxFilterDepth {
				return "", nil, fmt.Errorf("parentheses nest deeper than %d", maxFilterDepth)
			}
		case ')':
			depth--
		case ']':
			return "", nil, fmt.Errorf("unbalanced ']' at byte %d", i)
		case '[':
			start := i
			for start > last && isPathByte(text[start-1]) {
				start--
			}
			if start == i {
				return "", nil, fmt.Errorf("'[' at byte %d follows no attribute name", i)
			}
			end := -1
			for j := i + 1; j < len(text) && end < 0; j++ {
				switch text[j] {
				case '"':
					e, err := skipString(text, j)
					if err != nil {
						return "", nil, err
					}
					j = e
				case '[':
					return "", nil, fmt.Errorf("nested '[' at byte %d", j)
				case ']':
					end = j
				}
			}
			if end < 0 {
				return "", nil, fmt.Errorf("'[' at byte %d is never closed", i)
			}
			pieces = append(pieces, vpPiece{attr: text[start:i], inner: text[i+1 : end]})
			b.WriteString(text[last:start])
			name := placeholder + strconv.Itoa(len(pieces)-1)
			if end+1 < len(text) && text[end+1] == '.' {
				b.WriteString(name) // ".sub op value" follows
			} else {
				b.WriteString(name + " pr")
			}
			last, i = end+1, end
		}
	}
	b.WriteString(text[last:])
	return b.String(), pieces, nil
}

// skipString returns the index of the quote closing the string literal
// opened at text[i].
func skipString(text string, i int) (int, error) {
	for j := i + 1; j < len(text); j++ {
		switch text[j] {
		case '\\':
			j++
		case '"':
			return j, nil
		}
	}
	return 0, fmt.Errorf("string at byte %d is never closed", i)
}

// isPathByte is a byte of an attribute path: a name, a URN prefix, a dot.
func isPathByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == ':' || c == '$'
}

type compiler struct {
	scope  scope
	pieces []vpPiece
}

func (c *compiler) compile(e filter.Expression) (expr, error) {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		l, err := c.compile(e.Left)
		if err != nil {
			return nil, err
		}
		r, err := c.compile(e.Right)
		if err != nil {
			return nil, err
		}
		if e.Operator == filter.AND {
			return &andExpr{l, r}, nil
		}
		return &orExpr{l, r}, nil
	case *filter.NotExpression:
		inner, err := c.compile(e.Expression)
		if err != nil {
			return nil, err
		}
		return &notExpr{inner}, nil
	case *filter.AttributeExpression:
		if i, ok := c.piece(e.AttributePath); ok {
			return c.valuePath(c.pieces[i], e)
		}
		return c.scope.compare(e)
	}
	// *filter.ValuePath cannot occur: extractValuePaths took every "[".
	return nil, fmt.Errorf("unsupported expression %T", e)
}

// piece reports whether p is a placeholder and which piece it stands for.
func (c *compiler) piece(p filter.AttributePath) (int, bool) {
	if p.URIPrefix != nil || !strings.HasPrefix(p.AttributeName, placeholder) {
		return 0, false
	}
	i, err := strconv.Atoi(strings.TrimPrefix(p.AttributeName, placeholder))
	if err != nil || i < 0 || i >= len(c.pieces) {
		return 0, false
	}
	return i, true
}

type elementCompiler struct {
	ref      ref
	compiler compiler
}

// elementScope resolves the multi-valued attribute of a value path.
func (c *compiler) elementScope(p filter.AttributePath) (elementCompiler, error) {
	if p.SubAttribute != nil {
		return elementCompiler{}, fmt.Errorf("a value filter applies to an attribute, not to the sub-attribute %s", p)
	}
	r, err := c.scope.resolve(p)
	if err != nil {
		return elementCompiler{}, err
	}
	if r.def != nil && !r.def.multi && !r.def.isComplex() {
		return elementCompiler{}, fmt.Errorf("attribute %s is single-valued: it takes no [filter]", r.name)
	}
	var sub []*attr
	if r.def != nil {
		sub = r.def.sub
	}
	return elementCompiler{ref: r, compiler: compiler{scope: scope{attrs: sub}}}, nil
}

func (c *compiler) valuePath(p vpPiece, e *filter.AttributeExpression) (expr, error) {
	ap, err := parseAttrPath(p.attr)
	if err != nil {
		return nil, fmt.Errorf("attribute %q: %v", p.attr, err)
	}
	ec, err := c.elementScope(ap)
	if err != nil {
		return nil, err
	}
	f, err := ec.compiler.scope.compile(p.inner)
	if err != nil {
		var se *scimError
		if errors.As(err, &se) {
			err = errors.New(se.detail)
		}
		return nil, fmt.Errorf("in %s[...]: %w", p.attr, err)
	}
	vp := &valuePathExpr{ref: ec.ref, filter: f}
	if e.AttributePath.SubAttribute == nil {
		if e.Operator != filter.PR {
			return nil, fmt.Errorf("%s[...] is followed by %q: compare a sub-attribute (%s[...].value) instead", p.attr, e.Operator, p.attr)
		}
		return vp, nil
	}
	sub := *e.AttributePath.SubAttribute
	cmp, err := ec.compiler.scope.compare(&filter.AttributeExpression{
		AttributePath: filter.AttributePath{AttributeName: sub},
		Operator:      e.Operator,
		CompareValue:  e.CompareValue,
	})
	if err != nil {
		return nil, err
	}
	vp.sub = cmp
	return vp, nil
}

// resolve finds the attribute p names in sc.
func (sc scope) resolve(p filter.AttributePath) (ref, error) {
	var r ref
	name := p.AttributeName
	if sc.rt == nil {
		if p.URIPrefix != nil {
			return ref{}, fmt.Errorf("a schema URN (%s) is not allowed inside [...]", p.URI())
		}
		r = ref{name: name, def: find(sc.attrs, name)}
	} else {
		uri := p.URI()
		switch ext := sc.rt.extension(uri); {
		case uri == "" || strings.EqualFold(uri, sc.rt.schema.id):
			r = ref{name: name, def: sc.rt.coreAttr(name)}
			if r.def == nil {
				// An extension attribute named without its URN.
				for _, e := range sc.rt.extensions {
					if a := find(e.attrs, name); a != nil {
						r = ref{ext: e.id, name: name, def: a}
						break
					}
				}
			}
		case ext != nil:
			r = ref{ext: ext.id, name: name, def: find(ext.attrs, name)}
		default:
			r = ref{ext: uri, name: name}
		}
	}
	if r.def != nil {
		r.name = r.def.name
	}
	if p.SubAttribute != nil {
		if r.def != nil && !r.def.isComplex() {
			return ref{}, fmt.Errorf("attribute %s has no sub-attribute %q", r.name, *p.SubAttribute)
		}
		r.sub = *p.SubAttribute
		if r.subDef = r.def.subAttr(r.sub); r.subDef != nil {
			r.sub = r.subDef.name
		}
	}
	return r, nil
}

// compare compiles attrPath op value, checking the operator and value fit
// the attribute's type.
func (sc scope) compare(e *filter.AttributeExpression) (*cmpExpr, error) {
	r, err := sc.resolve(e.AttributePath)
	if err != nil {
		return nil, err
	}
	op := filter.CompareOperator(strings.ToLower(string(e.Operator)))
	switch op {
	case filter.PR, filter.EQ, filter.NE, filter.CO, filter.SW, filter.EW, filter.GT, filter.GE, filter.LT, filter.LE:
	default:
		return nil, fmt.Errorf("unknown operator %q", e.Operator)
	}
	c := &cmpExpr{ref: r, op: op}
	if op == filter.PR {
		return c, nil
	}
	def := r.leaf()
	if def.isComplex() {
		// A complex attribute compares by its "value" (emails eq "x").
		v := def.subAttr("value")
		if v == nil || r.sub != "" {
			return nil, fmt.Errorf("attribute %s is complex: compare one of its sub-attributes", r.String())
		}
		c.ref.sub, c.ref.subDef, def = v.name, v, v
	}
	value := e.CompareValue
	if s, ok := value.(string); ok {
		u, err := unescape(s)
		if err != nil {
			return nil, err
		}
		value = u
	}
	c.raw = value
	if value == nil {
		if op != filter.EQ && op != filter.NE {
			return nil, fmt.Errorf("%s %s null: only eq and ne compare with null", r.String(), op)
		}
		c.kind = kindNull
		return c, nil
	}
	typ := ""
	if def != nil {
		typ = def.typ
		c.caseExact = def.caseExact
	}
	if typ == "" { // not in a schema: compare by the value's type
		switch value.(type) {
		case bool:
			typ = typeBoolean
		case string:
			typ = typeString
		default:
			typ = typeDecimal
		}
	}
	textual := op == filter.CO || op == filter.SW || op == filter.EW
	switch typ {
	case typeBoolean:
		b, ok := asBool(value)
		if !ok {
			return nil, fmt.Errorf("%s is a boolean: compare it with true or false", r.String())
		}
		if op != filter.EQ && op != filter.NE {
			return nil, fmt.Errorf("%s is a boolean: only eq and ne apply", r.String())
		}
		c.kind, c.b = kindBool, b
	case typeInteger, typeDecimal:
		n, ok := asNumber(value)
		if !ok || math.IsNaN(n) {
			return nil, fmt.Errorf("%s is a number: compare it with a number", r.String())
		}
		if textual {
			return nil, fmt.Errorf("%s is a number: %s applies to strings", r.String(), op)
		}
		c.kind, c.n = kindNumber, n
	case typeDateTime:
		s, ok := value.(string)
		if !ok {
			return nil, fmt.Errorf("%s is a date-time: compare it with a quoted RFC 3339 time", r.String())
		}
		if textual {
			c.kind, c.s = kindString, strings.ToLower(s)
			break
		}
		t, err := parseTime(s)
		if err != nil {
			return nil, fmt.Errorf("%s is a date-time, and %q is not an RFC 3339 time", r.String(), s)
		}
		c.kind, c.t = kindTime, t
	case typeBinary:
		if op != filter.EQ && op != filter.NE {
			return nil, fmt.Errorf("%s is binary: only eq and ne apply", r.String())
		}
		fallthrough
	default: // string, reference
		s, ok := value.(string)
		if !ok {
			return nil, fmt.Errorf("%s is a string: compare it with a quoted value", r.String())
		}
		c.userName = def != nil && def.name == "userName"
		c.kind, c.s = kindString, c.fold(s)
	}
	return c, nil
}

// unescape decodes a filter string literal's JSON escapes.
func unescape(raw string) (string, error) {
	if !strings.Contains(raw, `\`) {
		return raw, nil
	}
	var s string
	if err := json.Unmarshal([]byte(`"`+raw+`"`), &s); err != nil {
		return "", fmt.Errorf("bad escape in string %q", raw)
	}
	return s, nil
}

// keyTerm finds a term the filter requires, attr eq "value" on one of
// names (top-level, no sub-attribute), so a list can look that resource
// up directly instead of scanning: the filter still runs on what it finds.
func keyTerm(e expr, names ...string) (name, value string, ok bool) {
	switch e := e.(type) {
	case *cmpExpr:
		if e.op == filter.EQ && e.kind == kindString && e.ref.ext == "" && e.ref.sub == "" {
			for _, n := range names {
				if e.ref.name == n {
					return n, e.s, true
				}
			}
		}
	case *andExpr:
		if n, v, ok := keyTerm(e.l, names...); ok {
			return n, v, true
		}
		return keyTerm(e.r, names...)
	}
	return "", "", false
}
