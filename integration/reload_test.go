package integration

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/proxy"
)

// TestReload: a new config's mappings and certificate apply to new
// connections, live sessions continue, and an invalid file is refused
// with the old configuration kept.
func TestReload(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	cfgPath := filepath.Join(h.dir, "portcullis.yaml")
	original := readFile(t, cfgPath)
	token := h.mint("wes@example.com", nil, []string{"engineering"})

	live := h.open("wes@example.com", token)
	live.SetMaxOpenConns(1)
	if got := queryString(t, live, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
		t.Fatalf("before reload: %q", got)
	}

	t.Run("a reload keeps the self-signed certificate", func(t *testing.T) {
		before := h.svc.Fingerprint
		if err := h.svc.ReloadFile(t.Context()); err != nil {
			t.Fatal(err)
		}
		if h.svc.Fingerprint != before {
			t.Fatal("a reload replaced the self-signed certificate: pinned clients would break")
		}
	})
	t.Run("an invalid file is refused and the old config stays", func(t *testing.T) {
		os.WriteFile(cfgPath, []byte(original+"\nbogus_key: 1\n"), 0o600)
		err := h.svc.ReloadFile(t.Context())
		if err == nil || !strings.Contains(err.Error(), "bogus_key") {
			t.Fatalf("got %v", err)
		}
		db := h.open("wes@example.com", token)
		if got := queryString(t, db, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
			t.Fatalf("after a refused reload: %q", got)
		}
	})

	t.Run("new mappings and certificate apply to new connections", func(t *testing.T) {
		certFile, keyFile := writeCert(t, h.dir)
		changed := strings.Replace(original, "{issuer: dev, groups: [engineering], roles: [reader]}", "{issuer: dev, groups: [engineering], roles: [writer]}", 1)
		changed = strings.Replace(changed, "listen: {", "tls: {cert_file: "+certFile+", key_file: "+keyFile+"}\nlisten: {", 1)
		changed = strings.Replace(changed, "default_role_order: [reader, writer]", "default_role_order: [writer, reader]", 1)
		os.WriteFile(cfgPath, []byte(changed), 0o600)
		before := h.svc.Fingerprint
		if err := h.svc.ReloadFile(t.Context()); err != nil {
			t.Fatal(err)
		}
		if h.svc.Fingerprint == before {
			t.Fatal("the certificate did not change")
		}
		var seen string
		db := h.open("wes@example.com", token, func(c *mysql.Config) {
			c.TLS = &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
				seen = proxy.Fingerprint(cs.PeerCertificates[0].Raw)
				return nil
			}}
		})
		if got := queryString(t, db, "SELECT CURRENT_USER()"); got != writerUser+"@%" {
			t.Fatalf("after reload: %q, want the new mapping's role", got)
		}
		if seen != h.svc.Fingerprint {
			t.Fatalf("client saw certificate %s, want the reloaded %s", seen, h.svc.Fingerprint)
		}
	})

	t.Run("the live session continued", func(t *testing.T) {
		if got := queryString(t, live, "SELECT CURRENT_USER()"); got != readerUser+"@%" {
			t.Fatalf("live session after reload: %q", got)
		}
	})
}

// writeCert writes a self-signed certificate and key for the client leg.
func writeCert(t *testing.T, dir string) (string, string) {
	cfg, _, err := proxy.SelfSignedTLS("reload.test")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := writePEM(certFile, keyFile, cfg.Certificates[0]); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func writePEM(certFile, keyFile string, c tls.Certificate) error {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}
