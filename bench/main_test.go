package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// memberlist's Shutdown does not wait for a probe in flight: probeNode still
// waits out its ack timeout and TCP fallback (at most a probe interval) after
// Shutdown returns, longer than goleak's retries last. That goroutine ends on
// its own, so it is not a leak of ours; anything else still fails the run.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}
