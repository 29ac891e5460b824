-- The client-leg CA and server certificate portcullis makes when no
-- certificate is configured, shared by every node of the store. The
-- private keys are sealed under the key-encryption key, as signing keys.
CREATE TABLE IF NOT EXISTS tls_certificates (
	id         VARBINARY(255) NOT NULL PRIMARY KEY,
	cert_pem   BLOB           NOT NULL,
	sealed_key BLOB           NOT NULL,
	not_after  BIGINT         NOT NULL,
	version    BIGINT         NOT NULL,
	updated    BIGINT         NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
