package config

import "time"

// The defaults ApplyDefaults fills in; each is also noted on its field.
const (
	DefaultListenMySQL      = "127.0.0.1:4000"
	DefaultListenHTTP       = "127.0.0.1:8080"
	DefaultBackendAddress   = "127.0.0.1:3306"
	DefaultBackendTLS       = BackendTLSDisabled
	DefaultDialTimeout      = 5 * time.Second
	DefaultMaxConnections   = 1000
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultShutdownTimeout  = 30 * time.Second
	DefaultMaxTokenBytes    = 65536
	DefaultUsernameClaim    = "email"
	DefaultMaxLifetime      = 24 * time.Hour
	DefaultDevIssuer        = "portcullis-dev"
	DefaultDevKeyFile       = "portcullis-dev-key.pem"
	DefaultDevAudience      = "portcullis"
	DefaultDevTokenTTL      = time.Hour
	DefaultAuditFile        = "audit.log"
	DefaultLogLevel         = "info"
	DefaultLogFormat        = "text"
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
	for i := range c.Issuers {
		setString(&c.Issuers[i].UsernameClaim, DefaultUsernameClaim)
		setDuration(&c.Issuers[i].MaxLifetime, DefaultMaxLifetime)
	}
	setString(&c.DevIssuer.Issuer, DefaultDevIssuer)
	setString(&c.DevIssuer.KeyFile, DefaultDevKeyFile)
	setString(&c.DevIssuer.Audience, DefaultDevAudience)
	setDuration(&c.DevIssuer.TokenTTL, DefaultDevTokenTTL)
	setString(&c.Audit.File, DefaultAuditFile)
	setString(&c.Log.Level, DefaultLogLevel)
	setString(&c.Log.Format, DefaultLogFormat)
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
