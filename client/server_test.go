package client

import (
	"path/filepath"
	"testing"
)

func TestResolveServer(t *testing.T) {
	tests := []struct {
		name, flag, env, remembered string
		want, wantSource            string
	}{
		{"nothing: the default", "", "", "", DefaultServer, FromDefault},
		{"the last login", "", "", "https://last.test", "https://last.test", FromLogin},
		{"the environment over the last login", "", "https://env.test", "https://last.test", "https://env.test", FromEnv},
		{"the flag over everything", "https://flag.test", "https://env.test", "https://last.test", "https://flag.test", FromFlag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvServer, tt.env)
			c := &Cache{Path: filepath.Join(t.TempDir(), "portcullis", "tokens.json")}
			if tt.remembered != "" {
				if err := c.RememberServer(tt.remembered + "/"); err != nil {
					t.Fatal(err)
				}
			}
			if got, src := c.ResolveServer(tt.flag); got != tt.want || src != tt.wantSource {
				t.Fatalf("ResolveServer = %q (%s), want %q (%s)", got, src, tt.want, tt.wantSource)
			}
		})
	}
	t.Run("no cache: nothing remembered", func(t *testing.T) {
		t.Setenv(EnvServer, "")
		if got, _ := (*Cache)(nil).ResolveServer(""); got != DefaultServer {
			t.Fatalf("got %q", got)
		}
	})
}
