package node

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/nearcache/nearcache/local"
)

// fillResult is one fill's outcome, shared by every waiter of its flight.
type fillResult[V any] struct {
	val     V
	version uint64
	fence   fence // captured before the value was asked for
	err     error
	stored  bool   // handed to the store (visible once the store applies it)
	from    Source // FromOwner or FromLoad
}

// fill gets key's value and caches it when it is safe to. Its fence is
// captured BEFORE the value is asked for, so an invalidation that lands
// meanwhile wins (G8). With remote set and another node owning the key, it
// asks the owner (fillFromOwner); otherwise, or when the owner cannot answer,
// it calls the loader (fillFromLoader).
func (g *Group[V]) fill(ctx context.Context, key string, remote bool) fillResult[V] {
	f := g.capture(key)
	if remote && g.ownerFills() {
		if addr := g.n.ownerOf(g.name, key); addr != "" {
			if r, ok := g.fillFromOwner(ctx, addr, key, f); ok {
				return r
			}
		}
	}
	return g.fillFromLoader(ctx, key, f)
}

// ownerFills reports whether this group's misses may ask the key's owner.
// Groups with Tags do not: tag versions are local counters, so a requester
// could not tell whether the owner's value predates a tag bump it applied.
func (g *Group[V]) ownerFills() bool { return g.cfg.Tags == nil && g.n.peerCl != nil }

// fillFromOwner asks the owner at addr; ok=false means "load here instead"
// (the owner could not answer: counted as a fallback).
func (g *Group[V]) fillFromOwner(ctx context.Context, addr, key string, f fence) (fillResult[V], bool) {
	start := time.Now()
	v, version, done, err := g.askOwner(ctx, addr, key, f.exact)
	took := time.Since(start)
	switch {
	case err != nil && IsNotFound(err):
		g.ctr.inc(cFillsOwner)
		return g.notFound(key, max(version, f.floor), f, took, err), true
	case errors.Is(err, errOwnerBelowFloor):
		g.ctr.inc(cFillsOwner)
		// Final: the owner's source is below our floor too. Back off here
		// as well, so the next reads fail fast without asking.
		g.stale.note(key, f.exact, version, time.Now())
		return fillResult[V]{version: version, fence: f, err: &StaleError{Group: g.name, Key: key, Version: version, Floor: f.exact}}, true
	case err != nil: // our own caller's budget ended
		return fillResult[V]{fence: f, err: &LoadError{Group: g.name, Key: key, Err: err}}, true
	case !done:
		g.ctr.inc(cFillsFallback)
		return fillResult[V]{}, false
	case version > MaxVersion:
		g.ctr.inc(cOwnerError) // no sane owner sends this: load here
		g.ctr.inc(cFillsFallback)
		return fillResult[V]{}, false
	}
	g.ctr.inc(cFillsOwner)
	r := g.keep(key, f, v, version, took)
	r.from = FromOwner
	return r, true
}

// fillFromLoader calls the group's loader under a load slot.
func (g *Group[V]) fillFromLoader(ctx context.Context, key string, f fence) fillResult[V] {
	var stamp uint64
	if g.cfg.Versioning == ClockVersions {
		stamp = max(g.n.clock.now()-uint64(g.n.cfg.MaxClockSkew), f.floor)
	}
	v, version, ttl, took, err := g.callLoaderTTL(ctx, key)
	if err != nil {
		if IsNotFound(err) {
			return g.notFound(key, max(stamp, f.floor), f, took, err)
		}
		return fillResult[V]{fence: f, err: &LoadError{Group: g.name, Key: key, Err: err}}
	}
	switch {
	case g.cfg.Versioning == ClockVersions:
		version = stamp
	case version == 0:
		g.ctr.inc(cLoadErrors)
		return fillResult[V]{fence: f, err: &LoadError{Group: g.name, Key: key,
			Err: fmt.Errorf("loader returned version 0 in a SourceVersions group (use ClockVersions when the source has no versions)")}}
	case version > MaxVersion:
		g.ctr.inc(cLoadErrors)
		return fillResult[V]{fence: f, err: &LoadError{Group: g.name, Key: key,
			Err: fmt.Errorf("loader returned version %d, above MaxVersion (2^63-1)", version)}}
	case version < f.exact && g.cfg.Versioning == SourceVersions:
		// Noted before the flight ends, so readers and fill requests that
		// arrive as it ends back off instead of loading again (poison.go).
		// The exact floor only: a coarse bucket floor is other keys' and
		// only stops caching.
		g.stale.note(key, f.exact, version, time.Now())
	default:
		g.stale.clear(key) // the source reached the floor: no more back-off
	}
	r := g.keepTTL(key, f, v, version, took, ttl)
	r.from = FromLoad
	return r
}

// TTLLoader is an optional interface of a [Loader]: a value with its own
// time to live. ttl 0 means the group's TTL; a positive ttl replaces it for
// this value (jittered, and refreshed early, as the group's is). On a node
// that got the value from the key's owner the group's TTL applies: the fill
// channel does not carry TTLs. Invalidations, not TTLs, keep values fresh;
// a TTL bounds what a write that never invalidated leaves behind.
type TTLLoader[V any] interface {
	LoadTTL(ctx context.Context, key string) (V, uint64, time.Duration, error)
}

func isTTLLoader[V any](l Loader[V]) bool {
	_, ok := l.(TTLLoader[V])
	return ok
}

// callLoaderTTL is callLoader through the loader's TTLLoader when it is one.
func (g *Group[V]) callLoaderTTL(ctx context.Context, key string) (v V, version uint64, ttl, took time.Duration, err error) {
	tl, ok := g.cfg.Loader.(TTLLoader[V])
	if !ok {
		v, version, took, err = g.callLoader(ctx, key, true)
		return v, version, 0, took, err
	}
	v, version, took, err = g.callLoaderWith(ctx, key, true, func(ctx context.Context) (V, uint64, error) {
		var lerr error
		v, version, ttl, lerr = tl.LoadTTL(ctx, key)
		return v, version, lerr
	})
	if ttl < 0 {
		ttl = 0
	}
	return v, version, ttl, took, err
}

// callLoader runs the loader once, holding one of the node's load slots for
// exactly as long, and counts the call (an overloaded node that got no
// slot made none). A loader that panics does not take the process down (its
// call may run on a flight's own goroutine, where nobody could recover it):
// the panic is logged with its stack and returned as an error, as net/http
// does for a handler. fill is false for the consistency sampler's checks,
// which its own stats count (they are no fills).
func (g *Group[V]) callLoader(ctx context.Context, key string, fill bool) (v V, version uint64, took time.Duration, err error) {
	return g.callLoaderWith(ctx, key, fill, func(ctx context.Context) (V, uint64, error) { return g.cfg.Loader.Load(ctx, key) })
}

// callLoaderWith is callLoader around load.
func (g *Group[V]) callLoaderWith(ctx context.Context, key string, fill bool, load func(context.Context) (V, uint64, error)) (v V, version uint64, took time.Duration, err error) {
	if err := g.n.acquireLoad(ctx); err != nil {
		return v, 0, 0, err
	}
	defer g.n.releaseLoad()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			g.n.cfg.Logger.Error("loader panicked", "group", g.name, "key", key, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("node: loader panicked: %v", p)
		}
		took = time.Since(start)
		if !fill {
			return
		}
		g.ctr.inc(cLoads)
		g.ctr.inc(cFillsLocal)
		if err != nil && !IsNotFound(err) {
			g.ctr.inc(cLoadErrors)
		}
		g.n.cfg.Observer.ObserveLoad(g.name, took, err)
	}()
	v, version, err = load(ctx)
	return v, version, 0, err
}

// keep stores a fetched value when its fence allows it and returns the result.
func (g *Group[V]) keep(key string, f fence, v V, version uint64, took time.Duration) fillResult[V] {
	return g.keepTTL(key, f, v, version, took, 0)
}

// keepTTL is keep with the value's own TTL (0 = the group's).
func (g *Group[V]) keepTTL(key string, f fence, v V, version uint64, took, ttl time.Duration) fillResult[V] {
	r := fillResult[V]{val: v, version: version, fence: f}
	if ttl == 0 {
		ttl = g.cfg.TTL
	}
	if g.storable(f, took) {
		e := local.Entry[V]{Value: v, Version: version, LoadTime: took}
		r.stored = g.store(key, e, g.cost(key, v), ttl, f.tags)
	}
	return r
}

// notFound is a fill's "the source has no such key": version is the floor
// (or clock stamp) captured before asking, so a reader checks it like a value
// (a key created and invalidated meanwhile makes it stale), and with
// NegativeTTL it is cached as an absent entry under the same fence.
func (g *Group[V]) notFound(key string, version uint64, f fence, took time.Duration, err error) fillResult[V] {
	if g.cfg.NegativeTTL > 0 && g.storable(f, took) {
		g.store(key, local.Entry[V]{Version: version, Absent: true}, int64(len(key)+64), g.cfg.NegativeTTL, f.tags)
	}
	return fillResult[V]{version: version, fence: f, err: &LoadError{Group: g.name, Key: key, Err: err}}
}

// store hands e to the local store and counts the outcome.
func (g *Group[V]) store(key string, e local.Entry[V], cost int64, ttl time.Duration, tags []local.TagVersion) bool {
	if g.cache.Set(key, e, cost, ttl, tags) == local.Stored {
		g.ctr.inc(cSetsStored)
		return true
	}
	g.ctr.inc(cSetsRejected)
	return false
}
