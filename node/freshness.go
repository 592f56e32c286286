package node

import (
	"github.com/nearcache/nearcache/gossip"
)

// trustVerdict decides whether a node may serve cached values now (G5). It is
// a pure function of the gossip layer's health, where FreshPeers counts the
// live peers heard within MaxStaleness less the trust lease (the verdict is
// served on for that long, see trust.go), so it can be tested without a
// cluster. What it does not see, whether every live peer has spoken to this
// node since it lost trust, checkTrust adds.
//
// A node trusts its cache when it is alone by design (never had peers), or
// when all of these hold:
//   - it has caught up: at least one state exchange with a peer since start
//     (or since it was last left alone by a failure: a survivor of graceful
//     leaves stays caught up, and trusted, see the ExpectedPeers case);
//   - no known gap in any peer's invalidation stream is left unrepaired;
//   - it has heard, within MaxStaleness, a strict majority of the members it
//     expects (itself included: alive peers plus those that failed without
//     leaving, for gossip's FailedMemberRetention).
//
// The majority rule is what makes a cut-off node stop trusting its cache
// while the rest of the cluster keeps trusting theirs: a node that crashed or
// is partitioned away costs the others nothing as long as they still hear
// each other. Its writes' invalidations cannot reach them meanwhile; writers
// that must know use AckAll, which fails naming the unreachable members.
func trustVerdict(h gossip.Health) (bool, string) {
	if brokenNoFreshness {
		return true, "solo" // the broken build: every verdict is good
	}
	if h.Solo {
		return true, "solo"
	}
	switch {
	case !h.Synced:
		return false, "not caught up with any peer yet"
	case h.PendingGaps > 0:
		return false, "unrepaired gaps in the invalidation stream"
	case h.ExpectedPeers == 0:
		// Every peer left gracefully (none failed within
		// FailedMemberRetention): they announced it and publish nothing
		// after it, so this node heard all they will write through the
		// cluster. A failed peer is different: it may be the other side of
		// a partition, still writing, and it keeps ExpectedPeers above zero.
		return true, "every peer left gracefully"
	case h.FreshPeers == 0:
		return false, "no peer heard within MaxStaleness"
	case (h.FreshPeers+1)*2 <= h.ExpectedPeers+1:
		return false, "heard no majority of the expected members within MaxStaleness"
	}
	return true, "fresh"
}
