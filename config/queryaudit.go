package config

import "fmt"

// QueryAudit is a role's query audit: one audit line per statement its
// sessions send, with the person's identity.
type QueryAudit struct {
	// Mode is "off" (default), "full" (the statement text as sent) or
	// "redacted" (literals replaced by ?, as MySQL's statement digests).
	Mode string `yaml:"mode"`
	// MaxStatementBytes caps the text in a line (default 4096); a longer
	// text is cut and the line says so.
	MaxStatementBytes int `yaml:"max_statement_bytes"`
}

// Query audit modes.
const (
	QueryAuditOff      = "off"
	QueryAuditFull     = "full"
	QueryAuditRedacted = "redacted"
)

// DefaultMaxStatementBytes is query_audit.max_statement_bytes' default;
// MaxMaxStatementBytes its largest allowed value.
const (
	DefaultMaxStatementBytes = 4096
	MaxMaxStatementBytes     = 1 << 20
)

// On reports whether statements are recorded.
func (q QueryAudit) On() bool { return q.Mode == QueryAuditFull || q.Mode == QueryAuditRedacted }

func (q *QueryAudit) setDefaults() {
	setString(&q.Mode, QueryAuditOff)
	setInt(&q.MaxStatementBytes, DefaultMaxStatementBytes)
}

// queryAuditProblems checks each role's query_audit.
func (c *Config) queryAuditProblems() []problem {
	var probs []problem
	for _, name := range c.roleNames() {
		q := c.Roles[name].QueryAudit
		key := "roles." + name + ".query_audit"
		switch q.Mode {
		case "", QueryAuditOff, QueryAuditFull, QueryAuditRedacted:
		default:
			probs = append(probs, problem{key + ".mode", fmt.Sprintf("%q is not a mode: use off, full (the statement as sent) or redacted (literals replaced by ?)", q.Mode)})
		}
		if q.MaxStatementBytes < 0 || q.MaxStatementBytes > MaxMaxStatementBytes || (q.MaxStatementBytes > 0 && q.MaxStatementBytes < 64) {
			probs = append(probs, problem{key + ".max_statement_bytes", fmt.Sprintf("%d is out of range: use 64 to %d (bytes of statement text kept in each line; default %d)", q.MaxStatementBytes, MaxMaxStatementBytes, DefaultMaxStatementBytes)})
		}
	}
	return probs
}
