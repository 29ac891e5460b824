package store

import (
	"context"
	"time"
)

// maxProofIDLen bounds a spent proof's id (a hex digest and a prefix).
const maxProofIDLen = 128

// SpendProof implements Store.
func (s *DB) SpendProof(ctx context.Context, id string, expires time.Time) error {
	const op = "record a spent proof"
	if err := checkKey(op, "id", id, maxProofIDLen); err != nil {
		return err
	}
	now := s.now()
	// Expired records go first, in their own statement: a proof past its
	// expiry is refused before it is spent, so its record is no longer
	// needed, and keeping the delete out of the insert keeps the insert
	// the one atomic test-and-set two nodes race on.
	if _, err := s.db.ExecContext(ctx, "DELETE FROM spent_proofs WHERE expires < ?", micros(now)); err != nil {
		return s.wrap(op, err)
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO spent_proofs (proof_id, expires) VALUES (?, ?)", id, micros(expires))
	return s.wrap(op, err)
}
