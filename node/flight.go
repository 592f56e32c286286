package node

import (
	"context"

	"github.com/nearcache/nearcache/node/internal/flight"
)

// flightKey names a load in flight. A reader's load may ask the key's owner
// (remote) when another node owns it; the owner answering a peer loads
// locally only, so two nodes that briefly disagree on the owner never wait
// on each other. The class keeps the two apart in one table: a local-only
// caller never joins a load that may be waiting on another node, and this
// node's readers share the owner's local load whenever they too take this
// node for the owner.
type flightKey struct {
	key    string
	remote bool
}

// sharedFill joins the key's load in flight or starts one, for this node's
// readers. The load runs in its own goroutine under a context detached from
// every caller's (each caller waits on its own ctx), so a cancelled first
// caller does not fail the others.
func (g *Group[V]) sharedFill(ctx context.Context, key string) (fillResult[V], error) {
	return g.joinFill(ctx, flightKey{key: key, remote: g.n.ownerOf(g.name, key) != ""})
}

// freshFill is sharedFill for a read through an untrusted cache: it loads
// from the source here, never from the owner's cache (which is only as fresh
// as the owner, and may be behind what this node already returned: reads
// would go back in time, G1), and shares only a load that begins after it
// was called (flight.Group.JoinFresh).
func (g *Group[V]) freshFill(ctx context.Context, key string) (fillResult[V], error) {
	fk := flightKey{key: key}
	c, started := g.flights.JoinFresh(fk, func() (flight.Work[fillResult[V]], bool) { return g.flightWork(ctx, fk) })
	if c == nil {
		return fillResult[V]{}, ErrClosed
	}
	if !started {
		g.ctr.inc(cCoalesced)
	}
	return c.Wait(ctx)
}

// ownerFill is sharedFill for the owner answering a peer: local only.
func (g *Group[V]) ownerFill(ctx context.Context, key string) (fillResult[V], error) {
	return g.joinFill(ctx, flightKey{key: key})
}

func (g *Group[V]) joinFill(ctx context.Context, fk flightKey) (fillResult[V], error) {
	// A finished flight lingers for readers only while the store applies its
	// result, and only while that is current. One whose result was not stored
	// (an untrusted node reads through) answers nobody who came after it.
	reuse := func(r fillResult[V]) bool { return g.reusable(fk.key, r) }
	c, started := g.flights.Join(fk, reuse, func() (flight.Work[fillResult[V]], bool) { return g.flightWork(ctx, fk) })
	if c == nil {
		return fillResult[V]{}, ErrClosed
	}
	if !started {
		g.ctr.inc(cCoalesced)
	}
	return c.Wait(ctx)
}

// startRefresh starts a background load of key unless one is in flight; it
// reports whether it started one. Nobody waits for it: it stores its result.
func (g *Group[V]) startRefresh(key string) bool {
	fk := flightKey{key: key, remote: g.n.ownerOf(g.name, key) != ""}
	return g.flights.Start(fk, func() (flight.Work[fillResult[V]], bool) { return g.flightWork(context.Background(), fk) })
}

// flightWork is one shared load: it counts as a flight of the node (Close
// drains them) and runs under LoadTimeout, cut short by Close. ristretto
// applies Sets asynchronously: until a stored result is visible, readers that
// miss would start load after load (under CPU pressure, dozens per expiry),
// so the finished flight lingers, answering them, until the store applied it.
func (g *Group[V]) flightWork(ctx context.Context, fk flightKey) (flight.Work[fillResult[V]], bool) {
	if !g.n.startFlight() {
		return flight.Work[fillResult[V]]{}, false
	}
	detached := context.WithoutCancel(ctx)
	return flight.Work[fillResult[V]]{
		Fn: func() fillResult[V] {
			lctx, cancel := context.WithTimeout(detached, g.n.cfg.LoadTimeout)
			defer cancel()
			stop := context.AfterFunc(g.n.closing, cancel) // Close cuts loads short
			defer stop()
			return g.fill(lctx, fk.key, fk.remote)
		},
		Linger: func(r fillResult[V]) {
			defer g.n.endFlight()
			if r.stored {
				g.cache.Wait()
			}
		},
	}, true
}

// privateFill loads key for one caller, under its ctx and LoadTimeout, from
// the source itself (authoritative and verified reads never ask a peer, nor
// share a load that started before them).
func (g *Group[V]) privateFill(ctx context.Context, key string) (fillResult[V], error) {
	if !g.n.startFlight() {
		return fillResult[V]{}, ErrClosed
	}
	defer g.n.endFlight()
	lctx, cancel := context.WithTimeout(ctx, g.n.cfg.LoadTimeout)
	defer cancel()
	stop := context.AfterFunc(g.n.closing, cancel)
	defer stop()
	return g.fill(lctx, key, false), nil
}
