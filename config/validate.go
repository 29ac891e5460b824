package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/portcullisdb/portcullis/netaddr"
)

// problem is one thing wrong with the configuration: the key path it is
// about and "what is wrong: how to fix it". key is empty for the decoder's
// own messages, which carry their line already.
type problem struct {
	key string
	msg string
}

// check is one row of a validation table: when bad, key has problem msg.
type check struct {
	bad bool
	key string
	msg string
}

// Validate reports every problem with c at once, in one error:
//
//	invalid configuration in portcullis.yaml:
//	  roles.dba.backend_user: is empty: set the MySQL account the proxy logs in as (line 14)
//
// It also checks that the files c names exist. Secrets are checked for
// their form; whether they resolved is known only to a Config from Load.
func (c *Config) Validate() error {
	probs := c.problems()
	if len(probs) == 0 {
		return nil
	}
	var name string
	var lines map[string]int
	if c.load != nil {
		name, lines = c.load.name, c.load.lines
	}
	return problemsError(name, probs, lines)
}

// problemsError joins probs into one error, each with its line when the
// key (or its nearest enclosing key) has one.
func problemsError(name string, probs []problem, lines map[string]int) error {
	var b strings.Builder
	if name != "" {
		fmt.Fprintf(&b, "invalid configuration in %s:", name)
	} else {
		b.WriteString("invalid configuration:")
	}
	for _, p := range probs {
		b.WriteString("\n  ")
		if p.key == "" {
			b.WriteString(p.msg)
			continue
		}
		b.WriteString(p.key + ": " + p.msg)
		if line := lineOf(lines, p.key); line > 0 {
			fmt.Fprintf(&b, " (line %d)", line)
		}
	}
	return errors.New(b.String())
}

// lineOf is the line of key, or of the nearest enclosing key the file has:
// a missing roles.dba.backend_user reports the line of roles.dba.
func lineOf(lines map[string]int, key string) int {
	for key != "" {
		if line, ok := lines[key]; ok {
			return line
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return 0
		}
		key = key[:i]
	}
	return 0
}

// problems runs every check, in file order.
func (c *Config) problems() []problem {
	var probs []problem
	add := func(checks ...check) {
		for _, ch := range checks {
			if ch.bad {
				probs = append(probs, problem{key: ch.key, msg: ch.msg})
			}
		}
	}

	// listen, tls, backend, proxy
	mysqlAddr, httpAddr, backendAddr := hostPortProblem(c.Listen.MySQL), hostPortProblem(c.Listen.HTTP), hostPortProblem(c.Backend.Address)
	oneTLSFile := (c.TLS.CertFile == "") != (c.TLS.KeyFile == "")
	add(
		check{mysqlAddr != "", "listen.mysql", mysqlAddr},
		check{httpAddr != "", "listen.http", httpAddr},
		check{c.Listen.PProf != "" && (hostPortProblem(c.Listen.PProf) != "" || !netaddr.IsLoopbackHostPort(c.Listen.PProf)), "listen.pprof",
			fmt.Sprintf("%q is not a loopback host:port: the profiler listens on 127.0.0.1, [::1] or localhost only (reach it over SSH)", c.Listen.PProf)},
		check{oneTLSFile && c.TLS.CertFile == "", "tls.cert_file",
			"is empty but tls.key_file is set: set both, or neither for a self-signed certificate"},
		check{oneTLSFile && c.TLS.KeyFile == "", "tls.key_file",
			"is empty but tls.cert_file is set: set both, or neither for a self-signed certificate"},
	)
	add(check{c.TLS.KeyExchange != "" && c.TLS.KeyExchange != TLSKeyExchangeHybrid && c.TLS.KeyExchange != TLSKeyExchangeClassical, "tls.key_exchange",
		fmt.Sprintf("%q is not a key exchange: use %q (the default, post-quantum) or %q", c.TLS.KeyExchange, TLSKeyExchangeHybrid, TLSKeyExchangeClassical)})
	if p := fileProblem(c.TLS.CertFile); p != "" {
		add(check{true, "tls.cert_file", p})
	}
	if p := fileProblem(c.TLS.KeyFile); p != "" {
		add(check{true, "tls.key_file", p})
	}
	backendTLSModes := []string{BackendTLSDisabled, BackendTLSPreferred, BackendTLSRequired, BackendTLSVerifyFull}
	add(
		check{backendAddr != "", "backend.address", backendAddr},
		check{!slices.Contains(backendTLSModes, c.Backend.TLS), "backend.tls",
			fmt.Sprintf("%q is not a mode: use one of %s", c.Backend.TLS, strings.Join(backendTLSModes, ", "))},
		check{c.Backend.CAFile != "" && c.Backend.TLS == BackendTLSDisabled, "backend.ca_file",
			"is set but backend.tls is disabled: set backend.tls: verify-full, or remove ca_file"},
		check{c.Backend.DialTimeout <= 0, "backend.dial_timeout", positiveDuration},
		check{c.Proxy.MaxSessionsPerIdentity < 0, "proxy.max_sessions_per_identity", "is negative: use 0 for no cap"},
		check{c.Proxy.FailedAuthPerMinute < 0, "proxy.failed_auth_per_minute", "is negative: use a positive budget"},
		check{c.Proxy.FailedAuthPerUserPerMinute < 0, "proxy.failed_auth_per_user_per_minute", "is negative: use a positive budget"},
		check{c.Proxy.IdleTimeout < 0, "proxy.idle_timeout", "is negative: use 0 for no idle timeout"},
	)
	if p := fileProblem(c.Backend.CAFile); p != "" {
		add(check{true, "backend.ca_file", p})
	}
	if p := fileProblem(c.Backend.PublicKeyFile); p != "" {
		add(check{true, "backend.public_key_file", p})
	}
	add(
		check{c.Proxy.MaxConnections < 1, "proxy.max_connections",
			fmt.Sprintf("is %d: must be at least 1", c.Proxy.MaxConnections)},
		check{c.Proxy.HandshakeTimeout <= 0, "proxy.handshake_timeout", positiveDuration},
		check{c.Proxy.ShutdownTimeout <= 0, "proxy.shutdown_timeout", positiveDuration},
		check{c.Proxy.MaxTokenBytes < 1, "proxy.max_token_bytes",
			fmt.Sprintf("is %d: must be at least 1", c.Proxy.MaxTokenBytes)},
	)
	add(
		check{c.Proxy.MaxHandshakes < 1, "proxy.max_handshakes",
			fmt.Sprintf("is %d: must be at least 1", c.Proxy.MaxHandshakes)},
		check{c.Proxy.MaxHandshakesPerAddress < 1, "proxy.max_handshakes_per_address",
			fmt.Sprintf("is %d: must be at least 1", c.Proxy.MaxHandshakesPerAddress)},
		check{c.Proxy.MaxHandshakesPerAddress > c.Proxy.MaxHandshakes, "proxy.max_handshakes_per_address",
			fmt.Sprintf("is %d, more than proxy.max_handshakes (%d): one address could take every handshake slot", c.Proxy.MaxHandshakesPerAddress, c.Proxy.MaxHandshakes)},
		check{c.Proxy.FirstPacketTimeout <= 0, "proxy.first_packet_timeout", positiveDuration},
		check{c.Proxy.FirstPacketTimeout > c.Proxy.HandshakeTimeout, "proxy.first_packet_timeout",
			fmt.Sprintf("is %v, longer than proxy.handshake_timeout (%v): lower it", c.Proxy.FirstPacketTimeout, c.Proxy.HandshakeTimeout)},
	)

	// issuers and dev_issuer
	// portcullis' own issuer is always trusted: SSO, local accounts and
	// the cloud exchange need no entry under issuers; only a config with
	// no way at all to obtain a token is refused.
	add(check{len(c.Issuers) == 0 && !c.DevIssuer.Enabled && !c.issuesOwnTokens(), "issuers",
		"no token source is configured: add an IdP under sso.connections, an entry under issuers, local.enabled: true or exchange:, or set dev_issuer.enabled: true for local development"})
	names := map[string]int{} // issuer name -> index
	isses := map[string]string{}
	if c.DevIssuer.Enabled {
		isses[c.DevIssuer.Issuer] = "dev_issuer.issuer"
	}
	for i, is := range c.Issuers {
		key := "issuers[" + strconv.Itoa(i) + "]"
		first, dupName := names[is.Name]
		if !dupName && is.Name != "" {
			names[is.Name] = i
		}
		firstIss, dupIss := isses[is.Issuer]
		if !dupIss && is.Issuer != "" {
			isses[is.Issuer] = key + ".issuer"
		}
		bothJWKS := is.JWKSURL != "" && is.JWKSFile != ""
		noJWKS := is.JWKSURL == "" && is.JWKSFile == ""
		emptyAud := slices.Contains(is.Audiences, "")
		add(
			check{is.Name == "", key + ".name", "is empty: name the issuer; mappings refer to it by name"},
			check{dupName && is.Name != "", key + ".name",
				fmt.Sprintf("%q is also the name of issuers[%d]: names must be unique", is.Name, first)},
			check{is.Name == DevIssuerName, key + ".name",
				fmt.Sprintf("%q is reserved for dev_issuer: choose another name", DevIssuerName)},
			check{is.Issuer == "", key + ".issuer", "is empty: set the exact iss value of the issuer's tokens"},
			check{dupIss && is.Issuer != "", key + ".issuer",
				fmt.Sprintf("%q is also the issuer of %s: iss values must be unique", is.Issuer, firstIss)},
			check{len(is.Audiences) == 0, key + ".audiences", "is empty: list the aud values tokens for portcullis carry"},
			check{emptyAud, key + ".audiences", "has an empty entry: remove it"},
			check{bothJWKS, key + ".jwks_file", "is set along with jwks_url: set only one of them"},
			check{noJWKS, key + ".jwks_url", "is empty: set jwks_url (or jwks_file) so tokens can be verified"},
			check{is.UsernameClaim == "", key + ".username_claim", "is empty: name the claim that holds the user name, e.g. email"},
			check{is.MaxLifetime <= 0, key + ".max_lifetime", positiveDuration},
		)
		if is.JWKSURL != "" {
			if p := jwksURLProblem(is.JWKSURL); p != "" {
				add(check{true, key + ".jwks_url", p})
			}
		}
		if p := fileProblem(is.JWKSFile); p != "" {
			add(check{true, key + ".jwks_file", p})
		}
	}
	if d := c.DevIssuer; d.Enabled {
		add(
			check{d.Issuer == "", "dev_issuer.issuer", "is empty: set the iss value of dev tokens, e.g. portcullis-dev"},
			check{d.KeyFile == "", "dev_issuer.key_file", "is empty: set the path of the dev signing key"},
			check{d.Audience == "", "dev_issuer.audience", "is empty: set the aud value of dev tokens, e.g. portcullis"},
			check{d.TokenTTL <= 0, "dev_issuer.token_ttl", positiveDuration},
		)
	}

	// roles
	roleNames := c.roleNames()
	add(check{len(roleNames) == 0, "roles",
		`no role is defined: add one, e.g. roles: {analyst: {backend_user: ro_analyst, backend_password: "${env:ANALYST_PW}"}}`})
	for _, rn := range roleNames {
		r, key := c.Roles[rn], rolePath(rn)
		add(
			check{rn == "", key, "the role name is empty: name it; clients connect as identity/role"},
			check{strings.ContainsFunc(rn, func(r rune) bool { return r == '/' || unicode.IsSpace(r) }), key,
				fmt.Sprintf("the role name %q holds \"/\" or whitespace: rename it; clients connect as identity/role", rn)},
			check{rn == "administrator", key, "\"administrator\" is the console's role, not a database role: name the role otherwise"},
			check{r.BackendUser == "", key + ".backend_user", "is empty: set the MySQL account the proxy logs in as"},
			check{r.Plan != PlanStatic && r.Plan != PlanEphemeral && r.Plan != PlanPerUser, key + ".plan", fmt.Sprintf("%q is not a plan: use static, per_user or ephemeral", r.Plan)},
			check{r.Plan == PlanEphemeral && len(r.Grants) == 0 && r.BackendRole == "", key + ".grants",
				"an ephemeral role needs grants (e.g. [\"SELECT ON analytics.*\"]) or backend_role"},
			check{r.Plan == PlanPerUser && len(r.Grants) == 0 && r.BackendRole == "", key + ".grants",
				"a per_user role needs grants (e.g. [\"SELECT ON analytics.*\"]) or backend_role"},
			check{r.Plan == PlanPerUser && (r.PerUser.DropAfter < 0 || r.PerUser.PasswordRotation < time.Minute), key + ".per_user",
				"drop_after must be positive and password_rotation at least 1m"},
			check{r.Plan == PlanStatic && (len(r.Grants) > 0 || r.BackendRole != ""), key + ".plan",
				"grants and backend_role apply to plans ephemeral and per_user only"},
			check{r.Pool.MaxIdle < -1, key + ".pool.max_idle", "must be -1 (off), or the idle connections to keep"},
			check{r.Pool.MinIdle < 0 || (r.Pool.MaxIdle > 0 && r.Pool.MinIdle > r.Pool.MaxIdle), key + ".pool.min_idle", "must be between 0 and pool.max_idle"},
			check{r.Pool.MaxLifetime < 0 || r.Pool.IdleTimeout < 0, key + ".pool", "durations must be positive"},
		)
		for j, g := range r.Grants {
			add(check{g == "" || strings.ContainsAny(g, ";`") || strings.Contains(strings.ToUpper(g), " TO "), key + ".grants[" + strconv.Itoa(j) + "]",
				"must be one privilege clause such as \"SELECT ON analytics.*\" (no ';', backquotes or TO: portcullis adds the user)"})
		}
		add(check{strings.ContainsAny(r.BackendRole, "'`;\\ "), key + ".backend_role", "must be a plain role name"})
	}
	// Pooled connections belong to a backend account, not to a role: roles
	// that log in as one account share its pool, so they must agree on it
	// (else the pool off for one role would still serve it from the other's).
	firstRole := map[string]string{} // backend_user -> its first static role
	for _, rn := range roleNames {
		r := c.Roles[rn]
		if r.Plan != PlanStatic || r.BackendUser == "" {
			continue
		}
		first, seen := firstRole[r.BackendUser]
		if !seen {
			firstRole[r.BackendUser] = rn
			continue
		}
		add(check{r.Pool != c.Roles[first].Pool, rolePath(rn) + ".pool", fmt.Sprintf(
			"differs from %s.pool, which logs in as the same backend_user %s: pooled connections belong to the account, so give both roles the same pool settings, or this role an account of its own",
			rolePath(first), r.BackendUser)})
	}

	// mappings
	issuerNames := c.issuerNames()
	for i, m := range c.Mappings {
		key := "mappings[" + strconv.Itoa(i) + "]"
		_, known := names[m.Issuer]
		isDev := m.Issuer == DevIssuerName
		add(
			check{m.Issuer == "", key + ".issuer", "is empty: name one of " + listOrNone(issuerNames)},
			check{isDev && !c.DevIssuer.Enabled, key + ".issuer",
				fmt.Sprintf("%q is dev_issuer, which is not enabled: set dev_issuer.enabled: true, or name one of %s", DevIssuerName, listOrNone(issuerNames))},
			check{m.Issuer != "" && !isDev && !known, key + ".issuer",
				fmt.Sprintf("%q is not a configured issuer: name one of %s", m.Issuer, listOrNone(issuerNames))},
			check{len(m.Roles) == 0, key + ".roles", "is empty: list the roles this mapping grants"},
		)
		for j, g := range m.Groups {
			add(check{g == "", key + ".groups[" + strconv.Itoa(j) + "]", "is empty: remove it"})
		}
		for j, rn := range m.Roles {
			_, ok := c.Roles[rn]
			add(check{!ok, key + ".roles[" + strconv.Itoa(j) + "]",
				fmt.Sprintf("role %q is not defined: define it under roles, or use one of %s", rn, listOrNone(roleNames))})
		}
	}

	// default_role_order
	seen := map[string]int{}
	for i, rn := range c.DefaultRoleOrder {
		key := "default_role_order[" + strconv.Itoa(i) + "]"
		_, ok := c.Roles[rn]
		first, dup := seen[rn]
		if !dup {
			seen[rn] = i
		}
		add(
			check{!ok, key, fmt.Sprintf("role %q is not defined: define it under roles, or remove it", rn)},
			check{dup, key, fmt.Sprintf("role %q is already listed at default_role_order[%d]: remove one", rn, first)},
		)
	}

	// secrets: their form, and (for a loaded file) whether they resolved
	c.eachSecret(func(key string, sec *Secret) {
		ref := sec.refProblem()
		resolved := ""
		if c.load != nil && ref == "" {
			resolved = c.load.secretProblems[key]
		}
		add(check{ref != "", key, ref}, check{resolved != "", key, resolved})
	})

	probs = append(probs, c.issuerProblems(roleNames)...)
	probs = append(probs, c.ssoProblems()...)
	probs = append(probs, c.localProblems()...)
	probs = append(probs, c.queryAuditProblems()...)

	// audit, log
	levels, formats := []string{"debug", "info", "warn", "error"}, []string{"text", "json"}
	add(
		check{c.Audit.File == "", "audit.file", `is empty: set a path, or "-" for stdout`},
		check{!slices.Contains(levels, c.Log.Level), "log.level",
			fmt.Sprintf("%q is not a level: use one of %s", c.Log.Level, strings.Join(levels, ", "))},
		check{!slices.Contains(formats, c.Log.Format), "log.format",
			fmt.Sprintf("%q is not a format: use one of %s", c.Log.Format, strings.Join(formats, ", "))},
	)
	return probs
}

const positiveDuration = `must be a positive duration such as "10s"`

// roleNames lists the roles, sorted, so problems come in a stable order.
func (c *Config) roleNames() []string {
	names := make([]string, 0, len(c.Roles))
	for name := range c.Roles {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// issuerNames lists the names mappings may use.
func (c *Config) issuerNames() []string {
	var names []string
	for _, is := range c.Issuers {
		if is.Name != "" && is.Name != DevIssuerName {
			names = append(names, is.Name)
		}
	}
	if c.DevIssuer.Enabled {
		names = append(names, DevIssuerName)
	}
	return names
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "(none configured)"
	}
	return strings.Join(names, ", ")
}

// hostPortProblem is what is wrong with a host:port address, or "".
func hostPortProblem(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port: write it like 127.0.0.1:4000", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("%q has no valid port: use a number from 0 to 65535", addr)
	}
	return ""
}

// fileProblem is why path (if set) is not a readable regular file, or "".
func fileProblem(path string) string {
	if path == "" {
		return ""
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("file %s does not exist: fix the path or create the file", path)
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Sprintf("cannot stat %s: %v", path, err)
	case fi.IsDir():
		return fmt.Sprintf("%s is a directory: name a file", path)
	}
	return ""
}

// jwksURLProblem is what is wrong with a JWKS URL, or "": https://, or
// http:// on a loopback host for tests.
func jwksURLProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Sprintf("%q is not an absolute URL: write it like https://idp.example/.well-known/jwks.json", raw)
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		if netaddr.IsLoopback(u.Hostname()) {
			return ""
		}
	}
	return fmt.Sprintf("%q must use https:// (http:// only on a loopback host, for tests)", raw)
}

// issuerProblems checks store, issuer and exchange.
func (c *Config) issuerProblems(roleNames []string) []problem {
	var probs []problem
	add := func(checks ...check) {
		for _, ch := range checks {
			if ch.bad {
				probs = append(probs, problem{key: ch.key, msg: ch.msg})
			}
		}
	}
	engines := []string{StoreSQLite, StoreMySQL}
	add(
		check{!slices.Contains(engines, c.Store.Engine), "store.engine",
			fmt.Sprintf("%q is not an engine: use sqlite (one node) or mysql (shared by several nodes)", c.Store.Engine)},
		check{c.Store.Engine == StoreMySQL && c.Store.DSN.Ref == "", "store.dsn",
			`is empty: set it to "${env:NAME}" holding user:password@tcp(host:3306)/portcullis`},
	)
	u, err := url.Parse(c.Issuer.URL)
	add(
		check{err != nil || u.Scheme == "" || u.Host == "", "issuer.url",
			fmt.Sprintf("%q is not an absolute URL: use the address clients reach the portal at, e.g. https://portcullis.example.com", c.Issuer.URL)},
		check{c.Issuer.Alg != "ES256" && c.Issuer.Alg != "RS256", "issuer.alg",
			fmt.Sprintf("%q is not supported: use ES256 or RS256", c.Issuer.Alg)},
		check{c.Issuer.MaxTokenTTL <= 0 || c.Issuer.MaxTokenTTL > 24*time.Hour, "issuer.max_token_ttl",
			"must be between 1s and 24h: access tokens are short-lived"},
		check{c.Exchange.TokenTTL <= 0 || c.Exchange.TokenTTL > c.Issuer.MaxTokenTTL, "exchange.token_ttl",
			fmt.Sprintf("must be positive and at most issuer.max_token_ttl (%v)", c.Issuer.MaxTokenTTL)},
		check{c.Exchange.FailuresPerMinute < 0, "exchange.failures_per_minute", "is negative: use a positive number"},
	)
	if g := c.Exchange.GCP; g != nil {
		add(check{g.Audience == "", "exchange.gcp.audience", "is empty: set the audience workloads request identity tokens for"})
	}
	if az := c.Exchange.Azure; az != nil {
		add(check{len(az.Tenants) == 0, "exchange.azure.tenants", "is empty: list the Entra ID tenants to trust"})
		for i, t := range az.Tenants {
			key := "exchange.azure.tenants[" + strconv.Itoa(i) + "]"
			add(
				check{t.TenantID == "", key + ".tenant_id", "is empty: set the tenant (directory) id"},
				check{t.Audience == "", key + ".audience", "is empty: set the application ID URI tokens are requested for"},
			)
		}
	}
	known := map[string]bool{}
	for _, is := range c.Issuers {
		known[is.Name] = true
	}
	for i, n := range c.Exchange.JWTIssuers {
		add(check{!known[n], "exchange.jwt_issuers[" + strconv.Itoa(i) + "]",
			fmt.Sprintf("%q is not a configured issuer: name one of %s", n, listOrNone(c.issuerNames()))})
	}
	platforms := map[string]bool{"aws": c.Exchange.AWS != nil, "gcp": c.Exchange.GCP != nil, "azure": c.Exchange.Azure != nil, "jwt": len(c.Exchange.JWTIssuers) > 0}
	probs = append(probs, c.awsProblems()...)
	for i, r := range c.Exchange.Rules {
		key := "exchange.rules[" + strconv.Itoa(i) + "]"
		platform := r.rulePlatform()
		if platform == "" {
			platform = r.Platform
		}
		enabled, ok := platforms[platform]
		probs = append(probs, c.matchProblems(key, r)...)
		add(
			check{!ok && platform != "", key + ".platform", fmt.Sprintf("%q is not a platform: use aws, azure, gcp or jwt", platform)},
			check{ok && !enabled, key + ".platform", fmt.Sprintf("%s exchange is not configured: add the exchange.%s section", platform, exchangeSection(platform))},
			check{r.Username == "" || strings.Contains(r.Username, "/"), key + ".username",
				"must be set and free of \"/\": it is the MySQL user name the workload connects as"},
			check{r.TTL <= 0 || r.TTL > c.Issuer.MaxTokenTTL, key + ".ttl", fmt.Sprintf("must be positive and at most issuer.max_token_ttl (%v)", c.Issuer.MaxTokenTTL)},
		)
		for j, rn := range r.Roles {
			_, defined := c.Roles[rn]
			add(check{!defined, key + ".roles[" + strconv.Itoa(j) + "]",
				fmt.Sprintf("role %q is not defined: define it under roles, or use one of %s", rn, listOrNone(roleNames))})
		}
	}
	return probs
}

func exchangeSection(platform string) string {
	if platform == "jwt" {
		return "jwt_issuers"
	}
	return platform
}

// issuesOwnTokens reports whether something in the config hands out
// portcullis' own tokens (browser login, local accounts, cloud exchange),
// which the proxy always trusts.
func (c *Config) issuesOwnTokens() bool {
	x := c.Exchange
	return len(c.SSO.Connections) > 0 || c.Local.Enabled || x.AWS != nil || x.GCP != nil || x.Azure != nil
}

// Client-leg TLS key exchanges (tls.key_exchange).
const (
	TLSKeyExchangeHybrid    = "hybrid"
	TLSKeyExchangeClassical = "classical"
)
