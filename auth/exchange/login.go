package exchange

import (
	"crypto/rand"
	"encoding/hex"
)

// newLoginID names one exchange, as its token's "sid" claim: the audit
// line and the session registry show it, and `portcullis tokens revoke
// --identity` ends every token of the workload's user name.
func newLoginID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "x-" + hex.EncodeToString(b)
}
