package store

import (
	"context"
	"database/sql"
	"fmt"
)

const tlsCertificateCols = "id, cert_pem, sealed_key, not_after, version, updated"

func scanTLSCertificate(row scanner) (TLSCertificate, error) {
	var (
		c                 TLSCertificate
		notAfter, updated int64
	)
	if err := row.Scan(&c.Name, &c.CertPEM, &c.SealedKey, &notAfter, &c.Version, &updated); err != nil {
		return TLSCertificate{}, err
	}
	c.NotAfter, c.Updated = fromMicros(notAfter), fromMicros(updated)
	return c, nil
}

// GetTLSCertificate implements Store.
func (s *DB) GetTLSCertificate(ctx context.Context, name string) (TLSCertificate, error) {
	op := fmt.Sprintf("get TLS certificate %q", name)
	c, err := scanTLSCertificate(s.db.QueryRowContext(ctx, "SELECT "+tlsCertificateCols+" FROM tls_certificates WHERE id = ?", name))
	if err != nil {
		return TLSCertificate{}, s.wrap(op, err)
	}
	return c, nil
}

// PutTLSCertificate implements Store.
func (s *DB) PutTLSCertificate(ctx context.Context, c TLSCertificate, expectedVersion int64) (TLSCertificate, error) {
	op := fmt.Sprintf("put TLS certificate %q", c.Name)
	if err := checkKey(op, "name", c.Name, maxKeyLen); err != nil {
		return TLSCertificate{}, err
	}
	if len(c.CertPEM) == 0 || len(c.SealedKey) == 0 {
		return TLSCertificate{}, fmt.Errorf("%s: %w: certificate and sealed key are required", op, ErrInvalid)
	}
	c.Updated, c.NotAfter = s.now(), normTime(c.NotAfter)
	if expectedVersion == 0 {
		c.Version = 1
		_, err := s.db.ExecContext(ctx, "INSERT INTO tls_certificates ("+tlsCertificateCols+") VALUES (?, ?, ?, ?, ?, ?)",
			c.Name, c.CertPEM, c.SealedKey, micros(c.NotAfter), c.Version, micros(c.Updated))
		if err != nil {
			return TLSCertificate{}, s.wrap(op, err)
		}
		return c, nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tls_certificates SET cert_pem = ?, sealed_key = ?, not_after = ?,
			version = version + 1, updated = ? WHERE id = ? AND version = ?`,
			c.CertPEM, c.SealedKey, micros(c.NotAfter), micros(c.Updated), c.Name, expectedVersion)
		if err != nil {
			return err
		}
		if err := versionCheck(ctx, tx, res, "tls_certificates", c.Name, expectedVersion); err != nil {
			return err
		}
		c, err = scanTLSCertificate(tx.QueryRowContext(ctx, "SELECT "+tlsCertificateCols+" FROM tls_certificates WHERE id = ?", c.Name))
		return err
	})
	if err != nil {
		return TLSCertificate{}, s.wrap(op, err)
	}
	return c, nil
}
