package node

import (
	"context"
	"fmt"
	"math"
	"time"
)

// The trust state machine (G5). The watchdog (watch) re-evaluates a few
// times per MaxStaleness; reads go by the lease it leaves (servable).
//
//   - A good verdict (trustVerdict) renews the lease: cached values may be
//     served for trustLease after it.
//   - A node that is not trusted earns trust only once every live peer has
//     spoken to it (a batch or a heartbeat) since it lost trust or started:
//     a peer sends those only to members it counts as alive, and one that
//     still takes this node for dead (it restarted, it was frozen) would
//     neither send it invalidations nor wait for its acknowledgement.
//     Earning trust purges every group: what was missed cannot linger.
//   - A lease that ran out before the watchdog renewed it means the process
//     stalled (SIGSTOP, a VM pause, starvation): what it heard on waking may
//     be old (socket buffers) and its peers may have taken it for dead. It
//     loses trust and earns it back only after a state exchange of its own
//     with every live peer (Resync) and after every one has spoken since.

// forever is trustUntil of a node with no cluster to miss.
const forever = math.MaxInt64

// resyncDue in earnSince: a state exchange with every live peer must finish
// before trust can be earned.
const resyncDue = -1

// servable reports whether cached values may be served now: the watchdog's
// last good verdict is younger than its lease. One monotonic clock read
// (about 20 ns) on a clustered node's hit; none when Standalone.
func (n *Node) servable() bool {
	ok, _ := n.servableNow()
	return ok
}

// servableNow is servable, and the clock reading it took: the groups'
// stores count from n.epoch too, so a hit passes it on (local.Cache.GetAt)
// instead of reading the clock again. -1 when it read none.
func (n *Node) servableNow() (bool, int64) {
	if brokenNoFreshness {
		return n.trusted.Load(), -1 // the broken build: no lease either
	}
	u := n.trustUntil.Load()
	if u == forever {
		return true, -1
	}
	now := int64(time.Since(n.epoch))
	return u > now, now
}

// watch re-evaluates trust (G5): every watchPeriod while trusted, faster
// while earning it (so a joining node is ready soon after its peers speak).
func (n *Node) watch() {
	defer n.watchWG.Done()
	t := time.NewTimer(n.watchPeriod())
	defer t.Stop()
	for {
		select {
		case <-n.closing.Done():
			return
		case <-t.C:
			if h := n.stallHook.Load(); h != nil {
				(*h)()
			}
			// The timer's own time may predate a stall; judge by the clock.
			n.checkTrust(time.Now())
			next := n.watchPeriod()
			if !n.trusted.Load() {
				next = max(next/10, time.Millisecond)
			}
			t.Reset(next)
		}
	}
}

func (n *Node) watchPeriod() time.Duration {
	return min(max(n.cfg.MaxStaleness/10, time.Millisecond), 250*time.Millisecond)
}

// trustLease is how long one good verdict lets cached values be served: half
// of MaxStaleness (the verdict then counts peers heard within the other
// half), five watchdog periods: a watchdog late by less (a busy CPU, a GC
// pause) neither interrupts hits nor counts as a stall.
func (n *Node) trustLease() time.Duration { return n.cfg.MaxStaleness / 2 }

// checkTrust sets the verdict and the lease from the cluster's health. A good
// verdict at now counts the peers heard since now - (MaxStaleness - lease):
// until now + lease, what it counted is younger than MaxStaleness.
func (n *Node) checkTrust(now time.Time) {
	lease := n.trustLease()
	at := int64(now.Sub(n.epoch))
	was := n.trusted.Load()
	if was && at > n.trustUntil.Load() && !brokenNoFreshness {
		n.distrust("stalled past the trust lease (frozen, paused or starved)", resyncDue)
		was = false
	}
	since := n.earnSince.Load()
	if since == resyncDue {
		n.startResync()
	}
	ok, why := trustVerdict(n.cluster.HealthSince(now.Add(-(n.cfg.MaxStaleness - lease))))
	if ok && !was {
		if since == resyncDue {
			ok, why = false, "exchanging state with every live peer after a stall"
		} else if k := n.cluster.SilentSince(n.epoch.Add(time.Duration(since))); k > 0 {
			ok, why = false, fmt.Sprintf("%d live peer(s) have not spoken to this node yet (they may still count it as dead)", k)
		}
	}
	switch {
	case ok && !was:
		n.eachGroup(func(g groupHandle) { g.purge() })
		n.trusted.Store(true)
		n.cfg.Logger.Info("cache trusted", "why", why)
	case !ok && was:
		n.distrust(why, at)
	}
	if ok {
		n.trustUntil.Store(at + int64(lease))
	}
}

// distrust withdraws trust; earnSince is when peers must have spoken since
// (ns since epoch), or resyncDue.
func (n *Node) distrust(why string, earnSince int64) {
	n.trusted.Store(false)
	n.trustUntil.Store(0)
	n.earnSince.Store(earnSince)
	n.degradedTransition.Add(1)
	n.cfg.Logger.Warn("cache not trusted: reads bypass it", "why", why)
}

// startResync runs one state exchange with every live peer in the
// background, unless one is running; when every peer answered, trust can be
// earned from then on. The watchdog retries on its next tick otherwise.
func (n *Node) startResync() {
	if !n.resyncing.CompareAndSwap(false, true) {
		return
	}
	n.watchWG.Add(1)
	go func() {
		defer n.watchWG.Done()
		defer n.resyncing.Store(false)
		ctx, cancel := context.WithTimeout(n.closing, n.cfg.MaxStaleness)
		defer cancel()
		answered, asked, err := n.cluster.Resync(ctx)
		if answered < asked {
			n.cfg.Logger.Debug("resync after a stall: not every peer answered", "answered", answered, "asked", asked, "err", err)
			return
		}
		n.earnSince.CompareAndSwap(resyncDue, int64(time.Since(n.epoch)))
		n.cfg.Logger.Info("resynced after a stall", "peers", asked)
	}()
}
