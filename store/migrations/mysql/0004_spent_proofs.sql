-- One-time workload proofs (signed AWS GetCallerIdentity requests) already
-- exchanged, by a hash of their signature, kept until the proof would
-- have expired, so that no node accepts one twice.
CREATE TABLE IF NOT EXISTS spent_proofs (
	proof_id VARBINARY(128) NOT NULL PRIMARY KEY,
	expires  BIGINT         NOT NULL,
	KEY spent_proofs_expires (expires)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
