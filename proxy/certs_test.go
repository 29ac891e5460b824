package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/store"
)

func testKeeper(t *testing.T, st CertStore, kek string, names ...string) (*CertKeeper, error) {
	t.Helper()
	seal, err := auth.NewKeySealer([]byte(kek))
	if err != nil {
		t.Fatal(err)
	}
	return NewCertKeeper(t.Context(), st, seal, names, nil)
}

// verify checks k's certificate the way a client does: against the CA and
// for host.
func verify(t *testing.T, k *CertKeeper, ca []byte, host string) error {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("CAPEM is not a PEM certificate")
	}
	cert, err := k.TLSConfig().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host})
	return err
}

// TestCertKeeper: the CA and server certificate are made once in the store
// and shared, cover every node's names, are renewed when due, and a node
// with another key-encryption key cannot use them.
func TestCertKeeper(t *testing.T) {
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "portcullis.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const kek = "certificate test key-encryption key"
	a, err := testKeeper(t, st, kek, "db.example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"db.example.com", "localhost", "127.0.0.1", "::1"} {
		if err := verify(t, a, a.CAPEM(), host); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
	}
	if verify(t, a, a.CAPEM(), "other.example.com") == nil {
		t.Fatal("the certificate verifies for a name it was not made for")
	}

	t.Run("a second node on the store serves the same certificate", func(t *testing.T) {
		b, err := testKeeper(t, st, kek, "db.example.com")
		if err != nil {
			t.Fatal(err)
		}
		if b.Fingerprint() != a.Fingerprint() || string(b.CAPEM()) != string(a.CAPEM()) {
			t.Fatal("two nodes of one store serve different certificates")
		}
	})

	t.Run("a node with another name: one certificate for both", func(t *testing.T) {
		c, err := testKeeper(t, st, kek, "db2.example.com")
		if err != nil {
			t.Fatal(err)
		}
		if string(c.CAPEM()) != string(a.CAPEM()) {
			t.Fatal("the CA changed")
		}
		for _, host := range []string{"db.example.com", "db2.example.com"} {
			if err := verify(t, c, a.CAPEM(), host); err != nil {
				t.Fatalf("%s: %v", host, err)
			}
		}
		if err := a.Refresh(t.Context()); err != nil { // the first node picks it up
			t.Fatal(err)
		}
		if a.Fingerprint() != c.Fingerprint() {
			t.Fatal("the first node still serves the old certificate after a refresh")
		}
	})

	t.Run("renewed when less than a third of its life is left", func(t *testing.T) {
		kc := a.cur.Load()
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "portcullis proxy"}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(renewBefore - time.Hour), DNSNames: []string{"localhost", "db.example.com", "db2.example.com"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
		certPEM, sealed, err := a.issue(tmpl, kc.ca, kc.caKey, key, certNameServer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.PutTLSCertificate(t.Context(), store.TLSCertificate{Name: certNameServer, CertPEM: certPEM, SealedKey: sealed, NotAfter: tmpl.NotAfter}, kc.version); err != nil {
			t.Fatal(err)
		}
		if err := a.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if left := time.Until(a.cur.Load().leaf.NotAfter); left < serverLifetime-2*time.Hour {
			t.Fatalf("not renewed: %v left", left)
		}
		if err := verify(t, a, a.CAPEM(), "db2.example.com"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("another key-encryption key cannot open the stored keys", func(t *testing.T) {
		_, err := testKeeper(t, st, "a different key-encryption key!!")
		if err == nil {
			t.Fatal("a node with another key-encryption key loaded the certificate")
		}
		t.Log(err)
	})
}
