// Package needs lets a test say it cannot run without a system package:
// outside CI the test is skipped with what to install; with CI=true (as
// .ci/run sets) it fails, so CI never passes by skipping.
package needs

import (
	"os"
	"testing"
)

// Missing reports that what (e.g. "redis-server") is not installed; install
// says how to get it (e.g. "make bench-deps"). It does not return.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI=true makes this test mandatory: install it with %s", what, install)
		return // Fatalf does not return on a real T; this is for fakes
	}
	t.Skipf("%s is not installed: install it with %s to run this test (CI=true makes it mandatory)", what, install)
}
