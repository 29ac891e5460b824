package proxy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/portcullisdb/portcullis/store"
)

// CertStore is the part of the store the certificate keeper needs.
type CertStore interface {
	GetTLSCertificate(ctx context.Context, name string) (store.TLSCertificate, error)
	PutTLSCertificate(ctx context.Context, c store.TLSCertificate, expectedVersion int64) (store.TLSCertificate, error)
}

// KeySealer seals the certificates' private keys in the store;
// *auth.KeySealer implements it.
type KeySealer interface {
	Seal(key crypto.Signer, name string) ([]byte, error)
	Open(sealed []byte, name string) (crypto.Signer, error)
}

// Lifetimes of the certificates the keeper makes. The server certificate
// is renewed when less than a third of its life is left; the CA, which
// clients keep in their trust files, is made once.
const (
	caLifetime     = 10 * 365 * 24 * time.Hour
	serverLifetime = 90 * 24 * time.Hour
	renewBefore    = serverLifetime / 3
)

// Names of the keeper's rows in the store.
const (
	certNameCA     = "ca"
	certNameServer = "server"
)

// CertKeeper serves the client leg a certificate that clients can verify
// when none is configured: a small CA and a server certificate it signs,
// made once and kept in the store (keys sealed), so every node sharing
// the store serves the same certificate, and renewed before it expires.
// Clients trust CAPEM (`portcullis cert`, the portal's /v1/ca.pem).
type CertKeeper struct {
	store CertStore
	seal  KeySealer
	names []string // what the server certificate must cover
	log   *slog.Logger
	cur   atomic.Pointer[keptCert]
}

// keptCert is what the keeper serves now; immutable, swapped on renewal.
type keptCert struct {
	cert    tls.Certificate
	leaf    *x509.Certificate
	version int64 // of the server row
	caPEM   []byte
	ca      *x509.Certificate
	caKey   crypto.Signer
}

// NewCertKeeper loads the CA and server certificate from the store,
// making whichever is missing, and a server certificate anew if the stored
// one expires soon or lacks one of names (DNS names or IP addresses; the
// loopback names are always in).
func NewCertKeeper(ctx context.Context, st CertStore, seal KeySealer, names []string, log *slog.Logger) (*CertKeeper, error) {
	if log == nil {
		log = slog.Default()
	}
	k := &CertKeeper{store: st, seal: seal, names: certNames(names), log: log}
	if err := k.Refresh(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// certNames is names with the loopback names, without duplicates or
// wildcard listen hosts.
func certNames(names []string) []string {
	out := []string{"localhost", "127.0.0.1", "::1"}
	for _, n := range names {
		if n == "" || n == "0.0.0.0" || n == "::" || slices.Contains(out, n) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// TLSConfig is the client-leg configuration; it serves whatever
// certificate the keeper holds at each handshake, so a renewal needs no
// reload.
func (k *CertKeeper) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &k.cur.Load().cert, nil
		},
	}
}

// CAPEM is the CA certificate clients verify the proxy with.
func (k *CertKeeper) CAPEM() []byte { return k.cur.Load().caPEM }

// Fingerprint is the SHA-256 of the server certificate served now.
func (k *CertKeeper) Fingerprint() string { return Fingerprint(k.cur.Load().cert.Certificate[0]) }

// Run re-reads the store every interval (another node may have renewed)
// and renews the server certificate when it is due, until ctx ends.
func (k *CertKeeper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Refresh(ctx); err != nil {
				k.log.Warn("refresh the client-leg certificate", "err", err)
			}
		}
	}
}

// Refresh loads the certificates from the store and makes or renews
// what is missing or due. Of several nodes doing so at once one wins and
// the others take its certificate.
func (k *CertKeeper) Refresh(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		kc, err := k.load(ctx)
		if err == nil || attempt == 3 || !(errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrVersionMismatch)) {
			if err != nil {
				return fmt.Errorf("client-leg certificate: %w", err)
			}
			if old := k.cur.Load(); old == nil || old.version != kc.version {
				k.log.Info("client-leg certificate", "tls_sha256", Fingerprint(kc.cert.Certificate[0]),
					"not_after", kc.leaf.NotAfter.UTC().Format(time.RFC3339), "names", append(kc.leaf.DNSNames, ipStrings(kc.leaf.IPAddresses)...))
			}
			k.cur.Store(kc)
			return nil
		}
		// Another node stored one between our read and write: read again.
	}
}

func (k *CertKeeper) load(ctx context.Context) (*keptCert, error) {
	ca, caKey, caPEM, err := k.loadCA(ctx)
	if err != nil {
		return nil, err
	}
	row, err := k.store.GetTLSCertificate(ctx, certNameServer)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var kc *keptCert
	if err == nil {
		if kc, err = k.open(row, ca); err != nil {
			return nil, err
		}
		if k.current(kc.leaf, ca) {
			kc.ca, kc.caKey, kc.caPEM = ca, caKey, caPEM
			return kc, nil
		}
	}
	// Missing, due for renewal or lacking a name: a new one covering this
	// node's names and those of the one it replaces (other nodes' names).
	names := k.names
	if kc != nil {
		names = certNames(append(slices.Clone(k.names), append(kc.leaf.DNSNames, ipStrings(kc.leaf.IPAddresses)...)...))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "portcullis proxy"},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(serverLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	certPEM, sealed, err := k.issue(tmpl, ca, caKey, key, certNameServer)
	if err != nil {
		return nil, err
	}
	next, err := k.store.PutTLSCertificate(ctx, store.TLSCertificate{Name: certNameServer, CertPEM: certPEM, SealedKey: sealed, NotAfter: tmpl.NotAfter}, row.Version)
	if err != nil {
		return nil, err
	}
	if kc, err = k.open(next, ca); err != nil {
		return nil, err
	}
	kc.ca, kc.caKey, kc.caPEM = ca, caKey, caPEM
	return kc, nil
}

// current reports whether leaf is signed by ca, covers every name of
// this node and is not due for renewal.
func (k *CertKeeper) current(leaf *x509.Certificate, ca *x509.Certificate) bool {
	if leaf.CheckSignatureFrom(ca) != nil || time.Until(leaf.NotAfter) < renewBefore {
		return false
	}
	for _, n := range k.names {
		if leaf.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

// loadCA returns the stored CA, making it if there is none.
func (k *CertKeeper) loadCA(ctx context.Context) (*x509.Certificate, crypto.Signer, []byte, error) {
	row, err := k.store.GetTLSCertificate(ctx, certNameCA)
	if errors.Is(err, store.ErrNotFound) {
		key, kerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if kerr != nil {
			return nil, nil, nil, kerr
		}
		tmpl := &x509.Certificate{
			Subject:               pkix.Name{CommonName: "portcullis CA"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(caLifetime),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
			MaxPathLenZero:        true,
		}
		certPEM, sealed, ierr := k.issue(tmpl, nil, nil, key, certNameCA)
		if ierr != nil {
			return nil, nil, nil, ierr
		}
		if row, err = k.store.PutTLSCertificate(ctx, store.TLSCertificate{Name: certNameCA, CertPEM: certPEM, SealedKey: sealed, NotAfter: tmpl.NotAfter}, 0); err != nil {
			return nil, nil, nil, err // ErrConflict: another node made one first; Refresh reads it
		}
	}
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := parseCertPEM(row.CertPEM)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("stored CA: %w", err)
	}
	key, err := k.seal.Open(row.SealedKey, "tls:"+certNameCA)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("stored CA key: %w", err)
	}
	return ca, key, row.CertPEM, nil
}

// issue signs tmpl with parent's key (itself when parent is nil) and
// returns the certificate's PEM and key sealed under name.
func (k *CertKeeper) issue(tmpl, parent *x509.Certificate, parentKey, key crypto.Signer, name string) (certPEM, sealed []byte, err error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s certificate: %w", name, err)
	}
	if sealed, err = k.seal.Seal(key, "tls:"+name); err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), sealed, nil
}

// open turns a stored server certificate into what the keeper serves.
func (k *CertKeeper) open(row store.TLSCertificate, ca *x509.Certificate) (*keptCert, error) {
	leaf, err := parseCertPEM(row.CertPEM)
	if err != nil {
		return nil, fmt.Errorf("stored server certificate: %w", err)
	}
	key, err := k.seal.Open(row.SealedKey, "tls:"+row.Name)
	if err != nil {
		return nil, fmt.Errorf("stored server certificate key: %w", err)
	}
	return &keptCert{
		cert: tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Raw}, PrivateKey: key, Leaf: leaf},
		leaf: leaf, version: row.Version,
	}, nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
