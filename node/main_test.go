package node

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

// No goroutine may outlive the tests: every Node is closed and Close waits
// for everything it started. memberlist's own probe is the exception: its
// Shutdown does not wait for a probe in flight, which ends by itself within
// a probe interval (longer than goleak's retries when one test runs alone).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}

var clusterSeq atomic.Int64

// testCluster returns a cluster name (Config.Cluster) that no other cluster
// of this process or of another test process uses. Test packages run at
// once, and a port one closes is soon handed to another: without distinct
// names a cluster still gossiping to a dead member's address would adopt
// the stranger now bound there (TestStartWithUnreachableSeed once found
// itself trusted by a foreign cluster's gossip that way).
func testCluster() string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), clusterSeq.Add(1))
}
