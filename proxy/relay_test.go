package proxy

import "testing"

func TestKillPattern(t *testing.T) {
	tests := []struct {
		name, q string
		match   bool
		id      string
	}{
		{"plain", "KILL 1073741825", true, "1073741825"},
		{"query", "kill query 1073741825", true, "1073741825"},
		{"connection with semicolon", "  KILL CONNECTION 42 ;", true, "42"},
		{"mariadb hard", "KILL HARD QUERY 7", true, "7"},
		{"by user is not a thread id", "KILL USER bob", false, ""},
		{"select", "SELECT 1", false, ""},
		{"two statements", "KILL 5; DROP TABLE x", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := killPattern.FindStringSubmatch(tt.q)
			if (m != nil) != tt.match || (m != nil && m[3] != tt.id) {
				t.Fatalf("match %v (%q), want %v %q", m != nil, m, tt.match, tt.id)
			}
			if tt.match && !startsWithKill([]byte(tt.q)) {
				t.Fatal("startsWithKill missed it")
			}
		})
	}
}
