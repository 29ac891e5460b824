package config_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullisdb/portcullis/config"
)

// exampleYAML is the example from the README: it must load as is.
const exampleYAML = `listen: {mysql: "127.0.0.1:4000", http: "127.0.0.1:8080"}
tls: {cert_file: "", key_file: ""}
backend: {address: "127.0.0.1:3306", tls: disabled}
issuers:
  - name: corp
    issuer: "https://idp.test/"
    audiences: ["portcullis"]
    jwks_url: "https://idp.test/jwks.json"
    username_claim: email
    roles_claim: roles
    groups_claim: groups
roles:
  analyst: {backend_user: ro_analyst, backend_password: "${env:ANALYST_PW}"}
  dba:     {backend_user: dba_user,  backend_password: "file:secrets/dba"}
mappings:
  - {issuer: corp, groups: ["db-analysts"], roles: [analyst]}
default_role_order: [analyst, dba]
audit: {file: "audit.log"}
`

// Distinctive secret values: no error text or printed Config may hold them.
const (
	analystSecret = "analyst-pw-Zq81x"
	dbaSecret     = "dba-pw-Kv07w"
)

// writeFiles writes files (path relative to a fresh directory -> content)
// and returns the directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// unsetEnv makes sure name is unset for the test, and restored after.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	os.Unsetenv(name)
}

func loadExample(t *testing.T) (*config.Config, string) {
	t.Helper()
	t.Setenv("ANALYST_PW", analystSecret)
	dir := writeFiles(t, map[string]string{
		"portcullis.yaml": exampleYAML,
		"secrets/dba":     dbaSecret + "\r\n",
	})
	cfg, err := config.Load(filepath.Join(dir, "portcullis.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg, dir
}

func TestLoadExample(t *testing.T) {
	cfg, dir := loadExample(t)
	tests := []struct {
		name      string
		got, want any
	}{
		{name: "listen.mysql", got: cfg.Listen.MySQL, want: "127.0.0.1:4000"},
		{name: "listen.http", got: cfg.Listen.HTTP, want: "127.0.0.1:8080"},
		{name: "tls.cert_file stays empty", got: cfg.TLS.CertFile, want: ""},
		{name: "backend.address", got: cfg.Backend.Address, want: "127.0.0.1:3306"},
		{name: "backend.tls", got: cfg.Backend.TLS, want: config.BackendTLSDisabled},
		{name: "backend.dial_timeout default", got: cfg.Backend.DialTimeout, want: 5 * time.Second},
		{name: "proxy.max_connections default", got: cfg.Proxy.MaxConnections, want: 1000},
		{name: "proxy.handshake_timeout default", got: cfg.Proxy.HandshakeTimeout, want: 10 * time.Second},
		{name: "proxy.shutdown_timeout default", got: cfg.Proxy.ShutdownTimeout, want: 30 * time.Second},
		{name: "proxy.max_token_bytes default", got: cfg.Proxy.MaxTokenBytes, want: 65536},
		{name: "proxy.max_handshakes default", got: cfg.Proxy.MaxHandshakes, want: 512},
		{name: "proxy.max_handshakes_per_address default", got: cfg.Proxy.MaxHandshakesPerAddress, want: 64},
		{name: "issuers count", got: len(cfg.Issuers), want: 1},
		{name: "issuers[0].name", got: cfg.Issuers[0].Name, want: "corp"},
		{name: "issuers[0].issuer", got: cfg.Issuers[0].Issuer, want: "https://idp.test/"},
		{name: "issuers[0].audiences", got: fmt.Sprint(cfg.Issuers[0].Audiences), want: "[portcullis]"},
		{name: "issuers[0].jwks_url", got: cfg.Issuers[0].JWKSURL, want: "https://idp.test/jwks.json"},
		{name: "issuers[0].username_claim", got: cfg.Issuers[0].UsernameClaim, want: "email"},
		{name: "issuers[0].roles_claim", got: cfg.Issuers[0].RolesClaim, want: "roles"},
		{name: "issuers[0].groups_claim", got: cfg.Issuers[0].GroupsClaim, want: "groups"},
		{name: "issuers[0].max_lifetime default", got: cfg.Issuers[0].MaxLifetime, want: 24 * time.Hour},
		{name: "dev_issuer.enabled default", got: cfg.DevIssuer.Enabled, want: false},
		{name: "dev_issuer.issuer default", got: cfg.DevIssuer.Issuer, want: "portcullis-dev"},
		{name: "dev_issuer.key_file default, absolute", got: cfg.DevIssuer.KeyFile, want: filepath.Join(dir, "portcullis-dev-key.pem")},
		{name: "dev_issuer.audience default", got: cfg.DevIssuer.Audience, want: "portcullis"},
		{name: "dev_issuer.token_ttl default", got: cfg.DevIssuer.TokenTTL, want: time.Hour},
		{name: "roles.analyst.backend_user", got: cfg.Roles["analyst"].BackendUser, want: "ro_analyst"},
		{name: "roles.analyst.backend_password from env", got: cfg.Roles["analyst"].BackendPassword.Value(), want: analystSecret},
		{name: "roles.analyst.backend_password ref", got: cfg.Roles["analyst"].BackendPassword.Ref, want: "${env:ANALYST_PW}"},
		{name: "roles.dba.backend_user", got: cfg.Roles["dba"].BackendUser, want: "dba_user"},
		{name: "roles.dba.backend_password from file, CRLF trimmed", got: cfg.Roles["dba"].BackendPassword.Value(), want: dbaSecret},
		{name: "mappings", got: fmt.Sprintf("%+v", cfg.Mappings), want: "[{Issuer:corp Groups:[db-analysts] Roles:[analyst]}]"},
		{name: "default_role_order", got: fmt.Sprint(cfg.DefaultRoleOrder), want: "[analyst dba]"},
		{name: "audit.file absolute", got: cfg.Audit.File, want: filepath.Join(dir, "audit.log")},
		{name: "log.level default", got: cfg.Log.Level, want: "info"},
		{name: "log.format default", got: cfg.Log.Format, want: "text"},
		{name: "Validate again", got: cfg.Validate(), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

// TestSecretNeverPrinted prints a loaded Config every way a careless caller
// might, and checks no secret value comes out.
func TestSecretNeverPrinted(t *testing.T) {
	cfg, _ := loadExample(t)
	jsonOut, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	yamlOut, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		out  string
	}{
		{name: "Sprint", out: fmt.Sprint(cfg)},
		{name: "Sprint of the struct", out: fmt.Sprint(*cfg)},
		{name: "Sprint of a role", out: fmt.Sprint(cfg.Roles["dba"])},
		{name: "json", out: string(jsonOut)},
		{name: "yaml", out: string(yamlOut)},
	}
	// Every verb, including those that print a struct's fields raw.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X"} {
		tests = append(tests, struct {
			name string
			out  string
		}{name: verb, out: fmt.Sprintf(verb, cfg)})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, secret := range []string{analystSecret, dbaSecret} {
				if strings.Contains(tt.out, secret) {
					t.Errorf("output holds secret %q:\n%s", secret, tt.out)
				}
			}
		})
	}
	// The redaction must not hide everything: the reference is still useful.
	if out := fmt.Sprintf("%#v", cfg); !strings.Contains(out, "${env:ANALYST_PW}") {
		t.Errorf("%%#v lost the secret reference:\n%s", out)
	}
}

// Base sections of a small valid file; cases override whole sections.
var sectionOrder = []string{"listen", "tls", "backend", "proxy", "issuers", "dev_issuer",
	"roles", "mappings", "default_role_order", "audit", "log"}

var baseSections = map[string]string{
	"issuers":  "\n  - {name: corp, issuer: \"https://idp.test/\", audiences: [portcullis], jwks_url: \"https://idp.test/jwks.json\"}",
	"roles":    " {analyst: {backend_user: ro_analyst, backend_password: \"\"}}",
	"mappings": "\n  - {issuer: corp, roles: [analyst]}",
}

// doc builds a config file from the base sections and over; an over value
// of "-" drops the section.
func doc(over map[string]string) string {
	var b strings.Builder
	for _, key := range sectionOrder {
		body, ok := over[key]
		if !ok {
			body, ok = baseSections[key]
		}
		if !ok || body == "-" {
			continue
		}
		fmt.Fprintf(&b, "%s:%s\n", key, body)
	}
	return b.String()
}

func TestParse(t *testing.T) {
	const jwks = `{"keys": []}`
	tests := []struct {
		name  string
		yaml  string            // the whole file; empty: doc(over)
		over  map[string]string // sections replacing the base ones
		files map[string]string // written beside the config file
		env   map[string]string // set for the test
		unset []string          // env vars unset for the test
		want  []string          // substrings of the error; none: must load
	}{
		// Loads.
		{name: "base file loads"},
		{name: "durations like 10s", over: map[string]string{"proxy": " {handshake_timeout: 10s, shutdown_timeout: 1m30s}", "backend": " {dial_timeout: 250ms}"}},
		{name: "tls files present", over: map[string]string{"tls": " {cert_file: c.pem, key_file: k.pem}"}, files: map[string]string{"c.pem": "x", "k.pem": "x"}},
		{name: "ca_file with verify-full", over: map[string]string{"backend": " {tls: verify-full, ca_file: ca.pem}"}, files: map[string]string{"ca.pem": "x"}},
		{name: "jwks_url http on 127.0.0.1", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, audiences: [a], jwks_url: \"http://127.0.0.1:9999/jwks\"}"}},
		{name: "jwks_url http on localhost", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, audiences: [a], jwks_url: \"http://localhost/jwks\"}"}},
		{name: "listen.pprof on localhost: the same loopback rule as everywhere (netaddr)", over: map[string]string{"listen": " {pprof: \"localhost:6060\"}"}},
		{name: "jwks_url http on ::1", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, audiences: [a], jwks_url: \"http://[::1]:80/jwks\"}"}},
		{name: "jwks_file relative to the config dir", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, audiences: [a], jwks_file: keys/jwks.json}"}, files: map[string]string{"keys/jwks.json": jwks}},
		{name: "dev issuer alone", over: map[string]string{"issuers": "-", "dev_issuer": " {enabled: true}", "mappings": "\n  - {issuer: dev, roles: [analyst]}"}},
		{name: "secret from env", over: map[string]string{"roles": " {analyst: {backend_user: u, backend_password: \"${env:PORTCULLIS_TEST_PW}\"}}"}, env: map[string]string{"PORTCULLIS_TEST_PW": "x"}},
		{name: "empty env var is set", over: map[string]string{"roles": " {analyst: {backend_user: u, backend_password: \"${env:PORTCULLIS_TEST_PW}\"}}"}, env: map[string]string{"PORTCULLIS_TEST_PW": ""}},

		// Decoding.
		{name: "unknown top-level key", yaml: "listen: {mysql: \"127.0.0.1:4000\"}\nlisen: {}\n", want: []string{"lisen: unknown key: use one of listen, tls,", "(line 2)"}},
		{name: "unknown nested key", yaml: "issuers:\n  - name: corp\n    jwks_uri: x\n", want: []string{"issuers[0].jwks_uri: unknown key: use one of name, issuer,", "(line 3)"}},
		{name: "unknown key and a validation problem together", over: map[string]string{"log": " {level: loud, colour: true}"}, want: []string{"log.colour: unknown key", `log.level: "loud" is not a level`}},
		{name: "duration without unit", yaml: "proxy:\n  handshake_timeout: 10\n", want: []string{"proxy.handshake_timeout: has the wrong type: cannot read !!int `10` into time.Duration (line 2)"}},
		{name: "type errors reported with the other problems", yaml: "listen: {mysql: nope}\nproxy: {handshake_timeout: 10, max_connections: many}\nroles: [a]\nbogus: 1\n",
			want: []string{"proxy.handshake_timeout: has the wrong type", "proxy.max_connections: has the wrong type: cannot read !!str `many` into int (line 2)",
				"roles: has the wrong type", "bogus: unknown key", `listen.mysql: "nope" is not host:port`, "issuers: no token source"}},
		{name: "syntax error names the file", yaml: "listen: {mysql: x\n", want: []string{"portcullis.yaml: yaml: line"}},
		{name: "duplicate key", yaml: "log: {}\nlog: {}\n", want: []string{`log: mapping key "log" already defined at line 1 (line 2)`}},
		{name: "two documents", yaml: "log: {}\n---\nlog: {}\n", want: []string{"more than one YAML document"}},
		{name: "empty file", yaml: "\n", want: []string{"issuers: no token source is configured", "roles: no role is defined"}},

		// listen, tls, backend, proxy.
		{name: "listen.mysql not host:port", over: map[string]string{"listen": " {mysql: \"127.0.0.1\"}"}, want: []string{`listen.mysql: "127.0.0.1" is not host:port`}},
		{name: "listen.http bad port", over: map[string]string{"listen": " {http: \"localhost:99999\"}"}, want: []string{`listen.http: "localhost:99999" has no valid port`}},
		{name: "listen.pprof not loopback", over: map[string]string{"listen": " {pprof: \"0.0.0.0:6060\"}"}, want: []string{`listen.pprof: "0.0.0.0:6060" is not a loopback host:port`}},
		{name: "tls cert without key", over: map[string]string{"tls": " {cert_file: c.pem}"}, files: map[string]string{"c.pem": "x"}, want: []string{"tls.key_file: is empty but tls.cert_file is set"}},
		{name: "tls key without cert", over: map[string]string{"tls": " {key_file: k.pem}"}, files: map[string]string{"k.pem": "x"}, want: []string{"tls.cert_file: is empty but tls.key_file is set"}},
		{name: "tls files missing", over: map[string]string{"tls": " {cert_file: c.pem, key_file: k.pem}"}, want: []string{"tls.cert_file: file ", "c.pem does not exist", "tls.key_file: file "}},
		{name: "backend.address", over: map[string]string{"backend": " {address: db}"}, want: []string{`backend.address: "db" is not host:port`}},
		{name: "backend.tls mode", over: map[string]string{"backend": " {tls: verify}"}, want: []string{`backend.tls: "verify" is not a mode: use one of disabled, preferred, required, verify-full`}},
		{name: "ca_file with tls disabled", over: map[string]string{"backend": " {ca_file: ca.pem}"}, files: map[string]string{"ca.pem": "x"}, want: []string{"backend.ca_file: is set but backend.tls is disabled"}},
		{name: "ca_file missing", over: map[string]string{"backend": " {tls: verify-full, ca_file: ca.pem}"}, want: []string{"backend.ca_file: file ", "ca.pem does not exist"}},
		{name: "negative dial_timeout", over: map[string]string{"backend": " {dial_timeout: -1s}"}, want: []string{"backend.dial_timeout: must be a positive duration"}},
		{name: "max_connections", over: map[string]string{"proxy": " {max_connections: -1}"}, want: []string{"proxy.max_connections: is -1: must be at least 1"}},
		{name: "max_token_bytes", over: map[string]string{"proxy": " {max_token_bytes: -1}"}, want: []string{"proxy.max_token_bytes: is -1"}},
		{name: "max_handshakes_per_address above max_handshakes", over: map[string]string{"proxy": " {max_handshakes: 10, max_handshakes_per_address: 20}"}, want: []string{"proxy.max_handshakes_per_address: is 20, more than proxy.max_handshakes (10)"}},
		{name: "first_packet_timeout above handshake_timeout", over: map[string]string{"proxy": " {handshake_timeout: 2s, first_packet_timeout: 5s}"}, want: []string{"proxy.first_packet_timeout: is 5s, longer than proxy.handshake_timeout (2s)"}},
		{name: "proxy timeouts", over: map[string]string{"proxy": " {handshake_timeout: -1s, shutdown_timeout: -2s}"}, want: []string{"proxy.handshake_timeout: must be a positive", "proxy.shutdown_timeout: must be a positive"}},

		// issuers and dev_issuer.
		{name: "no issuer at all", over: map[string]string{"issuers": "-", "mappings": "-"}, want: []string{"issuers: no token source is configured: add an IdP under sso.connections, an entry under issuers, local.enabled: true or exchange:, or set dev_issuer.enabled: true"}},
		{name: "issuer name empty", over: map[string]string{"issuers": "\n  - {issuer: i, audiences: [a], jwks_url: \"https://x/j\"}"}, want: []string{"issuers[0].name: is empty"}},
		{name: "issuer names unique", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i1, audiences: [a], jwks_url: \"https://x/j\"}\n  - {name: corp, issuer: i2, audiences: [a], jwks_url: \"https://x/j\"}"}, want: []string{`issuers[1].name: "corp" is also the name of issuers[0]`, "(line 3)"}},
		{name: "issuer name dev reserved", over: map[string]string{"issuers": "\n  - {name: dev, issuer: i, audiences: [a], jwks_url: \"https://x/j\"}"}, want: []string{`issuers[0].name: "dev" is reserved for dev_issuer`}},
		{name: "iss empty", over: map[string]string{"issuers": "\n  - {name: corp, audiences: [a], jwks_url: \"https://x/j\"}"}, want: []string{"issuers[0].issuer: is empty"}},
		{name: "iss unique", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, audiences: [a], jwks_url: \"https://x/j\"}\n  - {name: other, issuer: i, audiences: [a], jwks_url: \"https://x/j\"}"}, want: []string{`issuers[1].issuer: "i" is also the issuer of issuers[0].issuer`}},
		{name: "iss unique against dev_issuer", over: map[string]string{"dev_issuer": " {enabled: true}", "issuers": "\n  - {name: corp, issuer: portcullis-dev, audiences: [a], jwks_url: \"https://x/j\"}"}, want: []string{`issuers[0].issuer: "portcullis-dev" is also the issuer of dev_issuer.issuer`}},
		{name: "audiences empty", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, jwks_url: \"https://x/j\"}"}, want: []string{"issuers[0].audiences: is empty"}},
		{name: "both jwks_url and jwks_file", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, audiences: [a], jwks_url: \"https://x/j\", jwks_file: j.json}"}, files: map[string]string{"j.json": jwks}, want: []string{"issuers[0].jwks_file: is set along with jwks_url: set only one of them"}},
		{name: "neither jwks_url nor jwks_file", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, audiences: [a]}"}, want: []string{"issuers[0].jwks_url: is empty: set jwks_url (or jwks_file)"}},
		{name: "jwks_url http off loopback", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, audiences: [a], jwks_url: \"http://idp.test/j\"}"}, want: []string{`issuers[0].jwks_url: "http://idp.test/j" must use https://`}},
		{name: "jwks_url not a URL", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, audiences: [a], jwks_url: \"idp.test/j\"}"}, want: []string{"issuers[0].jwks_url: \"idp.test/j\" is not an absolute URL"}},
		{name: "jwks_file missing", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, audiences: [a], jwks_file: j.json}"}, want: []string{"issuers[0].jwks_file: file ", "j.json does not exist"}},
		{name: "max_lifetime negative", over: map[string]string{"issuers": "\n  - {name: corp, issuer: i, audiences: [a], jwks_url: \"https://x/j\", max_lifetime: -1h}"}, want: []string{"issuers[0].max_lifetime: must be a positive duration"}},
		{name: "dev token_ttl negative", over: map[string]string{"dev_issuer": " {enabled: true, token_ttl: -1m}"}, want: []string{"dev_issuer.token_ttl: must be a positive duration"}},

		// roles.
		{name: "no roles", over: map[string]string{"roles": "-", "mappings": "-"}, want: []string{"roles: no role is defined: add one"}},
		{name: "role name with slash", over: map[string]string{"roles": " {\"a/b\": {backend_user: u}}", "mappings": "-"}, want: []string{`roles["a/b"]: the role name "a/b" holds "/" or whitespace`}},
		{name: "role name with space", over: map[string]string{"roles": " {\"a b\": {backend_user: u}}", "mappings": "-"}, want: []string{`roles["a b"]: the role name "a b" holds "/" or whitespace`}},
		{name: "role name empty", over: map[string]string{"roles": " {\"\": {backend_user: u}}", "mappings": "-"}, want: []string{`roles[""]: the role name is empty`}},
		{name: "backend_user empty", over: map[string]string{"roles": " {analyst: {backend_password: \"\"}}"}, want: []string{"roles.analyst.backend_user: is empty"}},
		{name: "one account, two pools", over: map[string]string{"roles": " {analyst: {backend_user: u}, bulk: {backend_user: u, pool: {max_idle: -1}}}"},
			want: []string{"roles.bulk.pool: differs from roles.analyst.pool, which logs in as the same backend_user u"}},
		{name: "one account, one pool", over: map[string]string{"roles": " {analyst: {backend_user: u, pool: {max_idle: 8}}, bulk: {backend_user: u}, temp: {plan: ephemeral, backend_user: u, grants: [\"SELECT ON a.*\"], pool: {max_idle: -1}}}"}},

		// secrets.
		{name: "inline secret refused", over: map[string]string{"roles": " {dba: {backend_user: u, backend_password: \"pw-inline-Yt4\"}}", "mappings": "-"}, want: []string{"roles.dba.backend_password: write the secret as ${env:NAME} or file:PATH, not inline"}},
		{name: "inline number refused", over: map[string]string{"roles": " {dba: {backend_user: u, backend_password: 12345}}", "mappings": "-"}, want: []string{"roles.dba.backend_password: write the secret as ${env:NAME} or file:PATH, not inline"}},
		{name: "unset env var", over: map[string]string{"roles": " {dba: {backend_user: u, backend_password: \"${env:DBA_PW}\"}}", "mappings": "-"}, unset: []string{"DBA_PW"}, want: []string{"roles.dba.backend_password: env var DBA_PW is not set"}},
		{name: "bad env var name", over: map[string]string{"roles": " {dba: {backend_user: u, backend_password: \"${env:}\"}}", "mappings": "-"}, want: []string{`roles.dba.backend_password: "" is not an environment variable name`}},
		{name: "secret file missing", over: map[string]string{"roles": " {dba: {backend_user: u, backend_password: \"file:secrets/dba\"}}", "mappings": "-"}, want: []string{"roles.dba.backend_password: cannot read secret file ", filepath.Join("secrets", "dba")}},
		{name: "secret file without path", over: map[string]string{"roles": " {dba: {backend_user: u, backend_password: \"file:\"}}", "mappings": "-"}, want: []string{"roles.dba.backend_password: file: names no path"}},
		{name: "secret not a string", yaml: "roles:\n  dba:\n    backend_user: u\n    backend_password: {value: x}\n", want: []string{"roles.dba.backend_password: a secret must be a string", "(line 4)"}},
		{name: "problem line of a secret", yaml: "issuers:\n  - {name: corp, issuer: i, audiences: [a], jwks_url: \"https://x/j\"}\nroles:\n  dba:\n    backend_user: u\n    backend_password: \"${env:DBA_PW}\"\n", unset: []string{"DBA_PW"}, want: []string{"roles.dba.backend_password: env var DBA_PW is not set (line 6)"}},

		// mappings, default_role_order.
		{name: "mapping issuer unknown", over: map[string]string{"mappings": "\n  - {issuer: nope, roles: [analyst]}"}, want: []string{`mappings[0].issuer: "nope" is not a configured issuer: name one of corp`}},
		{name: "mapping issuer empty", over: map[string]string{"mappings": "\n  - {roles: [analyst]}"}, want: []string{"mappings[0].issuer: is empty: name one of corp"}},
		{name: "mapping to dev without dev_issuer", over: map[string]string{"mappings": "\n  - {issuer: dev, roles: [analyst]}"}, want: []string{`mappings[0].issuer: "dev" is dev_issuer, which is not enabled: set dev_issuer.enabled: true`}},
		{name: "mapping role undefined", over: map[string]string{"mappings": "\n  - issuer: corp\n    roles:\n      - analyst\n      - ghost"}, want: []string{`mappings[0].roles[1]: role "ghost" is not defined`, "(line 8)"}},
		{name: "mapping roles empty", over: map[string]string{"mappings": "\n  - {issuer: corp, groups: [g]}"}, want: []string{"mappings[0].roles: is empty"}},
		{name: "default_role_order undefined", over: map[string]string{"default_role_order": " [ghost]"}, want: []string{`default_role_order[0]: role "ghost" is not defined`}},
		{name: "default_role_order duplicate", over: map[string]string{"default_role_order": " [analyst, analyst]"}, want: []string{`default_role_order[1]: role "analyst" is already listed at default_role_order[0]`}},

		// log.
		{name: "log.level", over: map[string]string{"log": " {level: loud}"}, want: []string{`log.level: "loud" is not a level: use one of debug, info, warn, error`}},
		{name: "log.format", over: map[string]string{"log": " {format: xml}"}, want: []string{`log.format: "xml" is not a format: use one of text, json`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			for _, k := range tt.unset {
				unsetEnv(t, k)
			}
			data := tt.yaml
			if data == "" {
				data = doc(tt.over)
			}
			dir := writeFiles(t, tt.files)
			cfg, err := config.Parse([]byte(data), "portcullis.yaml", dir)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Parse:\n%s\nfailed: %v", data, err)
				}
				if cfg == nil {
					t.Fatal("Parse returned a nil Config and no error")
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse:\n%s\nsucceeded, want an error holding %q", data, tt.want)
			}
			if cfg != nil {
				t.Errorf("Parse returned a Config along with an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not hold %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestManyProblemsOneError checks that one bad file reports every problem,
// once, under one heading, and leaks no secret.
func TestManyProblemsOneError(t *testing.T) {
	t.Setenv("ANALYST_PW", analystSecret)
	unsetEnv(t, "DBA_PW")
	const inline = "inline-pw-Rr55j"
	data := `listen: {mysql: "127.0.0.1"}
backend: {tls: verify}
issuers:
  - name: corp
    issuer: "https://idp.test/"
    audiences: [portcullis]
    jwks_url: "http://idp.test/jwks.json"
roles:
  analyst: {backend_user: ro_analyst, backend_password: "${env:ANALYST_PW}"}
  dba: {backend_user: dba_user, backend_password: "${env:DBA_PW}"}
  ops: {backend_user: ops, backend_password: "` + inline + `"}
mappings:
  - {issuer: corp, roles: [analyst, ghost]}
log: {level: loud}
`
	_, err := config.Parse([]byte(data), "bad.yaml", t.TempDir())
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	msg := err.Error()
	want := []string{
		"invalid configuration in bad.yaml:\n  ",
		`  listen.mysql: "127.0.0.1" is not host:port: write it like 127.0.0.1:4000 (line 1)`,
		`  backend.tls: "verify" is not a mode`,
		`  issuers[0].jwks_url: "http://idp.test/jwks.json" must use https://`,
		"  roles.dba.backend_password: env var DBA_PW is not set (line 10)",
		"  roles.ops.backend_password: write the secret as ${env:NAME} or file:PATH, not inline (line 11)",
		`  mappings[0].roles[1]: role "ghost" is not defined`,
		`  log.level: "loud" is not a level`,
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not hold %q:\n%s", w, msg)
		}
	}
	if n := strings.Count(msg, "invalid configuration"); n != 1 {
		t.Errorf("heading appears %d times, want 1:\n%s", n, msg)
	}
	if n := strings.Count(msg, "\n  "); n != len(want)-1 {
		t.Errorf("error lists %d problems, want %d:\n%s", n, len(want)-1, msg)
	}
	for _, secret := range []string{analystSecret, inline} {
		if strings.Contains(msg, secret) {
			t.Errorf("error holds secret %q:\n%s", secret, msg)
		}
	}
}

// TestSecretFileRelative loads a file: secret relative to the config file's
// directory, from a process whose working directory is elsewhere.
func TestSecretFileRelative(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"conf/portcullis.yaml": doc(map[string]string{"roles": ` {dba: {backend_user: u, backend_password: "file:secrets/dba"}}`, "mappings": "-"}),
		"conf/secrets/dba":     dbaSecret + "\n",
		"secrets/dba":          "wrong-file",
	})
	t.Chdir(dir)
	cfg, err := config.Load(filepath.Join("conf", "portcullis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Roles["dba"].BackendPassword.Value(); got != dbaSecret {
		t.Errorf("secret = %q, want %q", got, dbaSecret)
	}
	if want := filepath.Join(dir, "conf", "portcullis-dev-key.pem"); cfg.DevIssuer.KeyFile != want {
		t.Errorf("dev_issuer.key_file = %q, want %q", cfg.DevIssuer.KeyFile, want)
	}
}

func TestSecretFileErrorHidesContent(t *testing.T) {
	// A directory is unreadable as a file; its name is in the error, and the
	// content of a neighbouring secret never is.
	dir := writeFiles(t, map[string]string{"secrets/dba/x": dbaSecret})
	data := doc(map[string]string{"roles": ` {dba: {backend_user: u, backend_password: "file:secrets/dba"}}`, "mappings": "-"})
	_, err := config.Parse([]byte(data), "portcullis.yaml", dir)
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "secrets", "dba")) {
		t.Errorf("error does not name the path:\n%v", err)
	}
	if strings.Contains(err.Error(), dbaSecret) {
		t.Errorf("error holds the secret:\n%v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := config.Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load(%s) = %v, want an error naming the file", path, err)
	}
}

// TestValidate checks Validate on a Config changed in code after Load.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*config.Config)
		want   string // substring of the error; "": valid
	}{
		{name: "unchanged", change: func(*config.Config) {}},
		{name: "audit.file empty", change: func(c *config.Config) { c.Audit.File = "" }, want: `audit.file: is empty: set a path, or "-" for stdout (line 18)`},
		{name: "audit to stdout", change: func(c *config.Config) { c.Audit.File = "-" }},
		{name: "max_connections zero", change: func(c *config.Config) { c.Proxy.MaxConnections = 0 }, want: "proxy.max_connections: is 0: must be at least 1"},
		{name: "mapping to dev once enabled", change: func(c *config.Config) {
			c.DevIssuer.Enabled = true
			c.Mappings = append(c.Mappings, config.Mapping{Issuer: config.DevIssuerName, Roles: []string{"dba"}})
		}},
		{name: "role dropped", change: func(c *config.Config) { delete(c.Roles, "dba") }, want: `default_role_order[1]: role "dba" is not defined`},
		{name: "classical key exchange", change: func(c *config.Config) { c.TLS.KeyExchange = "classical" }},
		{name: "unknown key exchange", change: func(c *config.Config) { c.TLS.KeyExchange = "x448" }, want: `tls.key_exchange: "x448" is not a key exchange`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := loadExample(t)
			tt.change(cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate succeeded, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error does not hold %q:\n%v", tt.want, err)
			case tt.want != "" && !strings.HasPrefix(err.Error(), "invalid configuration in "):
				t.Fatalf("error does not name the file:\n%v", err)
			}
		})
	}
}

// TestValidateBuiltInCode checks a Config that never saw a file.
func TestValidateBuiltInCode(t *testing.T) {
	cfg := &config.Config{
		Issuers: []config.Issuer{{Name: "corp", Issuer: "i", Audiences: []string{"a"}, JWKSURL: "https://x/j"}},
		Roles:   map[string]config.Role{"analyst": {BackendUser: "u"}},
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "invalid configuration:\n  listen.mysql:") {
		t.Fatalf("Validate before ApplyDefaults = %v, want listen.mysql reported", err)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate after ApplyDefaults: %v", err)
	}
}
