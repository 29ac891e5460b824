-- One-time workload proofs (signed AWS GetCallerIdentity requests) already
-- exchanged, by a hash of their signature, kept until the proof would
-- have expired, so that no node accepts one twice.
CREATE TABLE spent_proofs (
	proof_id TEXT    NOT NULL PRIMARY KEY,
	expires  INTEGER NOT NULL
) STRICT;
CREATE INDEX spent_proofs_expires ON spent_proofs (expires);
