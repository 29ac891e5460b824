package config

import (
	"os"
	"time"
)

// The defaults ApplyDefaults fills in; each is also noted on its field.
const (
	DefaultListenMySQL         = "127.0.0.1:4000"
	DefaultListenHTTP          = "127.0.0.1:8080"
	DefaultBackendAddress      = "127.0.0.1:3306"
	DefaultBackendTLS          = BackendTLSDisabled
	DefaultDialTimeout         = 5 * time.Second
	DefaultMaxConnections      = 1000
	DefaultHandshakeTimeout    = 10 * time.Second
	DefaultShutdownTimeout     = 30 * time.Second
	DefaultMaxTokenBytes       = 65536
	DefaultFailedAuthPerMinute = 30
	DefaultPoolMaxIdle         = 8
	DefaultPoolMaxLifetime     = 30 * time.Minute
	DefaultPoolIdleTimeout     = 5 * time.Minute
	DefaultFailedAuthPerUser   = 10
	DefaultUsernameClaim       = "email"
	DefaultMaxLifetime         = 24 * time.Hour
	DefaultJWKSMaxStale        = 24 * time.Hour
	DefaultDevIssuer           = "portcullis-dev"
	DefaultDevKeyFile          = "portcullis-dev-key.pem"
	DefaultDevAudience         = "portcullis"
	DefaultDevTokenTTL         = time.Hour
	DefaultAuditFile           = "audit.log"
	DefaultLogLevel            = "info"
	DefaultLogFormat           = "text"
	DefaultStoreEngine         = StoreSQLite
	DefaultStorePath           = "portcullis.db"
	DefaultIssuerAudience      = "portcullis"
	DefaultIssuerAlg           = "ES256"
	DefaultMaxTokenTTL         = time.Hour
	DefaultKEKFile             = "portcullis.kek"
	DefaultExchangeTTL         = 15 * time.Minute
	DefaultExchangeFailures    = 10
	DefaultAWSProofMaxAge      = 5 * time.Minute
	DefaultSTSEndpoint         = "https://sts.amazonaws.com"
	DefaultGoogleIssuer        = "https://accounts.google.com"
	DefaultGoogleJWKS          = "https://www.googleapis.com/oauth2/v3/certs"
)

// The defaults of the unauthenticated connection budget.
const (
	DefaultMaxHandshakes           = 512
	DefaultMaxHandshakesPerAddress = 64
	DefaultFirstPacketTimeout      = 3 * time.Second // or handshake_timeout, if shorter
)

// ApplyDefaults sets every zero-valued field that has a default. Load calls
// it; call it yourself for a Config built in code. It does not make paths
// absolute: Load does that against the config file's directory.
func (c *Config) ApplyDefaults() {
	setString(&c.Listen.MySQL, DefaultListenMySQL)
	setString(&c.Listen.HTTP, DefaultListenHTTP)
	setString(&c.Backend.Address, DefaultBackendAddress)
	setString(&c.Backend.TLS, DefaultBackendTLS)
	setDuration(&c.Backend.DialTimeout, DefaultDialTimeout)
	setInt(&c.Proxy.MaxConnections, DefaultMaxConnections)
	setDuration(&c.Proxy.HandshakeTimeout, DefaultHandshakeTimeout)
	setDuration(&c.Proxy.ShutdownTimeout, DefaultShutdownTimeout)
	setInt(&c.Proxy.MaxTokenBytes, DefaultMaxTokenBytes)
	setInt(&c.Proxy.FailedAuthPerMinute, DefaultFailedAuthPerMinute)
	setInt(&c.Proxy.FailedAuthPerUserPerMinute, DefaultFailedAuthPerUser)
	setInt(&c.Proxy.MaxHandshakes, DefaultMaxHandshakes)
	setInt(&c.Proxy.MaxHandshakesPerAddress, DefaultMaxHandshakesPerAddress)
	setDuration(&c.Proxy.FirstPacketTimeout, min(DefaultFirstPacketTimeout, c.Proxy.HandshakeTimeout))
	for i := range c.Issuers {
		setString(&c.Issuers[i].UsernameClaim, DefaultUsernameClaim)
		setDuration(&c.Issuers[i].MaxLifetime, DefaultMaxLifetime)
		setDuration(&c.Issuers[i].JWKSMaxStale, DefaultJWKSMaxStale)
	}
	setString(&c.DevIssuer.Issuer, DefaultDevIssuer)
	setString(&c.DevIssuer.KeyFile, DefaultDevKeyFile)
	setString(&c.DevIssuer.Audience, DefaultDevAudience)
	setDuration(&c.DevIssuer.TokenTTL, DefaultDevTokenTTL)
	setString(&c.Audit.File, DefaultAuditFile)
	setString(&c.Log.Level, DefaultLogLevel)
	setString(&c.Log.Format, DefaultLogFormat)
	for name, r := range c.Roles {
		setString(&r.Plan, PlanStatic)
		setInt(&r.Pool.MaxIdle, DefaultPoolMaxIdle)
		setDuration(&r.Pool.MaxLifetime, DefaultPoolMaxLifetime)
		setDuration(&r.Pool.IdleTimeout, DefaultPoolIdleTimeout)
		setDuration(&r.PerUser.DropAfter, 720*time.Hour)
		setDuration(&r.PerUser.PasswordRotation, 24*time.Hour)
		r.QueryAudit.setDefaults()
		c.Roles[name] = r
	}
	if c.Node == "" {
		c.Node, _ = os.Hostname()
	}
	setString(&c.Store.Engine, DefaultStoreEngine)
	if c.Store.Engine == StoreSQLite {
		setString(&c.Store.Path, DefaultStorePath)
	}
	setString(&c.Issuer.URL, "http://"+c.Listen.HTTP)
	setString(&c.Issuer.Audience, DefaultIssuerAudience)
	setString(&c.Issuer.Alg, DefaultIssuerAlg)
	setDuration(&c.Issuer.MaxTokenTTL, DefaultMaxTokenTTL)
	setDuration(&c.Exchange.TokenTTL, DefaultExchangeTTL)
	setInt(&c.Exchange.FailuresPerMinute, DefaultExchangeFailures)
	if a := c.Exchange.AWS; a != nil {
		setString(&a.STSEndpoint, DefaultSTSEndpoint)
		setString(&a.Audience, c.Issuer.URL)
		setDuration(&a.MaxAge, DefaultAWSProofMaxAge)
		if len(a.Regions) == 0 {
			a.Regions = []string{stsRegion(a.STSEndpoint)}
		}
	}
	if g := c.Exchange.GCP; g != nil {
		setString(&g.Issuer, DefaultGoogleIssuer)
		setString(&g.JWKSURL, DefaultGoogleJWKS)
	}
	if az := c.Exchange.Azure; az != nil {
		for i := range az.Tenants {
			t := &az.Tenants[i]
			setString(&t.Issuer, "https://sts.windows.net/"+t.TenantID+"/")
			setString(&t.JWKSURL, "https://login.microsoftonline.com/"+t.TenantID+"/discovery/v2.0/keys")
		}
	}
	for i := range c.Exchange.Rules {
		setDuration(&c.Exchange.Rules[i].TTL, c.Exchange.TokenTTL)
	}
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setDuration(p *time.Duration, def time.Duration) {
	if *p == 0 {
		*p = def
	}
}
