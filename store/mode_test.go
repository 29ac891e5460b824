package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullisdb/portcullis/store"
)

// TestSQLiteFileIsPrivate: the database holds hashed tokens and encrypted
// keys, so it is created readable by its owner only.
func TestSQLiteFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	st, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, f := range []string{path, path + "-wal"} {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(f), info.Mode().Perm())
		}
	}
}
