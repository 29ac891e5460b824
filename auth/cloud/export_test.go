package cloud

import (
	"context"
	"testing"
)

// SetDetectSources points Detect at a fake DMI directory and GCE probe for
// the rest of the test, so that no test reads this machine's DMI data or
// sends a packet to 169.254.169.254.
func SetDetectSources(t testing.TB, dir string, gce func(context.Context) bool) {
	oldDir, oldGCE := dmiDir, onGCE
	dmiDir, onGCE = dir, gce
	t.Cleanup(func() { dmiDir, onGCE = oldDir, oldGCE })
}
