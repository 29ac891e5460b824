package config

import (
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Local configures local accounts (user name and password, with
// portcullis' own MFA) and the web console. Off unless enabled.
type Local struct {
	Enabled bool `yaml:"enabled"`
	// MFARequired makes every local account enrol and use TOTP at login.
	// Default true; false only for development.
	MFARequired *bool `yaml:"mfa_required"`
	// TrustedDeviceDays is how long "trust this device" skips the second
	// factor on one browser. Default 30; 0 keeps the default; at most 90.
	TrustedDeviceDays int `yaml:"trusted_device_days"`
	// FailuresPerMinute is the wrong-password (or code) budget per
	// account and per address in any minute, counted in the store (one
	// budget for every node); out of budget the account (or address) is
	// locked until its oldest failure is a minute old. Default 5.
	FailuresPerMinute int `yaml:"failures_per_minute"`
	// Email sends one-time login codes by email: the second factor of
	// accounts that have not set up an authenticator app.
	Email LocalEmail `yaml:"email"`
}

// LocalEmail configures the mailer of email login codes.
type LocalEmail struct {
	// Mailer is "" (default: no email codes), "dev" (append each mail to
	// file, for development and tests) or "smtp".
	Mailer string `yaml:"mailer"`
	// File is the dev mailer's output, relative to the config file.
	File string    `yaml:"file"`
	From string    `yaml:"from"` // the sender address (smtp)
	SMTP LocalSMTP `yaml:"smtp"`
	// CodeTTL is how long a code works; default 10m, at most 1h.
	CodeTTL time.Duration `yaml:"code_ttl"`
}

// LocalSMTP is the SMTP relay of email codes (STARTTLS when offered).
type LocalSMTP struct {
	Address  string `yaml:"address"`  // host:port, e.g. smtp.example.com:587
	Username string `yaml:"username"` // "" for no authentication
	Password Secret `yaml:"password"`
	// CAFile is the PEM CA that signed the relay's certificate, relative
	// to the config file; default "": the system's roots.
	CAFile string `yaml:"ca_file"`
}

// DefaultEmailCodeTTL is local.email.code_ttl's default.
const DefaultEmailCodeTTL = 10 * time.Minute

// CodeLifetime is code_ttl or its default.
func (e LocalEmail) CodeLifetime() time.Duration {
	if e.CodeTTL > 0 {
		return e.CodeTTL
	}
	return DefaultEmailCodeTTL
}

// Local defaults.
const (
	DefaultTrustedDeviceDays      = 30
	DefaultLocalFailuresPerMinute = 5
)

// MFA reports whether local accounts need a second factor.
func (l Local) MFA() bool { return l.MFARequired == nil || *l.MFARequired }

// TrustDays is trusted_device_days or its default.
func (l Local) TrustDays() int {
	if l.TrustedDeviceDays > 0 {
		return l.TrustedDeviceDays
	}
	return DefaultTrustedDeviceDays
}

// Failures is failures_per_minute or its default.
func (l Local) Failures() int {
	if l.FailuresPerMinute > 0 {
		return l.FailuresPerMinute
	}
	return DefaultLocalFailuresPerMinute
}

// SMTPRoots are the CAs local.email.smtp.ca_file names; nil (the
// system's roots) when it is empty.
func (c *Config) SMTPRoots() (*x509.CertPool, error) {
	f := c.Local.Email.SMTP.CAFile
	if f == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(c.SSOPath(f))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate: give the CA certificate that signed the relay's", f)
	}
	return pool, nil
}

// LocalConnection is the login connection name local accounts use
// (`portcullis login --connection local`); no sso connection may take it.
const LocalConnection = "local"

// localProblems checks the local section.
func (c *Config) localProblems() []problem {
	var probs []problem
	l := c.Local
	if l.TrustedDeviceDays < 0 || l.TrustedDeviceDays > 90 {
		probs = append(probs, problem{"local.trusted_device_days", "must be between 1 and 90 (default 30)"})
	}
	if l.FailuresPerMinute < 0 {
		probs = append(probs, problem{"local.failures_per_minute", "must be positive (default 5)"})
	}
	switch e := l.Email; e.Mailer {
	case "":
	case "dev":
		if e.File == "" {
			probs = append(probs, problem{"local.email.file", "is empty: the dev mailer appends each mail to this file"})
		}
	case "smtp":
		if hostPortProblem(e.SMTP.Address) != "" || e.SMTP.Address == "" {
			probs = append(probs, problem{"local.email.smtp.address", "must be host:port of the SMTP relay (e.g. smtp.example.com:587)"})
		}
		if e.From == "" {
			probs = append(probs, problem{"local.email.from", "is empty: set the sender address of login codes"})
		}
		if e.SMTP.CAFile != "" {
			if p := fileProblem(c.SSOPath(e.SMTP.CAFile)); p != "" {
				probs = append(probs, problem{"local.email.smtp.ca_file", p})
			} else if _, err := c.SMTPRoots(); err != nil {
				probs = append(probs, problem{"local.email.smtp.ca_file", err.Error()})
			}
		}
	default:
		probs = append(probs, problem{"local.email.mailer", strconv.Quote(e.Mailer) + " is not a mailer: use smtp, dev (a file, for development) or leave it empty"})
	}
	if l.Email.CodeTTL < 0 || l.Email.CodeTTL > time.Hour {
		probs = append(probs, problem{"local.email.code_ttl", "must be between 1s and 1h (default 10m)"})
	}
	if l.Enabled {
		for i, conn := range c.SSO.Connections {
			if conn.Name == LocalConnection {
				probs = append(probs, problem{ssoKey(i) + ".name", strconv.Quote(LocalConnection) + " is the name of local accounts' login while local.enabled is true: rename the connection"})
			}
		}
	}
	return probs
}
