package rbac_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/rbac"
)

func TestUserName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	tests := []struct{ identity, prefix string }{
		{"alice@example.com", "alice_example_com_"},
		{"Bob.O'Brien+db@Example.COM", "bob_o_brien_db_example_co_"},
		{"arn:aws:iam::123456789012:role/etl", "arn_aws_iam_123456789012_"},
		{"'; DROP USER root; --", "drop_user_root_"},
		{"@@@", "pc_"},
		{"émile@example.com", "mile_example_com_"},
	}
	for _, tt := range tests {
		t.Run(tt.identity, func(t *testing.T) {
			a, b := rbac.UserName(tt.identity), rbac.UserName(tt.identity)
			if !valid.MatchString(a) || !strings.HasPrefix(a, tt.prefix) {
				t.Fatalf("UserName(%q) = %q, want [a-z0-9_]{1,32} starting %q", tt.identity, a, tt.prefix)
			}
			if a == b {
				t.Fatalf("two sessions got the same user %q", a)
			}
		})
	}
}
