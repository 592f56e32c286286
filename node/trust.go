package node

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/nearcache/nearcache/node/internal/trust"
)

// Trust (G5) is a pure state machine (node/internal/trust, where its rules
// are written); this file is the thin watchdog that drives it: every
// watchPeriod it steps the machine with the clock and the cluster's health,
// carries out what the step asks (purge, resync, log, count) and publishes
// the lease that reads go by (servable).

// forever is trustUntil of a node with no cluster to miss.
const forever = math.MaxInt64

// watchdog owns the trust machine of a clustered node.
type watchdog struct {
	// mu guards m, resyncing and ready: the watchdog goroutine steps the
	// machine, a finishing resync reports back to it, WaitReady reads ready.
	mu        sync.Mutex
	m         *trust.Machine
	resyncing bool
	ready     chan struct{} // closed while trust is earned; replaced when it is lost
}

// readyChan returns the channel that is closed once trust is earned.
func (w *watchdog) readyChan() chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ready == nil {
		w.ready = make(chan struct{})
	}
	return w.ready
}

// WaitReady blocks until the node serves cached values (Trusted reports
// true), ctx ends, or the node closes, and returns nil, ctx's error or
// ErrClosed. Ready means: the node has caught up with its peers, every live
// peer lists this incarnation of it as alive (so their AckAll writes wait for
// it), no gap in their invalidation streams is left unrepaired, and it heard a
// majority of the members it expects within MaxStaleness. A Standalone node,
// or one alone by design, is ready at once. Tie a service's readiness probe
// to it (or to Trusted); a node that is not ready still answers reads, from
// the source.
func (n *Node) WaitReady(ctx context.Context) error {
	for {
		if n.closed.Load() {
			return ErrClosed
		}
		if n.servable() {
			return nil
		}
		ch := n.wd.readyChan()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.closing.Done():
			return ErrClosed
		case <-ch:
			if n.servable() {
				return nil
			}
			// Earned, but the lease lapsed before the watchdog's next step
			// (a stall): wait for that step, which replaces ch.
			t := time.NewTimer(n.watchPeriod())
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-n.closing.Done():
				t.Stop()
				return ErrClosed
			case <-t.C:
			}
		}
	}
}

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

// watch steps the trust machine until Close: every watchPeriod while
// trusted, faster while earning trust (so a joining node is ready soon after
// its peers speak). pause, when not nil, runs before each step: tests hold it
// to stand for a frozen process; production passes nil.
func (n *Node) watch(pause func()) {
	defer n.watchWG.Done()
	t := time.NewTimer(n.watchPeriod())
	defer t.Stop()
	for {
		select {
		case <-n.closing.Done():
			return
		case <-t.C:
			if pause != nil {
				pause()
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

// since is now as the machine counts time: monotonic ns since n.epoch.
func (n *Node) since(now time.Time) int64 { return int64(now.Sub(n.epoch)) }

// checkTrust steps the machine at now and carries out its actions. A good
// verdict at now counts the peers heard since now - (MaxStaleness - lease):
// until now + lease, what it counted is younger than MaxStaleness.
func (n *Node) checkTrust(now time.Time) {
	ok, why := trustVerdict(n.cluster.HealthSince(now.Add(-(n.cfg.MaxStaleness - n.trustLease()))))
	in := trust.Input{
		Now:    n.since(now),
		Health: trust.Verdict{OK: ok, Why: why},
		Silent: func(since int64) int { return n.cluster.SilentSince(n.epoch.Add(time.Duration(since))) },
	}
	w := &n.wd
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.m.Step(in)
	if a.Lost != "" {
		n.trusted.Store(false)
		n.trustUntil.Store(0)
		if w.ready != nil && isClosed(w.ready) {
			w.ready = make(chan struct{})
		}
		n.degradedTransition.Add(1)
		n.cfg.Logger.Warn("cache not trusted: reads bypass it", "why", a.Lost)
	}
	if a.Resync != 0 && !w.resyncing {
		w.resyncing = true
		n.startResync(a.Resync)
	}
	if a.Purge {
		n.eachGroup(func(g groupHandle) { g.purge() })
		n.trusted.Store(true)
		n.cfg.Logger.Info("cache trusted", "why", a.Earned)
	}
	if w.m.Trusted() {
		n.trustUntil.Store(w.m.Until())
		if w.ready == nil {
			w.ready = make(chan struct{})
		}
		if !isClosed(w.ready) {
			close(w.ready)
		}
	}
}

// startResync runs state exchange number gen with every live peer in the
// background; when every peer answered, the machine hears of it. If not,
// the machine asks again on a later step.
func (n *Node) startResync(gen uint64) {
	n.watchWG.Add(1)
	go func() {
		defer n.watchWG.Done()
		ctx, cancel := context.WithTimeout(n.closing, n.cfg.MaxStaleness)
		defer cancel()
		answered, asked, err := n.cluster.Resync(ctx)
		n.wd.mu.Lock()
		defer n.wd.mu.Unlock()
		n.wd.resyncing = false
		if answered < asked {
			n.cfg.Logger.Debug("resync after a stall: not every peer answered", "answered", answered, "asked", asked, "err", err)
			return
		}
		if n.wd.m.Resynced(gen, n.since(time.Now())) {
			n.cfg.Logger.Info("resynced after a stall", "peers", asked)
		}
	}()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
