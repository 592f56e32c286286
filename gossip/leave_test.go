package gossip

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// TestLeaveIsNotAFailure: a member that leaves gracefully stops counting in
// ExpectedPeers (so the others keep a majority), while one that fails keeps
// counting for FailedMemberRetention. memberlist alone cannot tell the two
// apart (see leavingMsg).
func TestLeaveIsNotAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(21)
		nodes := startFake(t, nw, 4, nil)

		if err := nodes[3].c.Close(); err != nil { // graceful: Leave, then Shutdown
			t.Fatal(err)
		}
		waitFake(t, 30*time.Second, "n03 gone", func() bool { return nodes[0].c.Health().AlivePeers == 2 })
		if h := nodes[0].c.Health(); h.ExpectedPeers != 2 {
			t.Errorf("after a graceful leave: ExpectedPeers = %d, want 2 (the leaver must not count)", h.ExpectedPeers)
		}

		nw.Isolate(fakeAddr(2)) // a failure, as far as the others can tell
		waitFake(t, 60*time.Second, "n02 declared dead", func() bool { return nodes[0].c.Health().AlivePeers == 1 })
		if h := nodes[0].c.Health(); h.ExpectedPeers != 2 {
			t.Errorf("after a failure: ExpectedPeers = %d, want 2 (the failed member still counts)", h.ExpectedPeers)
		}
		nodes[2].c.Close()
	})
}
