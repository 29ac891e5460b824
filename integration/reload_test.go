package integration

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/auth/cloud"
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

// TestReloadExchangeRules: a reload swaps the token exchange's rules: from
// then on an identity gets the new rule's user name and roles, not the old
// rule's, and an invalid rule is refused with the running rules kept.
func TestReloadExchangeRules(t *testing.T) {
	c := startCloudHarness(t)
	cfgPath := filepath.Join(c.dir, "portcullis.yaml")
	original := readFile(t, cfgPath)
	const oldRule = "username: reports@svc, roles: [reader]}"
	if !strings.Contains(original, oldRule) {
		t.Fatalf("the harness config has no GCP rule %q to change", oldRule)
	}
	// exchangeGCP trades a fresh GCP identity token and returns the user
	// name granted and the portcullis token.
	exchangeGCP := func(t *testing.T) (string, string) {
		t.Helper()
		subject := c.gcp.Mint(t, gcpAud, nil)
		remember(subject)
		status, body := exchangeRaw(t, c.harness, cloud.TokenTypeGCP, subject)
		token, _ := body["access_token"].(string)
		if status != http.StatusOK || token == "" {
			t.Fatalf("exchange: %d %v", status, body["error_description"])
		}
		remember(token)
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
			t.Fatal(err)
		}
		user, _ := claims["username"].(string)
		return user, token
	}
	if user, _ := exchangeGCP(t); user != "reports@svc" {
		t.Fatalf("before reload: granted %q", user)
	}

	t.Run("an invalid rule is refused and the running rules stay", func(t *testing.T) {
		os.WriteFile(cfgPath, []byte(strings.Replace(original, oldRule, "username: analyst@svc, roles: [nope]}", 1)), 0o600)
		err := c.svc.ReloadFile(t.Context())
		if err == nil || !strings.Contains(err.Error(), "exchange.rules[1].roles[0]") {
			t.Fatalf("got %v, want the undefined role refused", err)
		}
		if user, _ := exchangeGCP(t); user != "reports@svc" {
			t.Fatalf("after a refused reload: granted %q, want the running rule's reports@svc", user)
		}
	})

	t.Run("the changed rule applies and the old one no longer does", func(t *testing.T) {
		os.WriteFile(cfgPath, []byte(strings.Replace(original, oldRule, "username: analyst@svc, roles: [writer]}", 1)), 0o600)
		if err := c.svc.ReloadFile(t.Context()); err != nil {
			t.Fatal(err)
		}
		user, token := exchangeGCP(t)
		if user != "analyst@svc" {
			t.Fatalf("after reload: granted %q, want the new rule's analyst@svc", user)
		}
		if got := queryString(t, c.open("analyst@svc", token), "SELECT CURRENT_USER()"); got != writerUser+"@%" {
			t.Fatalf("CURRENT_USER() = %q, want the new rule's role", got)
		}
		var me *mysql.MySQLError
		if err := c.open("reports@svc", token).Ping(); !errors.As(err, &me) || me.Number != 1045 {
			t.Fatalf("connecting as the old rule's user: %v, want 1045", err)
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
