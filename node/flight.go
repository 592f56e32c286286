package node

import (
	"context"
	"fmt"
	"time"

	"github.com/nearcache/nearcache/local"
)

// flight is one load in progress, shared by every reader of its key on this node.
type flight[V any] struct {
	done   chan struct{} // closed when res is set
	res    fillResult[V]
	remote bool // it may ask the key's owner (a local-only caller must not join it)
}

// sharedFill joins the key's load in flight or starts one. The load runs in
// its own goroutine under a context detached from every caller's (each caller
// waits on its own ctx), so a cancelled first caller does not fail the others.
func (g *Group[V]) sharedFill(ctx context.Context, key string) (fillResult[V], error) {
	return g.sharedFillMode(ctx, key, false)
}

// sharedFillMode is sharedFill; localOnly (the owner answering a peer) never
// asks another node, so two nodes that briefly disagree on the owner cannot
// wait on each other. A local-only caller joins a flight only if it is local
// too; otherwise it runs its own in ownerFlights.
func (g *Group[V]) sharedFillMode(ctx context.Context, key string, localOnly bool) (fillResult[V], error) {
	g.mu.Lock()
	f, ok := g.flights[key]
	table := g.flights
	if ok && localOnly && f.remote {
		f, ok = g.ownerFlights[key]
		table = g.ownerFlights
	}
	if ok && f.finished() && (!f.res.stored || !g.reusable(key, f.res)) {
		// A finished flight lingers for readers only while the store applies
		// its result, and only while that is current. One whose result was
		// not stored (an untrusted node reads through) is left to its
		// goroutine's delete: a reader that came after it loads anew.
		ok = false
	}
	if ok {
		g.mu.Unlock()
		g.ctr.coalesced.Add(1)
	} else {
		if !g.n.startFlight() {
			g.mu.Unlock()
			return fillResult[V]{}, ErrClosed
		}
		remote := !localOnly && g.n.ownerOf(g.name, key) != ""
		if localOnly && !remote {
			table = g.flights // a local flight: this node's own readers may join it
			if other, busy := g.flights[key]; busy && !other.finished() {
				table = g.ownerFlights
			}
		}
		f = &flight[V]{done: make(chan struct{}), remote: remote}
		table[key] = f
		g.mu.Unlock()
		go g.run(ctx, key, f, table)
	}
	select {
	case <-f.done:
		return f.res, nil
	case <-ctx.Done():
		return fillResult[V]{}, ctx.Err()
	}
}

// startRefresh starts a background load of key unless one is in flight; it
// reports whether it started one. Nobody waits for it: it stores its result.
func (g *Group[V]) startRefresh(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, busy := g.flights[key]; busy && !f.finished() || !g.n.startFlight() {
		return false
	}
	f := &flight[V]{done: make(chan struct{}), remote: g.n.ownerOf(g.name, key) != ""}
	g.flights[key] = f
	go g.run(context.Background(), key, f, g.flights)
	return true
}

func (g *Group[V]) run(ctx context.Context, key string, f *flight[V], table map[string]*flight[V]) {
	defer g.n.endFlight()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.n.cfg.LoadTimeout)
	stop := context.AfterFunc(g.n.closing, cancel) // Close cuts loads short
	res := g.fill(lctx, key, f.remote)
	stop()
	cancel()
	f.res = res
	close(f.done)
	// ristretto applies Sets asynchronously: until this result is visible
	// in the store, readers that miss would start load after load (under
	// CPU pressure, dozens per expiry). The finished flight stays in the
	// table, answering them, until the store has applied its Set.
	if res.stored {
		g.cache.Wait()
	}
	g.mu.Lock()
	if table[key] == f {
		delete(table, key)
	}
	g.mu.Unlock()
}

// finished reports whether f's result is set.
func (f *flight[V]) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// reusable reports whether a finished flight's result may serve a reader
// arriving now: a value still current (not invalidated since).
func (g *Group[V]) reusable(key string, r fillResult[V]) bool {
	return r.err == nil && g.current(key, r)
}

// privateFill loads key for one caller, under its ctx and LoadTimeout, from
// the source itself (authoritative and verified reads never ask a peer).
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

// fill gets key's value, from its owner when remote is set and another node
// owns it, else from the loader, and caches it when it is safe to: the fences
// (floor, tag versions, purge epoch) are captured BEFORE the value is asked
// for, so an invalidation that lands meanwhile wins (G8).
func (g *Group[V]) fill(ctx context.Context, key string, remote bool) fillResult[V] {
	floor := g.cache.Floor(key)
	var tags []local.TagVersion
	if g.cfg.Tags != nil {
		for _, t := range g.cfg.Tags(key) {
			tags = append(tags, local.TagVersion{Tag: t, Version: g.cache.TagVersion(t)})
		}
	}
	epoch := g.purgeEpoch.Load()

	var (
		v       V
		version uint64
		took    time.Duration
		err     error
		done    bool
	)
	if remote && g.cfg.Tags == nil && g.n.peerCl != nil {
		if addr := g.n.ownerOf(g.name, key); addr != "" {
			start := time.Now()
			v, version, done, err = g.askOwner(ctx, addr, key, floor)
			took = time.Since(start)
			switch {
			case done:
				g.fills.owner.Add(1)
			case err == nil:
				g.fills.fallback.Add(1)
			}
			if err != nil {
				if IsNotFound(err) {
					return g.notFound(key, max(version, floor), tags, epoch, err)
				}
				return fillResult[V]{err: &LoadError{Group: g.name, Key: key, Err: err}}
			}
		}
	}
	if !done {
		var stamp uint64
		if g.cfg.Versioning == ClockVersions {
			stamp = max(g.n.clock.now()-uint64(g.n.cfg.MaxClockSkew), floor)
		}
		if err := g.n.acquireLoad(ctx); err != nil {
			return fillResult[V]{err: &LoadError{Group: g.name, Key: key, Err: err}}
		}
		start := time.Now()
		v, version, err = g.cfg.Loader.Load(ctx, key)
		took = time.Since(start)
		g.n.releaseLoad()
		g.ctr.loads.Add(1)
		g.fills.local.Add(1)
		g.n.cfg.Observer.ObserveLoad(g.name, took, err)
		if err != nil {
			if IsNotFound(err) {
				return g.notFound(key, max(stamp, floor), tags, epoch, err)
			}
			g.ctr.loadErrors.Add(1)
			return fillResult[V]{err: &LoadError{Group: g.name, Key: key, Err: err}}
		}
		switch {
		case g.cfg.Versioning == ClockVersions:
			version = stamp
		case version == 0:
			g.ctr.loadErrors.Add(1)
			return fillResult[V]{err: &LoadError{Group: g.name, Key: key,
				Err: fmt.Errorf("loader returned version 0 in a SourceVersions group (use ClockVersions when the source has no versions)")}}
		}
	}
	r := fillResult[V]{val: v, version: version, tags: tags}

	// Store only what is safe: not after a purge that began after the fill,
	// not a fill slower than LoadTimeout (its fences may be forgotten), not
	// while the node does not trust its cache.
	if brokenNoStaleFill || took <= g.n.cfg.LoadTimeout && g.purgeEpoch.Load() == epoch && g.n.servable() {
		e := local.Entry[V]{Value: v, Version: version, LoadTime: took}
		if g.cache.Set(key, e, g.cost(key, v), g.cfg.TTL, tags) == local.Stored {
			g.ctr.setsStored.Add(1)
			r.stored = true
		} else {
			g.ctr.setsRejected.Add(1)
		}
	}
	return r
}

// notFound is a fill's "the source has no such key": version is the floor
// (or clock stamp) captured before asking, so a reader checks it like a value
// (a key created and invalidated meanwhile makes it stale), and with
// NegativeTTL it is cached as an absent entry under the same fences.
func (g *Group[V]) notFound(key string, version uint64, tags []local.TagVersion, epoch uint64, err error) fillResult[V] {
	if g.cfg.NegativeTTL > 0 && g.purgeEpoch.Load() == epoch && g.n.servable() {
		e := local.Entry[V]{Version: version, Absent: true}
		if g.cache.Set(key, e, int64(len(key)+64), g.cfg.NegativeTTL, tags) == local.Stored {
			g.ctr.setsStored.Add(1)
		} else {
			g.ctr.setsRejected.Add(1)
		}
	}
	return fillResult[V]{version: version, tags: tags, err: &LoadError{Group: g.name, Key: key, Err: err}}
}
