package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// loadInfo is what Load/Parse keep for Validate's messages.
type loadInfo struct {
	name  string         // the file name, for "invalid configuration in NAME"
	lines map[string]int // key path ("issuers[1].jwks_url") -> line

	// secretProblems holds, by key path, why a secret could not be
	// resolved. It never holds a value.
	secretProblems map[string]string
}

// Load reads the config file at path; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, filepath.Dir(path))
}

// Parse decodes data strictly (an unknown key is an error), applies the
// defaults, resolves relative paths against baseDir, resolves secrets, and
// validates. name is the file name used in messages. On any problem it
// returns a nil Config and one error listing every problem, each with its
// key and, where known, its line.
func Parse(data []byte, name, baseDir string) (*Config, error) {
	if baseDir == "" {
		baseDir = "."
	}
	absDir, err := filepath.Abs(baseDir)
	if err != nil {
		return nil, fmt.Errorf("config directory %s: %w", baseDir, err)
	}

	// First pass: the node tree, for the line of every key and for unknown
	// keys named by their full path.
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: holds more than one YAML document (line %d): keep one", name, extra.Line)
	}
	idx := indexNode(&root)

	// Second pass: the Config itself, strictly.
	cfg := &Config{}
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	var probs []problem
	var undecoded keySet // keys whose values did not decode
	if err := strict.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		probs = append(probs, idx.unknown...)
		for _, msg := range te.Errors {
			if len(idx.unknown) > 0 && strings.Contains(msg, " not found in type ") {
				continue // already reported above, with its full key path
			}
			p := idx.typeProblem(msg)
			probs = append(probs, p)
			undecoded = append(undecoded, p.key)
		}
	}
	// The decoder goes on past a value of the wrong type, so validation
	// runs too and every problem is reported at once; only the problems a
	// value that did not decode would cause are dropped (an empty roles:
	// after `roles: [a]`).

	cfg.load = &loadInfo{name: name, lines: idx.lines, secretProblems: map[string]string{}}
	cfg.ApplyDefaults()
	cfg.resolvePaths(absDir)
	cfg.eachSecret(func(key string, s *Secret) {
		if p := s.resolve(absDir); p != "" {
			cfg.load.secretProblems[key] = p
		}
	})

	for _, p := range cfg.problems() {
		if !undecoded.covers(p.key) {
			probs = append(probs, p)
		}
	}
	if len(probs) > 0 {
		return nil, problemsError(name, probs, idx.lines)
	}
	return cfg, nil
}

// resolvePath makes p absolute against baseDir, unless it already is.
func resolvePath(baseDir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir, p)
}

// resolvePaths makes every file path in c absolute against baseDir.
func (c *Config) resolvePaths(baseDir string) {
	c.TLS.CertFile = resolvePath(baseDir, c.TLS.CertFile)
	c.TLS.KeyFile = resolvePath(baseDir, c.TLS.KeyFile)
	c.Backend.CAFile = resolvePath(baseDir, c.Backend.CAFile)
	for i := range c.Issuers {
		c.Issuers[i].JWKSFile = resolvePath(baseDir, c.Issuers[i].JWKSFile)
	}
	c.DevIssuer.KeyFile = resolvePath(baseDir, c.DevIssuer.KeyFile)
	c.Store.Path = resolvePath(baseDir, c.Store.Path)
	if c.Audit.File != "-" {
		c.Audit.File = resolvePath(baseDir, c.Audit.File)
	}
}

// nodeIndex is what one walk of the node tree finds.
type nodeIndex struct {
	lines   map[string]int
	values  map[string]string // key path -> scalar value, to name the key of a type error
	unknown []problem
}

// indexNode walks the document alongside the Config type, recording the
// line of every key by its path and every key the type does not know.
func indexNode(root *yaml.Node) nodeIndex {
	idx := nodeIndex{lines: map[string]int{}, values: map[string]string{}}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	idx.walk(n, "", reflect.TypeFor[Config]())
	return idx
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (idx *nodeIndex) walk(n *yaml.Node, path string, t reflect.Type) {
	if path != "" {
		if _, seen := idx.lines[path]; !seen {
			idx.lines[path] = n.Line
		}
		if n.Kind == yaml.ScalarNode {
			idx.values[path] = n.Value
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return // a leaf with its own decoding, like Secret
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields, names := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				continue
			}
			p := joinPath(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				idx.lines[p] = k.Line
				msg := "unknown key: use one of " + strings.Join(names, ", ")
				if why, retired := retiredKey(path, k.Value); retired {
					msg = why
				}
				idx.unknown = append(idx.unknown, problem{key: p, msg: msg})
				continue
			}
			idx.lines[p] = k.Line
			idx.walk(v, p, f)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := mapKeyPath(path, k.Value)
			idx.lines[p] = k.Line
			idx.walk(v, p, t.Elem())
		}
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, item := range n.Content {
			idx.walk(item, path+"["+strconv.Itoa(i)+"]", t.Elem())
		}
	}
}

// yamlFields maps the yaml key of each exported field of struct type t to
// the field's type, and lists the keys in field order.
func yamlFields(t reflect.Type) (map[string]reflect.Type, []string) {
	fields := map[string]reflect.Type{}
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch key {
		case "-":
			continue
		case "":
			key = strings.ToLower(f.Name)
		}
		fields[key] = f.Type
		names = append(names, key)
	}
	return fields, names
}

// joinPath appends a struct key to a path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapKeyPath appends a map key to a path: roles.dba, or roles["a b"] when
// the key would not read well after a dot.
func mapKeyPath(path, key string) string {
	if key == "" || strings.ContainsAny(key, " \t\r\n.[]\"/") {
		return path + "[" + strconv.Quote(key) + "]"
	}
	return joinPath(path, key)
}

// rolePath is the key path of the role named name.
func rolePath(name string) string { return mapKeyPath("roles", name) }

// eachSecret calls fn with every Secret field and its key path, so
// loading and validation treat them alike.
func (c *Config) eachSecret(fn func(key string, s *Secret)) {
	for _, rn := range c.roleNames() {
		r := c.Roles[rn] // map values are copies: write back
		fn(rolePath(rn)+".backend_password", &r.BackendPassword)
		c.Roles[rn] = r
	}
	fn("store.dsn", &c.Store.DSN)
	fn("issuer.key_encryption_key", &c.Issuer.KeyEncryptionKey)
	fn("admin.token", &c.Admin.Token)
	c.ssoSecrets(fn)
	fn("local.email.smtp.password", &c.Local.Email.SMTP.Password)
}

// KEKPath is where a generated key-encryption key lives when
// issuer.key_encryption_key is empty: beside the SQLite store (state the
// process may write, unlike a read-only /etc), else beside the config.
func (c *Config) KEKPath() string {
	switch {
	case c.Store.Engine == StoreSQLite && c.Store.Path != "":
		return filepath.Join(filepath.Dir(c.Store.Path), DefaultKEKFile)
	case c.load != nil:
		return filepath.Join(filepath.Dir(c.load.name), DefaultKEKFile)
	}
	return DefaultKEKFile
}

// typeProblem turns one of the decoder's messages ("line 3: cannot
// unmarshal !!str `ten` into time.Duration") into a problem named by the
// deepest key on that line, so it reads like every other problem.
func (idx *nodeIndex) typeProblem(msg string) problem {
	rest, ok := strings.CutPrefix(msg, "line ")
	num, text, ok2 := strings.Cut(rest, ": ")
	line, err := strconv.Atoi(num)
	if !ok || !ok2 || err != nil {
		return problem{msg: msg}
	}
	// The deepest key on the line; among several (a flow mapping), the
	// one whose value the message quotes.
	key, quoted := "", false
	for k, l := range idx.lines {
		if l != line {
			continue
		}
		v, isScalar := idx.values[k]
		if len(v) > 10 { // as the decoder shortens it
			v = v[:7] + "..."
		}
		q := isScalar && v != "" && strings.Contains(text, "`"+v+"`")
		if (q && !quoted) || (q == quoted && (len(k) > len(key) || (len(k) == len(key) && k < key))) {
			key, quoted = k, q
		}
	}
	if key == "" {
		return problem{msg: msg}
	}
	if t, ok := strings.CutPrefix(text, "cannot unmarshal "); ok {
		text = "has the wrong type: cannot read " + t
	}
	return problem{key: key, msg: text}
}

// keySet is the keys whose values did not decode.
type keySet []string

// covers reports whether a validation problem at key may come from a
// value that did not decode: the same key, one inside it, or one that
// holds it.
func (ks keySet) covers(key string) bool {
	for _, k := range ks {
		if k == "" {
			continue
		}
		if key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[") ||
			strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[") {
			return true
		}
	}
	return false
}
