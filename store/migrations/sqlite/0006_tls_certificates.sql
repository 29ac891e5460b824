-- The client-leg CA and server certificate portcullis makes when no
-- certificate is configured, shared by every node of the store. The
-- private keys are sealed under the key-encryption key, as signing keys.
CREATE TABLE tls_certificates (
	id         TEXT    NOT NULL PRIMARY KEY,
	cert_pem   BLOB    NOT NULL,
	sealed_key BLOB    NOT NULL,
	not_after  INTEGER NOT NULL,
	version    INTEGER NOT NULL,
	updated    INTEGER NOT NULL
) STRICT;
