package rbac

import (
	"strings"
	"testing"
)

func TestGrantWarnings(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string // substrings, one per warning
	}{
		{"GRANT USAGE ON *.* TO `a`@`%` IDENTIFIED BY PASSWORD '*ABC'", nil},
		{"GRANT SELECT, INSERT ON `app`.* TO `a`@`%`", nil},
		{"GRANT PROCESS, CREATE USER ON *.* TO `a`@`%`", []string{"PROCESS on *.*", "CREATE USER on *.*"}},
		{"GRANT ALL PRIVILEGES ON *.* TO `a`@`10.0.0.%` WITH GRANT OPTION", []string{"GRANT OPTION", "ALL PRIVILEGES on *.*"}},
		{"GRANT SELECT ON `app`.* TO `a`@`%` WITH GRANT OPTION", []string{"GRANT OPTION"}},
		{"GRANT UPDATE ON `mysql`.`global_priv` TO `a`@`%`", []string{"UPDATE on the mysql schema"}},
		{"GRANT SUPER, CONNECTION ADMIN ON *.* TO `a`@`%`", []string{"SUPER on *.*", "CONNECTION ADMIN on *.*"}},
		{"GRANT `analyst_role` TO `a`@`%`", nil},
	} {
		got := grantWarnings(c.line)
		if len(got) != len(c.want) {
			t.Errorf("%s: %q, want %d warnings", c.line, got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: warning %q lacks %q", c.line, got[i], w)
			}
			if strings.Contains(got[i], "*ABC") {
				t.Errorf("a warning quotes the password hash: %q", got[i])
			}
		}
	}
}

func TestGlobalPrivileges(t *testing.T) {
	got := globalPrivileges("GRANT PROCESS, CONNECTION ADMIN, CREATE USER ON *.* TO `m`@`%`")
	if strings.Join(got, "|") != "PROCESS|CONNECTION ADMIN|CREATE USER" {
		t.Errorf("got %q", got)
	}
	if got := globalPrivileges("GRANT SELECT ON `app`.* TO `m`@`%`"); got != nil {
		t.Errorf("a database grant read as global: %q", got)
	}
}
