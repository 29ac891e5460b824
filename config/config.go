package config

import "time"

// Config is the whole portcullis.yaml. Every field has a documented default
// applied by Load; zero values in the file mean "use the default".
type Config struct {
	Listen           Listen          `yaml:"listen"`
	TLS              TLS             `yaml:"tls"`
	Backend          Backend         `yaml:"backend"`
	Proxy            Proxy           `yaml:"proxy"`
	Issuers          []Issuer        `yaml:"issuers"`
	DevIssuer        DevIssuer       `yaml:"dev_issuer"`
	Roles            map[string]Role `yaml:"roles"`
	Mappings         []Mapping       `yaml:"mappings"`
	DefaultRoleOrder []string        `yaml:"default_role_order"`
	Audit            Audit           `yaml:"audit"`
	Log              Log             `yaml:"log"`
	Store            Store           `yaml:"store"`
	Issuer           OwnIssuer       `yaml:"issuer"`
	Exchange         Exchange        `yaml:"exchange"`
	Admin            Admin           `yaml:"admin"`
	SSO              SSO             `yaml:"sso"`
	Local            Local           `yaml:"local"`
	// Node names this process in the store's records (ephemeral users),
	// so its sweeper removes only its own leftovers. Default: the host name.
	Node string `yaml:"node"`

	// load is what Load/Parse learned on the way: the file name, the line
	// of each key and the secret-resolution problems. Nil for a Config
	// built in code.
	load *loadInfo
}

// DevIssuerName is the issuer name by which mappings refer to dev_issuer.
// No entry of issuers may use it.
const DevIssuerName = "dev"

// Listen holds the listener addresses.
type Listen struct {
	MySQL string `yaml:"mysql"` // default 127.0.0.1:4000
	HTTP  string `yaml:"http"`  // default 127.0.0.1:8080
	// PProf serves Go's profiler (/debug/pprof/) on this loopback
	// address; default none. Profiles hold no secrets, but they show the
	// process's internals, so it never listens beyond the machine.
	PProf string `yaml:"pprof"`
}

// TLS is the client-leg certificate. Both empty: a self-signed certificate
// is made at start and its SHA-256 fingerprint logged. Relative paths are
// relative to the config file's directory; Load stores them absolute.
type TLS struct {
	CertFile string `yaml:"cert_file"` // default none; set with key_file
	KeyFile  string `yaml:"key_file"`  // default none; set with cert_file
	// Names are the DNS names and IP addresses, besides listen.mysql's
	// host and the loopback names, that the certificate portcullis makes
	// when cert_file is unset must cover: the names clients connect to.
	Names []string `yaml:"names"`
	// KeyExchange is the client leg's TLS key exchange: "hybrid" (the
	// default: X25519MLKEM768, post-quantum, preferred when the client
	// offers it, then X25519, P-256) or "classical" (X25519, P-256, P-384
	// only: a cheaper handshake, no protection of recorded traffic from a
	// future quantum computer).
	KeyExchange string `yaml:"key_exchange"`
}

// Backend TLS modes.
const (
	BackendTLSDisabled   = "disabled"
	BackendTLSPreferred  = "preferred"
	BackendTLSRequired   = "required"
	BackendTLSVerifyFull = "verify-full"
)

// Backend is the MySQL-protocol server portcullis fronts.
type Backend struct {
	Address     string        `yaml:"address"`      // default 127.0.0.1:3306
	TLS         string        `yaml:"tls"`          // disabled (default) | preferred | required | verify-full
	CAFile      string        `yaml:"ca_file"`      // verify-full: the CA that signed the backend's certificate; relative to the config dir
	ServerName  string        `yaml:"server_name"`  // verify-full: name to check; default the address host
	DialTimeout time.Duration `yaml:"dial_timeout"` // default 5s
	// PublicKeyFile is the backend's RSA public key (PEM, MySQL's
	// public_key.pem) for caching_sha2_password and sha256_password
	// without TLS; relative to the config dir. Unset, the proxy asks the
	// backend for it.
	PublicKeyFile string `yaml:"public_key_file"`
}

// Proxy holds the MySQL listener's limits.
type Proxy struct {
	MaxConnections   int           `yaml:"max_connections"`   // default 1000
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"` // default 10s
	ShutdownTimeout  time.Duration `yaml:"shutdown_timeout"`  // default 30s: how long serve waits for sessions to drain
	MaxTokenBytes    int           `yaml:"max_token_bytes"`   // default 65536
	// MaxSessionsPerIdentity caps one identity's concurrent sessions
	// (default 0: no cap).
	MaxSessionsPerIdentity int `yaml:"max_sessions_per_identity"`
	// FailedAuthPerMinute is how many failed logins one source address,
	// and FailedAuthPerUserPerMinute one user name, may make per minute
	// before being told to wait (defaults 30 and 10).
	FailedAuthPerMinute        int `yaml:"failed_auth_per_minute"`
	FailedAuthPerUserPerMinute int `yaml:"failed_auth_per_user_per_minute"`
	// IdleTimeout ends a session with no bytes either way for this long
	// (default 0: never).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHandshakes caps the client connections that have not yet
	// authenticated (default 512), and MaxHandshakesPerAddress those from
	// one source address, IPv6 by /64 (default 64). They are apart from
	// max_connections, which counts authenticated sessions only, so a
	// flood of slow handshakes cannot take a session's place.
	MaxHandshakes           int `yaml:"max_handshakes"`
	MaxHandshakesPerAddress int `yaml:"max_handshakes_per_address"`
	// FirstPacketTimeout is how long a new connection may take to send its
	// first packet (default 3s); handshake_timeout bounds the whole
	// handshake.
	FirstPacketTimeout time.Duration `yaml:"first_packet_timeout"`
}

// Issuer is one trusted token issuer (an IdP or a customer-run issuer).
type Issuer struct {
	Name          string        `yaml:"name"`
	Issuer        string        `yaml:"issuer"` // the exact `iss` value
	Audiences     []string      `yaml:"audiences"`
	JWKSURL       string        `yaml:"jwks_url"`       // https:// (http:// only on a loopback host); exactly one of jwks_url, jwks_file
	JWKSFile      string        `yaml:"jwks_file"`      // a JWKS document on disk; relative to the config dir
	UsernameClaim string        `yaml:"username_claim"` // default email
	RolesClaim    string        `yaml:"roles_claim"`    // default none: the claim is not read
	GroupsClaim   string        `yaml:"groups_claim"`   // default none: the claim is not read
	MaxLifetime   time.Duration `yaml:"max_lifetime"`   // default 24h: longer-lived tokens are refused
	// JWKSMaxStale bounds how long keys fetched from jwks_url keep
	// verifying tokens while refreshes fail (default 24h): past it tokens
	// are refused with a clear reason rather than trusted forever.
	JWKSMaxStale time.Duration `yaml:"jwks_max_stale"`
	// Directory names the SCIM connection whose users this issuer's
	// tokens may name; default the SCIM connection of the same name. An
	// issuer never speaks for a local account or another source's user.
	Directory string `yaml:"directory"`
	// UserDomains, when set, bounds the user names its tokens may carry
	// for directory users to these domains (the part after "@").
	UserDomains []string `yaml:"user_domains"`
}

// DirectoryOrDefault is the SCIM connection i speaks for.
func (i Issuer) DirectoryOrDefault() string {
	if i.Directory != "" {
		return i.Directory
	}
	return i.Name
}

// DevIssuer is portcullis' own development issuer: `portcullis keys init`
// writes its key, `portcullis token mint` signs with it, and the proxy
// trusts it without further config. Off unless enabled.
type DevIssuer struct {
	Enabled  bool          `yaml:"enabled"`
	Issuer   string        `yaml:"issuer"`    // default "portcullis-dev"
	KeyFile  string        `yaml:"key_file"`  // default "portcullis-dev-key.pem" beside the config file; Load stores it absolute
	Audience string        `yaml:"audience"`  // default "portcullis"
	TokenTTL time.Duration `yaml:"token_ttl"` // default 1h
}

// Role is a backend credential plan: the account the proxy logs in as.
// Its name (the key under roles) is the part after "/" in the MySQL user
// name "identity/role", so it holds no "/" and no whitespace.
type Role struct {
	// Plan is how the proxy logs in for this role: "static" (default)
	// logs in as backend_user; "ephemeral" uses backend_user to create a
	// user per session, named after the identity, with grants or
	// backend_role, connects as it and drops it when the session ends.
	Plan            string `yaml:"plan"`
	BackendUser     string `yaml:"backend_user"`
	BackendPassword Secret `yaml:"backend_password"` // "${env:NAME}", "file:PATH" or "" (empty password)
	// Grants are what each ephemeral user gets, as in GRANT <grant> TO
	// user, e.g. "SELECT ON analytics.*".
	Grants []string `yaml:"grants"`
	// BackendRole is a role in the database granted to (and made the
	// default of) each ephemeral user, instead of or besides grants.
	BackendRole string `yaml:"backend_role"`
	// EndAtTokenExpiry ends a session when the token it was opened with
	// expires (default false: a session outlives its token, as a
	// database session outlives a password change).
	EndAtTokenExpiry bool `yaml:"end_at_token_expiry"`
	// AllowDynamicSQL lets PREPARE ... FROM @variable and EXECUTE
	// IMMEDIATE <expression> through (default false: refused). The proxy
	// refuses account and privilege statements (SET PASSWORD, GRANT, ...)
	// wherever it can read them; SQL built at run time it cannot read, so
	// turn this on only for a role whose backend account cannot change
	// accounts or privileges anyway.
	AllowDynamicSQL bool `yaml:"allow_dynamic_sql"`
	// PerUser tunes plan per_user.
	PerUser PerUser `yaml:"per_user"`
	// Pool keeps warm backend connections of a static role, so a new
	// session skips the backend's login; they are reset
	// (COM_RESET_CONNECTION) between sessions.
	Pool Pool `yaml:"pool"`
	// QueryAudit records each statement of the role's sessions in the
	// audit stream (default off).
	QueryAudit QueryAudit `yaml:"query_audit"`
}

// Pool sizes a role's warm backend connections.
type Pool struct {
	// MinIdle connections are kept open ahead of demand for each kind of
	// client (capabilities and collation), once the first such client has
	// connected; default 0 (connections are pooled as sessions end).
	MinIdle     int           `yaml:"min_idle"`
	MaxIdle     int           `yaml:"max_idle"`     // default 8; -1 turns pooling off for the role
	MaxLifetime time.Duration `yaml:"max_lifetime"` // default 30m
	IdleTimeout time.Duration `yaml:"idle_timeout"` // default 5m
}

// Credential plans.
const (
	PlanStatic    = "static"
	PlanEphemeral = "ephemeral"
	// PlanPerUser gives each person a persistent backend account of their
	// own (see PerUser).
	PlanPerUser = "per_user"
)

// PerUser tunes plan per_user: backend_user creates, for each person, a
// persistent account named from the identity, with grants or
// backend_role and a password only portcullis can derive; deprovisioning
// locks it and ends its connections, and it is dropped later.
type PerUser struct {
	// DropAfter is how long a locked account is kept (default 720h), so
	// a person restored soon keeps their objects and grants.
	DropAfter time.Duration `yaml:"drop_after"`
	// PasswordRotation is how often the account's password changes
	// (default 24h); every node derives the same one.
	PasswordRotation time.Duration `yaml:"password_rotation"`
}

// Mapping grants roles to identities of one issuer that carry one of the
// listed groups (or, with no groups, to every identity of the issuer).
type Mapping struct {
	Issuer string   `yaml:"issuer"` // an issuers[].name, or DevIssuerName ("dev")
	Groups []string `yaml:"groups"`
	Roles  []string `yaml:"roles"`
}

// Audit is the audit event stream: one JSON line per decision.
type Audit struct {
	File string `yaml:"file"` // default "audit.log" beside the config file; "-" for stdout; Load stores it absolute
}

// Log is the operational log (log/slog).
type Log struct {
	Level  string `yaml:"level"`  // debug | info (default) | warn | error
	Format string `yaml:"format"` // text (default) | json
}

// Store engines.
const (
	StoreSQLite = "sqlite"
	StoreMySQL  = "mysql"
)

// Store is where portcullis keeps users, groups, keys and tokens.
type Store struct {
	Engine string `yaml:"engine"` // sqlite (default: a file, one node) | mysql (shared by several nodes)
	Path   string `yaml:"path"`   // sqlite: default "portcullis.db" beside the config file
	DSN    Secret `yaml:"dsn"`    // mysql: user:password@tcp(host:3306)/portcullis, by reference
}

// OwnIssuer is portcullis' own token issuer: the tokens `portcullis
// token` and the exchange endpoint hand out. The proxy trusts it with no
// entry in issuers.
type OwnIssuer struct {
	URL      string `yaml:"url"`      // the `iss`; default "http://" + listen.http
	Audience string `yaml:"audience"` // default "portcullis"
	Alg      string `yaml:"alg"`      // ES256 (default) | RS256
	// KeyEncryptionKey encrypts the signing keys in the store. Empty: a
	// random one is generated into portcullis.kek beside the config file
	// (mode 0600) at first start; set it explicitly for several nodes.
	KeyEncryptionKey Secret        `yaml:"key_encryption_key"`
	MaxTokenTTL      time.Duration `yaml:"max_token_ttl"` // default 1h: no token lives longer
}

// Exchange configures POST /v1/token: cloud and JWT identities traded for
// portcullis tokens.
type Exchange struct {
	TokenTTL time.Duration `yaml:"token_ttl"` // default 15m, per rule overridable, capped by issuer.max_token_ttl
	// FailuresPerMinute is how many refused exchanges one source address
	// (an IPv6 client: its /64) may make per minute before it is told to
	// slow down (default 10).
	FailuresPerMinute int            `yaml:"failures_per_minute"`
	AWS               *ExchangeAWS   `yaml:"aws"`
	GCP               *ExchangeGCP   `yaml:"gcp"`
	Azure             *ExchangeAzure `yaml:"azure"`
	// JWTIssuers names entries of issuers whose tokens may be exchanged.
	JWTIssuers []string       `yaml:"jwt_issuers"`
	Rules      []ExchangeRule `yaml:"rules"`
}

// ExchangeAWS accepts signed sts:GetCallerIdentity requests.
type ExchangeAWS struct {
	STSEndpoint string `yaml:"sts_endpoint"` // default https://sts.amazonaws.com
	Audience    string `yaml:"audience"`     // the X-Portcullis-Audience value proofs must sign; default issuer.url (unique per deployment)
	// MaxAge is how old a proof's signing time may be (default 5m, at
	// most 15m). Each proof is also accepted once only.
	MaxAge time.Duration `yaml:"max_age"`
	// Regions the proofs may be signed for; default the region of
	// sts_endpoint (us-east-1 for the global endpoint).
	Regions []string `yaml:"regions"`
}

// ExchangeGCP accepts Google-signed identity tokens.
type ExchangeGCP struct {
	Audience string `yaml:"audience"` // required: the audience workloads request
	Issuer   string `yaml:"issuer"`   // default https://accounts.google.com
	JWKSURL  string `yaml:"jwks_url"` // default https://www.googleapis.com/oauth2/v3/certs
}

// ExchangeAzure accepts Entra ID access tokens from the listed tenants.
type ExchangeAzure struct {
	Tenants []AzureTenant `yaml:"tenants"`
}

// AzureTenant is one trusted Entra ID tenant.
type AzureTenant struct {
	TenantID string `yaml:"tenant_id"`
	Issuer   string `yaml:"issuer"`   // default https://sts.windows.net/<tenant_id>/
	JWKSURL  string `yaml:"jwks_url"` // default https://login.microsoftonline.com/<tenant_id>/discovery/v2.0/keys
	Audience string `yaml:"audience"`
}

// ExchangeRule maps a platform identity to the user name and roles of the
// token it gets. Rules are tried in order; the first match wins.
type ExchangeRule struct {
	Platform string `yaml:"platform"` // optional: aws | azure | gcp | jwt, and it must agree with the match block
	// Exactly one match block names the parts of the identity the rule
	// grants (see AWSMatch and the others); a * matches within one part.
	AWS      *AWSMatch     `yaml:"aws"`
	Azure    *AzureMatch   `yaml:"azure"`
	GCP      *GCPMatch     `yaml:"gcp"`
	JWT      *JWTMatch     `yaml:"jwt"`
	Username string        `yaml:"username"` // what the workload connects as (no "/")
	Roles    []string      `yaml:"roles"`
	TTL      time.Duration `yaml:"ttl"` // default exchange.token_ttl
}

// Admin guards the admin API (/v1/admin) that `portcullis users`,
// `sessions`, `teams` and `scim` call.
type Admin struct {
	// Token is the bearer token admins present, by reference. Empty: the
	// admin API is off.
	Token Secret `yaml:"token"`
}
