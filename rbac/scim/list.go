package scim

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullisdb/portcullis/store"
)

// Listing (RFC 7644 §3.4.2): the store pages through every resource and
// the filter runs on each, in Go. A filter that requires userName, id
// (users) or displayName, id (groups) to equal a value looks that one
// resource up instead: the filter IdPs send before every create.

const (
	defaultCount = 100
	maxCount     = 1000
	pageSize     = 500 // store page while scanning
)

type listResponse struct {
	Schemas      []string          `json:"schemas"`
	TotalResults int               `json:"totalResults"`
	ItemsPerPage int               `json:"itemsPerPage"`
	StartIndex   int               `json:"startIndex"`
	Resources    []json.RawMessage `json:"Resources"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, rt *resourceType) error {
	q := r.URL.Query()
	startIndex, err := intParam(q, "startIndex", 1)
	if err != nil {
		return err
	}
	startIndex = max(startIndex, 1) // RFC 7644 §3.4.2.4: less than 1 is 1
	count, err := intParam(q, "count", defaultCount)
	if err != nil {
		return err
	}
	count = min(max(count, 0), maxCount)
	var f expr
	if text := q.Get("filter"); text != "" {
		if f, err = compileFilter(rt, text); err != nil {
			return err
		}
	}
	var sortBy *ref
	if text := strings.TrimSpace(q.Get("sortBy")); text != "" {
		ap, err := parseAttrPath(text)
		if err != nil {
			return badRequest(invalidValue, "sortBy %q: %v", text, err)
		}
		rf, err := scope{rt: rt}.resolve(ap)
		if err != nil {
			return badRequest(invalidValue, "sortBy %q: %v", text, err)
		}
		sortBy = &rf
	}
	descending := strings.EqualFold(q.Get("sortOrder"), "descending")

	// Without sorting only the requested window is kept.
	var (
		total int
		page  []map[string]any
	)
	err = s.scan(r.Context(), rt, f, func(doc map[string]any) {
		total++
		if sortBy != nil || total >= startIndex && total < startIndex+count {
			page = append(page, doc)
		}
	})
	if err != nil {
		return err
	}
	if sortBy != nil {
		sortDocs(page, sortBy, descending)
		from := min(startIndex-1, len(page))
		page = page[from:min(from+count, len(page))]
	}
	proj := parseProjection(rt, q)
	resp := listResponse{
		Schemas:      []string{urnListResponse},
		TotalResults: total,
		ItemsPerPage: len(page),
		StartIndex:   startIndex,
		Resources:    make([]json.RawMessage, 0, len(page)),
	}
	for _, doc := range page {
		b, err := encodeResource(rt, proj.apply(rt, doc))
		if err != nil {
			return err
		}
		resp.Resources = append(resp.Resources, b)
	}
	return s.writeDoc(w, http.StatusOK, resp)
}

func intParam(q url.Values, name string, def int) (int, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest(invalidValue, "%s must be an integer, got %q", name, v)
	}
	return n, nil
}

// scan calls fn with every resource of rt that matches f (nil: all), in
// the store's order (created, then id).
func (s *Server) scan(ctx context.Context, rt *resourceType, f expr, fn func(map[string]any)) error {
	if rt == userType {
		return s.scanUsers(ctx, f, fn)
	}
	return s.scanGroups(ctx, f, fn)
}

func (s *Server) scanUsers(ctx context.Context, f expr, fn func(map[string]any)) error {
	emit := func(doc map[string]any) {
		if f == nil || f.match(doc) {
			fn(doc)
		}
	}
	if name, value, ok := keyTerm(f, "userName", "id"); ok {
		var (
			u   store.User
			err error
		)
		if name == "id" {
			u, err = s.store.GetUser(ctx, value)
		} else {
			u, err = s.store.GetUserByName(ctx, value)
		}
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid): // no user has such a name
			return nil
		case err != nil:
			return err
		}
		groups, err := s.store.GroupsOfUser(ctx, u.ID)
		if err != nil {
			return err
		}
		emit(s.userResource(u, groups))
		return nil
	}
	// The groups of every user, for their "groups" attribute.
	byUser := map[string][]store.Group{}
	err := s.eachGroup(ctx, func(g store.Group) {
		for _, id := range g.Members {
			byUser[id] = append(byUser[id], store.Group{ID: g.ID, DisplayName: g.DisplayName})
		}
	})
	if err != nil {
		return err
	}
	for _, groups := range byUser {
		slices.SortFunc(groups, func(a, b store.Group) int {
			return strings.Compare(strings.ToLower(a.DisplayName), strings.ToLower(b.DisplayName))
		})
	}
	for offset := 0; ; offset += pageSize {
		users, _, err := s.store.ListUsers(ctx, store.ListOptions{Offset: offset, Limit: pageSize})
		if err != nil {
			return err
		}
		for _, u := range users {
			emit(s.userResource(u, byUser[u.ID]))
		}
		if len(users) < pageSize {
			return nil
		}
	}
}

func (s *Server) scanGroups(ctx context.Context, f expr, fn func(map[string]any)) error {
	emit := func(g store.Group) {
		doc := s.groupResource(g)
		if f == nil || f.match(doc) {
			fn(doc)
		}
	}
	if name, value, ok := keyTerm(f, "displayName", "id"); ok {
		var (
			g   store.Group
			err error
		)
		if name == "id" {
			g, err = s.store.GetGroup(ctx, value)
		} else {
			g, err = s.store.GetGroupByName(ctx, value)
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		emit(g)
		return nil
	}
	return s.eachGroup(ctx, emit)
}

func (s *Server) eachGroup(ctx context.Context, fn func(store.Group)) error {
	for offset := 0; ; offset += pageSize {
		groups, _, err := s.store.ListGroups(ctx, store.ListOptions{Offset: offset, Limit: pageSize})
		if err != nil {
			return err
		}
		for _, g := range groups {
			fn(g)
		}
		if len(groups) < pageSize {
			return nil
		}
	}
}

// sortDocs orders docs by the attribute sortBy names (RFC 7644
// §3.4.2.3); a multi-valued attribute sorts by its primary value or its
// first. Resources without the attribute come last either way.
func sortDocs(docs []map[string]any, sortBy *ref, descending bool) {
	def := sortBy.leaf()
	if def.isComplex() {
		if v := def.subAttr("value"); v != nil {
			sortBy.sub, sortBy.subDef, def = v.name, v, v
		}
	}
	key := func(doc map[string]any) any {
		if sortBy.sub != "" {
			for _, el := range elements(getCI(sortBy.container(doc), sortBy.name)) {
				if isPrimary(el) {
					m, _ := el.(map[string]any)
					if v := getCI(m, sortBy.sub); present(v) {
						return v
					}
				}
			}
		}
		if vals := sortBy.values(doc); len(vals) > 0 {
			return vals[0]
		}
		return nil
	}
	caseExact := def != nil && def.caseExact
	slices.SortStableFunc(docs, func(a, b map[string]any) int {
		ka, kb := key(a), key(b)
		switch {
		case ka == nil && kb == nil:
			return 0
		case ka == nil:
			return 1
		case kb == nil:
			return -1
		}
		c := compareValues(ka, kb, caseExact)
		if descending {
			c = -c
		}
		return c
	})
}

// compareValues orders two attribute values of one attribute.
func compareValues(a, b any, caseExact bool) int {
	if na, ok := asNumber(a); ok {
		if nb, ok := asNumber(b); ok {
			return cmpFloat(na, nb)
		}
	}
	if ba, ok := a.(bool); ok {
		if bb, ok := b.(bool); ok {
			switch {
			case ba == bb:
				return 0
			case !ba:
				return -1
			}
			return 1
		}
	}
	sa, sb := jsonText(a), jsonText(b)
	if s, ok := a.(string); ok {
		sa = s
	}
	if s, ok := b.(string); ok {
		sb = s
	}
	if ta, err := parseTime(sa); err == nil {
		if tb, err := parseTime(sb); err == nil {
			return ta.Compare(tb)
		}
	}
	if !caseExact {
		sa, sb = strings.ToLower(sa), strings.ToLower(sb)
	}
	return strings.Compare(sa, sb)
}

// --- attributes and excludedAttributes (RFC 7644 §3.4.2.5) ---

// selection is one attribute named in attributes or excludedAttributes.
type selection struct {
	ext   string // extension URN, "" for core
	whole bool   // the whole extension
	name  string
	sub   string
}

type projection struct {
	include, exclude []selection
}

// parseProjection reads the attributes and excludedAttributes parameters;
// names that resolve to nothing are ignored.
func parseProjection(rt *resourceType, q url.Values) projection {
	parse := func(param string) []selection {
		var out []selection
		for _, item := range strings.Split(q.Get(param), ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if e := rt.extension(item); e != nil {
				out = append(out, selection{ext: e.id, whole: true})
				continue
			}
			if hasPrefixFold(item, "urn:") {
				// Perhaps an extension we do not know, named whole.
				out = append(out, selection{ext: item, whole: true})
			}
			ap, err := parseAttrPath(item)
			if err != nil {
				continue
			}
			r, err := scope{rt: rt}.resolve(ap)
			if err != nil {
				continue
			}
			out = append(out, selection{ext: r.ext, name: r.name, sub: r.sub})
		}
		return out
	}
	return projection{include: parse("attributes"), exclude: parse("excludedAttributes")}
}

// apply returns the part of doc p selects; attributes wins over
// excludedAttributes. id and schemas are always returned.
func (p projection) apply(rt *resourceType, doc map[string]any) map[string]any {
	switch {
	case len(p.include) > 0:
		return p.included(rt, doc)
	case len(p.exclude) > 0:
		return p.excluded(rt, doc)
	}
	return doc
}

func (p projection) included(rt *resourceType, doc map[string]any) map[string]any {
	out := map[string]any{"id": doc["id"]}
	var partial []func() // drops elements a sub-attribute selection left empty
	for _, sel := range p.include {
		if sel.whole {
			if k, ok := keyCI(doc, sel.ext); ok {
				out[k] = doc[k]
			}
			continue
		}
		src, dst := doc, out
		if sel.ext != "" {
			k, ok := keyCI(doc, sel.ext)
			if !ok {
				continue
			}
			src, _ = doc[k].(map[string]any)
			d, _ := out[k].(map[string]any)
			if d == nil {
				d = map[string]any{}
				out[k] = d
			}
			dst = d
		}
		k, ok := keyCI(src, sel.name)
		if !ok {
			continue
		}
		if sel.sub == "" {
			dst[k] = src[k]
			continue
		}
		switch v := src[k].(type) {
		case map[string]any:
			d, _ := dst[k].(map[string]any)
			d = maps.Clone(d)
			if d == nil {
				d = map[string]any{}
			}
			if sk, ok := keyCI(v, sel.sub); ok {
				d[sk] = v[sk]
			}
			dst[k] = d
		case []any:
			d, _ := dst[k].([]any)
			if len(d) != len(v) {
				d = make([]any, len(v))
				for i := range d {
					d[i] = map[string]any{}
				}
			}
			for i, el := range v {
				if m, ok := el.(map[string]any); ok {
					if sk, ok := keyCI(m, sel.sub); ok {
						d[i].(map[string]any)[sk] = m[sk]
					}
				}
			}
			dst[k] = d
			partial = append(partial, func() {
				if list, ok := dst[k].([]any); ok {
					dst[k] = slices.DeleteFunc(list, func(el any) bool { return !present(el) })
				}
			})
		}
	}
	for _, f := range partial {
		f()
	}
	for k, v := range out {
		if !present(v) && k != "id" {
			delete(out, k)
		}
	}
	out["schemas"] = schemasOf(rt, out)
	return out
}

func (p projection) excluded(rt *resourceType, doc map[string]any) map[string]any {
	out := maps.Clone(doc)
	for _, sel := range p.exclude {
		if sel.whole {
			if k, ok := keyCI(out, sel.ext); ok {
				delete(out, k)
			}
			continue
		}
		if sel.ext == "" && sel.name == "id" && sel.sub == "" {
			continue // always returned
		}
		c := out
		if sel.ext != "" {
			k, ok := keyCI(out, sel.ext)
			if !ok {
				continue
			}
			m, _ := out[k].(map[string]any)
			c = maps.Clone(m)
			out[k] = c
		}
		k, ok := keyCI(c, sel.name)
		if !ok {
			continue
		}
		if sel.sub == "" {
			delete(c, k)
			continue
		}
		switch v := c[k].(type) {
		case map[string]any:
			m := maps.Clone(v)
			if sk, ok := keyCI(m, sel.sub); ok {
				delete(m, sk)
			}
			c[k] = m
		case []any:
			list := make([]any, len(v))
			for i, el := range v {
				if m, ok := el.(map[string]any); ok {
					m = maps.Clone(m)
					if sk, ok := keyCI(m, sel.sub); ok {
						delete(m, sk)
					}
					el = m
				}
				list[i] = el
			}
			c[k] = list
		}
	}
	for k, v := range out {
		if !present(v) && k != "id" {
			delete(out, k)
		}
	}
	out["schemas"] = schemasOf(rt, out)
	return out
}
