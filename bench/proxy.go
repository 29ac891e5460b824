package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
)

// proxyProcess is a `portcullis serve` the bench started: the real binary,
// in its own process, as it is deployed.
type proxyProcess struct {
	cmd       *exec.Cmd
	mysqlAddr string
	httpAddr  string
	pprofAddr string
	logPath   string
}

// startProxy writes a config into dir (accepting up to maxConns
// clients) and runs the binary on it until /readyz answers. noTLS adds
// --insecure-no-tls.
func startProxy(ctx context.Context, binary, dir, password string, maxConns int, noTLS bool) (*proxyProcess, error) {
	mysqlAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	pprofAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, benchUser+".pw"), []byte(password+"\n"), 0o600); err != nil {
		return nil, err
	}
	tlsYAML := "tls: {cert_file: proxy-cert.pem, key_file: proxy-key.pem}"
	if keyExchange != "" {
		tlsYAML = fmt.Sprintf("tls: {cert_file: proxy-cert.pem, key_file: proxy-key.pem, key_exchange: %q}", keyExchange)
	}
	yaml := fmt.Sprintf(`
listen: {mysql: %q, http: %q, pprof: %q}
backend: {address: %q, tls: disabled}
%s
proxy: {max_connections: %d}
dev_issuer: {enabled: true, key_file: %q}
roles:
  %s: {backend_user: %s, backend_password: "file:%s.pw", pool: {min_idle: 2, max_idle: 16}}
  %s: {backend_user: %s, backend_password: "file:%s.pw", pool: {max_idle: -1}}
audit: {file: audit.log}
log: {level: warn}
`, mysqlAddr, httpAddr, pprofAddr, backendAddr, tlsYAML, maxConns, filepath.Join(filepath.Dir(dir), "dev.pem"),
		poolRole, benchUser, benchUser, noPoolRole, noPoolUser, benchUser)
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	args := []string{"serve", "--config", cfgPath}
	if noTLS {
		args = append(args, "--insecure-no-tls")
	}
	logPath := filepath.Join(dir, "portcullis.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w (run `make bench`, which builds it)", binary, err)
	}
	p := &proxyProcess{cmd: cmd, mysqlAddr: mysqlAddr, httpAddr: httpAddr, pprofAddr: pprofAddr, logPath: logPath}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := http.Get("http://" + httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("portcullis exited before it was ready (%v):\n%s", err, log)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("portcullis not ready after 20s:\n%s", log)
		}
	}
}

func (p *proxyProcess) pid() int { return p.cmd.Process.Pid }

// stop ends the process as systemd would (SIGTERM), then kills it.
func (p *proxyProcess) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
	}
}

// rssKiB is the process's resident memory.
func (p *proxyProcess) rssKiB() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc/<pid>/status")
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// mintToken makes a dev-issuer key in dir and a token for both roles.
func mintToken(dir string) (string, error) {
	keyPath := filepath.Join(dir, "dev.pem")
	if _, err := auth.InitDevKey(keyPath); err != nil {
		return "", err
	}
	dev, err := auth.LoadDevIssuer(config.DevIssuer{Enabled: true, KeyFile: keyPath, Issuer: config.DefaultDevIssuer, Audience: config.DefaultDevAudience, TokenTTL: time.Hour})
	if err != nil {
		return "", err
	}
	return dev.Mint(auth.MintRequest{Email: benchEmail, Roles: []string{poolRole, noPoolRole}, TTL: time.Hour})
}

// writeCerts writes a CA, the proxy's certificate (for 127.0.0.1) and a
// client certificate into each of dirs, under the names the proxy config
// and sysbench (which loads client-key.pem, client-cert.pem and
// cacert.pem from its working directory when --mysql-ssl=on) expect.
func writeCerts(dirs ...string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portcullis bench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
	}
	proxyCert, proxyKey, err := leaf(2, "portcullis bench proxy", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	clientCert, clientKey, err := leaf(3, "portcullis bench client", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"cacert.pem":     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"proxy-cert.pem": proxyCert, "proxy-key.pem": proxyKey,
		"client-cert.pem": clientCert, "client-key.pem": clientKey,
	}
	for _, dir := range dirs {
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}
