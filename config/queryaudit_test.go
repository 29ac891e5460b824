package config_test

import (
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/config"
)

func TestQueryAuditConfig(t *testing.T) {
	cfg, _ := loadExample(t)
	for name, r := range cfg.Roles {
		if r.QueryAudit.Mode != config.QueryAuditOff || r.QueryAudit.MaxStatementBytes != config.DefaultMaxStatementBytes || r.QueryAudit.On() {
			t.Errorf("roles.%s.query_audit defaults: %+v", name, r.QueryAudit)
		}
	}
	tests := []struct {
		q    config.QueryAudit
		want string
	}{
		{config.QueryAudit{Mode: "redacted", MaxStatementBytes: 4096}, ""},
		{config.QueryAudit{Mode: "full", MaxStatementBytes: 64}, ""},
		{config.QueryAudit{Mode: "verbose", MaxStatementBytes: 4096}, `query_audit.mode: "verbose" is not a mode: use off, full`},
		{config.QueryAudit{Mode: "full", MaxStatementBytes: 10}, "query_audit.max_statement_bytes: 10 is out of range: use 64 to 1048576"},
		{config.QueryAudit{Mode: "full", MaxStatementBytes: 2 << 20}, "query_audit.max_statement_bytes: 2097152 is out of range"},
	}
	for _, tt := range tests {
		cfg, _ := loadExample(t)
		r := cfg.Roles["dba"]
		r.QueryAudit = tt.q
		cfg.Roles["dba"] = r
		err := cfg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.q, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), "roles.dba."+tt.want)):
			t.Errorf("%+v: error %v, want %q", tt.q, err, tt.want)
		}
	}
}
