package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/config"
)

func TestSMTPCAFile(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	tests := []struct {
		name, file, want string // want "" loads
	}{
		{"a PEM CA", caPEM, ""},
		{"no PEM in the file", "not a certificate", "local.email.smtp.ca_file: relay-ca.pem holds no PEM certificate"},
		{"no file", "-", "local.email.smtp.ca_file: file " + "%DIR%" + "/relay-ca.pem does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"portcullis.yaml": ssoBase + `local:
  enabled: true
  email: {mailer: smtp, from: portcullis@example.com, smtp: {address: "smtp.example.com:587", ca_file: relay-ca.pem}}
`}
			if tt.file != "-" {
				files["relay-ca.pem"] = tt.file
			}
			dir := writeFiles(t, files)
			cfg, err := config.Load(filepath.Join(dir, "portcullis.yaml"))
			if tt.want != "" {
				if want := strings.ReplaceAll(tt.want, "%DIR%", dir); err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Load = %v, want a problem with %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if roots, err := cfg.SMTPRoots(); err != nil || roots == nil {
				t.Fatalf("SMTPRoots = %v, %v", roots, err)
			}
		})
	}
}
