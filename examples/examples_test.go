// Package examples_test keeps the shipped example configs and the packaging
// files honest: the examples load, the production example names every key
// of the config schema, and the Dockerfile and systemd unit keep the
// properties the README promises.
package examples_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portcullisdb/portcullis/config"
)

// TestExamplesLoad loads each example as `portcullis serve --check` would,
// with dummy values for the secrets and files it references.
func TestExamplesLoad(t *testing.T) {
	tests := []struct {
		name string
		file string
	}{
		{name: "production", file: "portcullis.yaml"},
		{name: "dev", file: filepath.Join("dev", "portcullis.yaml")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := stage(t, tt.file)
			if _, err := config.Load(path); err != nil {
				t.Fatalf("%s does not load:\n%v", tt.file, err)
			}
		})
	}
}

// TestProductionExampleHasEveryKey fails when a key of config.Config is
// missing from examples/portcullis.yaml: a new key must be documented there.
func TestProductionExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile("portcullis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[config.Config]()
	present := map[string]bool{}
	walkNode(docRoot(&doc), "", typ, present)

	var missing []string
	for _, key := range schemaKeys(typ, "") {
		if !present[key] {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		t.Errorf("examples/portcullis.yaml lacks these keys of the config schema; add each, commented with what it does and its default:\n  %s",
			strings.Join(missing, "\n  "))
	}
}

// stage copies the example file (relative to this directory) into a temp
// dir, creates a dummy for every relative file it references (secrets
// written file:PATH, and the values of keys named *_file), and sets every
// environment variable it references with ${env:NAME}. It returns the
// copy's path.
func stage(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	create := func(key, p string) {
		if filepath.IsAbs(p) {
			t.Fatalf("%s: %s references the absolute path %s: use a path relative to the config file, so the example can be checked anywhere", file, key, p)
		}
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		content := "dummy-" + filepath.Base(p) + "\n"
		if strings.HasSuffix(p, ".json") {
			content = `{"keys":[]}` + "\n"
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	eachScalar(docRoot(&doc), "", func(key, value string) {
		switch {
		case strings.HasPrefix(value, "${env:") && strings.HasSuffix(value, "}"):
			t.Setenv(strings.TrimSuffix(strings.TrimPrefix(value, "${env:"), "}"), "dummy-secret")
		case strings.HasPrefix(value, "file:"):
			create(key, strings.TrimPrefix(value, "file:"))
		case strings.HasSuffix(key, "_file") && value != "":
			create(key, value)
		}
	})
	return path
}

func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0]
	}
	return doc
}

// eachScalar calls fn with every scalar value in n and the key it sits
// under (for a list item, the list's key).
func eachScalar(n *yaml.Node, key string, fn func(key, value string)) {
	switch n.Kind {
	case yaml.ScalarNode:
		fn(key, n.Value)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			eachScalar(n.Content[i+1], n.Content[i].Value, fn)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			eachScalar(c, key, fn)
		}
	case yaml.AliasNode:
		eachScalar(n.Alias, key, fn)
	}
}

// The key paths both walks produce: struct fields joined by ".", map
// entries as "*", list items as "[]", e.g. "roles.*.backend_password" and
// "exchange.azure.tenants[].tenant_id".

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// leaf reports whether t is decoded as one value (a scalar, a list of
// scalars, or a type with its own UnmarshalYAML such as config.Secret).
func leaf(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		return false
	case reflect.Map, reflect.Slice, reflect.Array:
		return leaf(t.Elem())
	}
	return true
}

// field is one yaml key of a struct.
type field struct {
	key    string
	typ    reflect.Type
	inline bool
}

// yamlFields lists the yaml keys of struct type t, as go.yaml.in/yaml/v3
// names them.
func yamlFields(t reflect.Type) []field {
	var out []field
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{key: name, typ: f.Type, inline: slices.Contains(strings.Split(opts, ","), "inline")})
	}
	return out
}

// schemaKeys lists every key path of type t under prefix.
func schemaKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if leaf(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Map:
		return schemaKeys(t.Elem(), prefix+".*")
	case reflect.Slice, reflect.Array:
		return schemaKeys(t.Elem(), prefix+"[]")
	}
	var keys []string
	for _, f := range yamlFields(t) {
		if f.inline {
			keys = append(keys, schemaKeys(f.typ, prefix)...)
			continue
		}
		p := join(prefix, f.key)
		keys = append(keys, p)
		keys = append(keys, schemaKeys(f.typ, p)...)
	}
	sort.Strings(keys)
	return keys
}

// walkNode records in present every key path n holds, reading n as type t.
func walkNode(n *yaml.Node, prefix string, t reflect.Type, present map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if leaf(t) {
		return
	}
	switch {
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkNode(n.Content[i+1], prefix+".*", t.Elem(), present)
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && n.Kind == yaml.SequenceNode:
		for _, item := range n.Content {
			walkNode(item, prefix+"[]", t.Elem(), present)
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		for _, f := range yamlFields(t) {
			if f.inline {
				walkNode(n, prefix, f.typ, present)
				continue
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == f.key {
					p := join(prefix, f.key)
					present[p] = true
					walkNode(n.Content[i+1], p, f.typ, present)
				}
			}
		}
	}
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// TestSchemaKeysSeesNestedKeys guards the walk itself: were it to stop
// early, the completeness test above would pass on an empty example.
func TestSchemaKeysSeesNestedKeys(t *testing.T) {
	keys := schemaKeys(reflect.TypeFor[config.Config](), "")
	for _, want := range []string{
		"listen.mysql",
		"issuers[].jwks_file",
		"roles.*.backend_password",
		"exchange.azure.tenants[].tenant_id",
		"exchange.rules[].ttl",
		"sso",
		"node",
	} {
		if !slices.Contains(keys, want) {
			t.Errorf("schemaKeys misses %s; it found:\n  %s", want, strings.Join(keys, "\n  "))
		}
	}
}

// dockerfile is the Dockerfile's instructions, continuation lines joined,
// comments dropped: {"FROM", "golang:1.26 AS build"}, ...
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue // a comment inside a continued instruction
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		instr, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, [2]string{strings.ToUpper(instr), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends inside a continued instruction: %q", cur.String())
	}
	return out
}

// makefileBuild is the package path and flags of `make build`.
func makefileBuild(t *testing.T) (pkg string, line string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(data)) {
		l = strings.TrimSpace(l)
		if strings.Contains(l, "build") && strings.Contains(l, "-o $(BIN)") {
			fields := strings.Fields(l)
			return fields[len(fields)-1], l
		}
	}
	t.Fatal("Makefile: no build line with -o $(BIN) found")
	return "", ""
}

// TestDockerfile lints the Dockerfile textually (this machine cannot run
// docker): pinned multi-stage build, the same build as `make build`, a
// non-root distroless final stage, no remote ADD.
func TestDockerfile(t *testing.T) {
	instrs := dockerfile(t)
	pkg, makeLine := makefileBuild(t)

	var froms, users, exposes, entry, cmd []string
	var runs []string
	for _, in := range instrs {
		switch in[0] {
		case "FROM":
			froms = append(froms, in[1])
		case "USER":
			users = append(users, in[1])
		case "EXPOSE":
			exposes = append(exposes, strings.Fields(in[1])...)
		case "ENTRYPOINT":
			entry = jsonArray(t, in)
		case "CMD":
			cmd = jsonArray(t, in)
		case "RUN":
			runs = append(runs, in[1])
		case "ADD":
			if regexp.MustCompile(`(?i)\b(https?|git|ssh)://|git@`).MatchString(in[1]) {
				t.Errorf("ADD %s fetches a remote resource: download nothing unpinned in the build; use COPY", in[1])
			}
		}
	}

	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, found FROM %v", froms)
	}
	if !strings.HasPrefix(froms[0], "golang:1.26") {
		t.Errorf("build stage is FROM %s, want golang:1.26 (go.mod's go version)", froms[0])
	}
	final := strings.Fields(froms[len(froms)-1])[0]
	if final != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage is FROM %s, want gcr.io/distroless/static-debian12:nonroot", final)
	}
	if len(users) == 0 {
		t.Error("no USER: the final image would run as root")
	} else if u := users[len(users)-1]; u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		t.Errorf("the last USER is %s: run as a non-root user", u)
	}

	var build string
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	if build == "" {
		t.Fatal("no RUN ... go build in the Dockerfile")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-s -w -X main.version=`, " " + pkg} {
		if !strings.Contains(build, want) {
			t.Errorf("the Dockerfile's go build lacks %q, which `make build` has:\n  Dockerfile: %s\n  Makefile:   %s", want, build, makeLine)
		}
	}

	for _, addr := range []string{config.DefaultListenMySQL, config.DefaultListenHTTP} {
		port := addr[strings.LastIndex(addr, ":")+1:]
		if !slices.Contains(exposes, port) {
			t.Errorf("EXPOSE %v lacks %s, the port of the default listener %s", exposes, port, addr)
		}
	}
	if !slices.Equal(entry, []string{"/portcullis"}) {
		t.Errorf(`ENTRYPOINT is %q, want ["/portcullis"]`, entry)
	}
	if !slices.Equal(cmd, []string{"serve", "--config", "/etc/portcullis/portcullis.yaml"}) {
		t.Errorf(`CMD is %q, want ["serve","--config","/etc/portcullis/portcullis.yaml"]`, cmd)
	}

	ignore, err := os.ReadFile(filepath.Join("..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".run", ".git", "bin"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf(".dockerignore lacks %s: keep dev secrets and build output out of the build context", want)
		}
	}
}

func jsonArray(t *testing.T, in [2]string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(in[1]), &out); err != nil {
		t.Errorf("%s %s: use the JSON (exec) form, so no shell is needed (distroless has none)", in[0], in[1])
	}
	return out
}

// TestSystemdUnit checks the hardening the README promises, and runs
// `systemd-analyze verify` when it is installed.
func TestSystemdUnit(t *testing.T) {
	unit := filepath.Join("..", "packaging", "portcullis.service")
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string][]string{}
	for l := range strings.Lines(string(data)) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";") || strings.HasPrefix(l, "[") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if ok {
			set[k] = append(set[k], v)
		}
	}
	for _, want := range [][2]string{
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectKernelLogs", "yes"},
		{"ProtectControlGroups", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"RestrictNamespaces", "yes"},
		{"LockPersonality", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"SystemCallFilter", "@system-service"},
		{"CapabilityBoundingSet", ""},
		{"StateDirectory", "portcullis"},
		{"ConfigurationDirectory", "portcullis"},
		{"ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Restart", "on-failure"},
	} {
		vals := set[want[0]]
		ok := len(vals) > 0 && vals[len(vals)-1] == want[1] // a later line overrides an earlier one
		if want[0] == "SystemCallFilter" {
			ok = slices.Contains(vals, want[1]) // these lines add up
		}
		if !ok {
			t.Errorf("%s: want %s=%s, have %q", unit, want[0], want[1], vals)
		}
	}
	if !slices.Contains(set["DynamicUser"], "yes") && len(set["User"]) == 0 {
		t.Errorf("%s: set DynamicUser=yes or a dedicated User=", unit)
	}
	if len(set["LoadCredential"]) == 0 {
		t.Errorf("%s: pass secrets with LoadCredential=", unit)
	}
	if exec := strings.Join(set["ExecStart"], " "); !strings.Contains(exec, "serve --config /etc/portcullis/portcullis.yaml") {
		t.Errorf("%s: ExecStart=%s does not serve /etc/portcullis/portcullis.yaml, the path the README and the Docker image use", unit, exec)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit was only checked textually")
		return
	}
	// verify wants ExecStart's binary to exist: point it at a stand-in.
	dir := t.TempDir()
	bin := filepath.Join(dir, "portcullis")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	copied := strings.ReplaceAll(string(data), "/usr/local/bin/portcullis", bin)
	path := filepath.Join(dir, "portcullis.service")
	if err := os.WriteFile(path, []byte(copied), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}
