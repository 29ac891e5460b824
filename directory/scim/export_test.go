package scim

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MatchFilter compiles filter for resourceType ("User" or "Group") and
// runs it on resource (a JSON object), as GET ?filter= does: the entry
// point FuzzFilter exercises.
func MatchFilter(resourceType, filter string, resource []byte) (bool, error) {
	rt := userType
	if resourceType == "Group" {
		rt = groupType
	}
	e, err := compileFilter(rt, filter)
	if err != nil {
		return false, err
	}
	d := json.NewDecoder(bytes.NewReader(resource))
	d.UseNumber()
	var doc map[string]any
	if err := d.Decode(&doc); err != nil {
		return false, fmt.Errorf("resource: %w", err)
	}
	return e.match(doc), nil
}

// ApplyPatchPath parses path for resourceType and applies op with value
// to resource, as PATCH does, returning the normalized result.
func ApplyPatchPath(resourceType, op, path string, value any, resource []byte) (map[string]any, error) {
	rt := userType
	if resourceType == "Group" {
		rt = groupType
	}
	d := json.NewDecoder(bytes.NewReader(resource))
	d.UseNumber()
	var doc map[string]any
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	p := &patcher{rt: rt, doc: doc, id: "id", touched: map[string]bool{}}
	if err := p.apply(patchOp{Op: op, Path: path, Value: value, HasValue: value != nil}); err != nil {
		return nil, err
	}
	return normalize(rt, p.doc)
}
