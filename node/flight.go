package node

import (
	"context"
	"fmt"
	"time"

	"github.com/nearcache/nearcache/local"
)

// flight is one load in progress, shared by every reader of its key on this node.
type flight[V any] struct {
	done chan struct{} // closed when res is set
	res  fillResult[V]
}

// sharedFill joins the key's load in flight or starts one. The load runs in
// its own goroutine under a context detached from every caller's (each caller
// waits on its own ctx), so a cancelled first caller does not fail the others.
func (g *Group[V]) sharedFill(ctx context.Context, key string) (fillResult[V], error) {
	g.mu.Lock()
	f, ok := g.flights[key]
	if ok {
		g.mu.Unlock()
		g.ctr.coalesced.Add(1)
	} else {
		if !g.n.startFlight() {
			g.mu.Unlock()
			return fillResult[V]{}, ErrClosed
		}
		f = &flight[V]{done: make(chan struct{})}
		g.flights[key] = f
		g.mu.Unlock()
		go g.run(ctx, key, f)
	}
	select {
	case <-f.done:
		return f.res, nil
	case <-ctx.Done():
		return fillResult[V]{}, ctx.Err()
	}
}

func (g *Group[V]) run(ctx context.Context, key string, f *flight[V]) {
	defer g.n.endFlight()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.n.cfg.LoadTimeout)
	stop := context.AfterFunc(g.n.closing, cancel) // Close cuts loads short
	res := g.fill(lctx, key)
	stop()
	cancel()
	g.mu.Lock()
	delete(g.flights, key)
	g.mu.Unlock()
	f.res = res
	close(f.done)
}

// privateFill loads key for one caller, under its ctx and LoadTimeout.
func (g *Group[V]) privateFill(ctx context.Context, key string) (fillResult[V], error) {
	if !g.n.startFlight() {
		return fillResult[V]{}, ErrClosed
	}
	defer g.n.endFlight()
	lctx, cancel := context.WithTimeout(ctx, g.n.cfg.LoadTimeout)
	defer cancel()
	stop := context.AfterFunc(g.n.closing, cancel)
	defer stop()
	return g.fill(lctx, key), nil
}

// fill calls the loader once and caches the result when it is safe to: the
// fences (floor, tag versions, purge epoch) are captured BEFORE the load, so
// an invalidation that lands while the load runs wins (G8).
func (g *Group[V]) fill(ctx context.Context, key string) fillResult[V] {
	floor := g.cache.Floor(key)
	var tags []local.TagVersion
	if g.cfg.Tags != nil {
		for _, t := range g.cfg.Tags(key) {
			tags = append(tags, local.TagVersion{Tag: t, Version: g.cache.TagVersion(t)})
		}
	}
	epoch := g.purgeEpoch.Load()
	var stamp uint64
	if g.cfg.Versioning == ClockVersions {
		stamp = max(g.n.clock.now()-uint64(g.n.cfg.MaxClockSkew), floor)
	}

	if err := g.n.acquireLoad(ctx); err != nil {
		return fillResult[V]{err: &LoadError{Group: g.name, Key: key, Err: err}}
	}
	start := time.Now()
	v, version, err := g.cfg.Loader.Load(ctx, key)
	took := time.Since(start)
	g.n.releaseLoad()
	g.ctr.loads.Add(1)
	g.n.cfg.Observer.ObserveLoad(g.name, took, err)
	if err != nil {
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
	r := fillResult[V]{val: v, version: version, tags: tags}

	// Store only what is safe: not after a purge that began after the load,
	// not a fill slower than LoadTimeout (its fences may be forgotten), not
	// while the node does not trust its cache.
	if took <= g.n.cfg.LoadTimeout && g.purgeEpoch.Load() == epoch && g.n.trusted.Load() {
		e := local.Entry[V]{Value: v, Version: version, LoadTime: took}
		if g.cache.Set(key, e, g.cost(key, v), g.cfg.TTL, tags) == local.Stored {
			g.ctr.setsStored.Add(1)
		} else {
			g.ctr.setsRejected.Add(1)
		}
	}
	return r
}
