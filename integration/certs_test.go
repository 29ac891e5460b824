package integration

import (
	"io"
	"net/http"
	"path/filepath"
	"testing"
)

// TestSharedCertificate: with no certificate configured, two nodes on one
// shared MariaDB store serve the same certificate, signed by the CA that
// `portcullis cert` prints and the portal gives out at /v1/ca.pem, and
// clients verify it (chain and host name) on both nodes.
func TestSharedCertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs MariaDB (skipped with -short)")
	}
	dbName := "pcit_certs_" + randomHex(4)
	if _, err := root.Exec("CREATE DATABASE " + dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec("DROP DATABASE IF EXISTS " + dbName) })
	dsn := "root@tcp(" + backendAddr + ")/" + dbName
	a := startHarness(t, harnessOpts{storeDSN: dsn})
	b := startHarness(t, harnessOpts{storeDSN: dsn})
	if a.svc.Fingerprint != b.svc.Fingerprint {
		t.Fatalf("two nodes of one store serve different certificates: %s and %s", a.svc.Fingerprint, b.svc.Fingerprint)
	}

	resp, err := http.Get(a.http + "/v1/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	portalCA, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(portalCA) != string(a.svc.Certs.CAPEM()) {
		t.Fatalf("GET /v1/ca.pem: %d %q", resp.StatusCode, portalCA)
	}
	out, errOut, code := run(t, "cert", "-c", filepath.Join(b.dir, "portcullis.yaml"))
	if code != 0 || out != string(portalCA) {
		t.Fatalf("portcullis cert: exit %d, %q\n%s", code, out, errOut)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caFile, portalCA)

	for _, h := range []*harness{a, b} {
		d := dial{addr: h.addr, user: "cora@example.com", password: h.mint("cora@example.com", []string{"reader"}, nil),
			query: "SELECT CURRENT_USER()", tls: "verify", ca: caFile}
		for _, c := range []realClient{mariadbClient, goDriver(false)} {
			if got, err := c.run(t, d); err != nil || got != readerUser+"@%" {
				t.Fatalf("%s to %s with the CA verified: %v %q", c.name, h.addr, err, got)
			}
		}
		// The loopback names are in the certificate too.
		local := d
		local.addr = "localhost" + h.addr[len("127.0.0.1"):]
		if _, err := mariadbClient.run(t, local); err != nil {
			t.Fatalf("mariadb to %s: %v", local.addr, err)
		}
		// And the client does verify: another CA is refused.
		other, _ := throwawayClientCert(t)
		d.ca = filepath.Join(t.TempDir(), "other-ca.pem")
		writeFile(t, d.ca, other)
		if got, err := mariadbClient.run(t, d); err == nil {
			t.Fatalf("mariadb verified the proxy against an unrelated CA: %q", got)
		}
	}
}
